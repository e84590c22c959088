"""fp32 vs bf16 autocast for fine-tuning MiniLM-L6 on this CPU: step time (interleaved) and loss agreement.

    python benchmarks/train_precision.py  ->  benchmarks/results/train_precision.{json,md}

Both variants start from the same weights and see the same batches (bbc_news train, 16 x 128 tokens);
we time forward+backward+AdamW step, alternating fp32/bf16 step by step, and compare the loss curves.
`edgebert train --precision auto` picks bf16 only where the CPU has native bf16 (avx512_bf16 / amx_bf16).
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from edgebert.core.cpu import cpu_info, usable_cpu_count
from edgebert.data.load import load_dataset
from edgebert.modeling.models import new_model
from edgebert.modeling.pretrained import resolve_model
from edgebert.runtime.tokenization import TextEncoder

OUT = Path(__file__).parent / "results"
STEPS, BATCH, LENGTH = 8, 16, 128


def main() -> int:
    torch.manual_seed(0)
    torch.set_num_threads(usable_cpu_count())
    data = load_dataset("bbc_news:train")
    model_dir = resolve_model("minilm-l6")
    encoder = TextEncoder.from_file(model_dir / "tokenizer.json", LENGTH)
    labels = sorted(set(data.labels))
    ids, types = encoder.encode(data.texts[: STEPS * BATCH])
    targets = [labels.index(y) for y in data.labels[: STEPS * BATCH]]
    base = new_model(model_dir, "sequence", "cls", labels)
    variants = {}
    for name in ("fp32", "bf16"):
        model = copy.deepcopy(base).train()
        variants[name] = (model, torch.optim.AdamW(model.parameters(), lr=5e-5), name == "bf16")
    times: dict[str, list[float]] = {name: [] for name in variants}
    losses: dict[str, list[float]] = {name: [] for name in variants}
    for step in range(STEPS):
        rows = list(range(step * BATCH, (step + 1) * BATCH))
        batch = next(encoder.batches([ids[i] for i in rows], [types[i] for i in rows], BATCH))
        y = torch.tensor([targets[rows[i]] for i in batch.indices])
        order = list(variants) if step % 2 == 0 else list(reversed(variants))  # interleave, alternate who goes first
        for name in order:
            model, optimizer, bf16 = variants[name]
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(
                    input_ids=torch.from_numpy(batch.input_ids),
                    attention_mask=torch.from_numpy(batch.attention_mask),
                    token_type_ids=torch.from_numpy(batch.token_type_ids),
                ).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            times[name].append(time.perf_counter() - start)
            losses[name].append(loss.item())
    warm = slice(2, None)  # first steps include one-off allocation
    result = {
        "cpu": cpu_info().record(),
        "native_bf16": cpu_info().native_bf16,
        "shape": f"{BATCH}x{LENGTH}",
        "steps": STEPS,
        "median_step_s": {k: statistics.median(v[warm]) for k, v in times.items()},
        "final_loss": {k: v[-1] for k, v in losses.items()},
        "max_loss_diff": max(abs(a - b) for a, b in zip(losses["fp32"], losses["bf16"], strict=True)),
    }
    result["bf16_over_fp32"] = result["median_step_s"]["bf16"] / result["median_step_s"]["fp32"]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "train_precision.json").write_text(json.dumps(result, indent=2) + "\n")
    md = (
        f"| precision | median step (s), {BATCH}x{LENGTH} | final loss |\n|---|---|---|\n"
        + "".join(
            f"| {k} | {result['median_step_s'][k]:.3f} | {result['final_loss'][k]:.4f} |\n" for k in ("fp32", "bf16")
        )
        + f"\nbf16/fp32 step time: {result['bf16_over_fp32']:.2f}x on {cpu_info().label()} "
        f"(native bf16: {result['native_bf16']}); max per-step loss difference {result['max_loss_diff']:.4f}\n"
    )
    (OUT / "train_precision.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
