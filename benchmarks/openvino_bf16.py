"""OpenVINO INT8 with its floating-point layers in f32 (edgebert's default) or bf16 (opt-in), side by side.

    python benchmarks/openvino_bf16.py --artifact runs/bbc/ov-int8 --data bbc_news:test \\
        --out benchmarks/results/openvino_bf16.json

One process, interleaved rounds: p50 at 1x128 and 32x128, real texts in batches of 32; labels and logits of the
whole --data split compared between the two (bf16 only where the CPU has it natively).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from edgebert import Classifier
from edgebert.core.cpu import cpu_info
from edgebert.core.timing import measure_interleaved, median_ms, synthetic_batch
from edgebert.data.load import load_dataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--data", default="bbc_news:test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    data = load_dataset(args.data)
    models = {p: Classifier.load(args.artifact, args.threads, openvino_precision=p) for p in ("f32", "bf16")}
    logits = {p: m.predict_logits(data.texts) for p, m in models.items()}
    truth = np.asarray([models["f32"].labels.index(y) for y in data.labels])
    vocab = models["f32"].encoder.tokenizer.get_vocab_size()
    runners = {}
    for precision, model in models.items():
        for batch, tokens in ((1, 128), (32, 128)):
            feed = synthetic_batch(batch, tokens, vocab)
            runners[f"{precision}|{batch}x{tokens}"] = lambda m=model, f=feed: m.backend.run(*f)
        runners[f"{precision}|real-text"] = lambda m=model: m.predict_logits(data.texts[:32])
    samples = measure_interleaved(runners, rounds=args.rounds, seconds_per_round=1.0)
    p50 = {name: median_ms(rounds) for name, rounds in samples.items()}
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": cpu_info().record(),
        "artifact": str(args.artifact),
        "threads": args.threads,
        "data": f"{data.source} ({len(data)} texts)",
        "p50_ms": p50,
        "bf16_over_f32": {k: p50[f"bf16|{k}"] / p50[f"f32|{k}"] for k in ("1x128", "32x128", "real-text")},
        "accuracy": {p: float((lg.argmax(1) == truth).mean()) for p, lg in logits.items()},
        "labels_changed": int((logits["f32"].argmax(1) != logits["bf16"].argmax(1)).sum()),
        "max_abs_logit_diff": float(np.abs(logits["f32"] - logits["bf16"]).max()),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "cpu"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
