"""Peer comparison: edgebert artifacts against the tools people use today, on the same fine-tuned model.

One process, interleaved rounds (every variant gets the same machine noise), the same thread count.
Peers are used the way their docs show:
  - torch fp32 eager: AutoModelForSequenceClassification + AutoTokenizer(padding=True)
  - Optimum ORT INT8: ORTOptimizer O2 + ORTQuantizer dynamic per-channel, run through
    ORTModelForSequenceClassification, with every AutoQuantizationConfig preset that applies to this CPU
    (OPTIMUM_PRESETS: avx2 with and without reduce_range everywhere; avx512 on AVX-512; avx512_vnni on VNNI
    CPUs, where its full-range weights do not saturate). The baseline every ratio is against is the fastest
    preset at 1x128 whose accuracy stays within KEEPS_ACCURACY points of torch fp32; the table names it.
  - optimum-intel OpenVINO INT8 (OVQuantizer, NNCF static INT8 on 200 --calib texts), when `optimum.intel` is
    importable (`optimum-intel[openvino]==1.27.0` fits the pinned set; the `bench` extra installs it).
  A mean-pooled checkpoint (edgebert's `--pooling mean`, as sentence encoders such as e5 are used) has no
  transformers classification class: the peers load it as their docs show for sentence encoders, the
  feature-extraction class (AutoModel / ORTModelForFeatureExtraction / OVModelForFeatureExtraction), then mean
  pooling over the attention mask and the checkpoint's linear head (mean_pool_head.safetensors) in numpy.
edgebert's artifacts read each text as the peers do, its first 128 tokens, whatever their manifests' long-text policy;
--artifact-whole adds a row that reads long texts whole in windows (more accurate on long texts, more work per text).
Shapes are synthetic (batch x tokens, full attention); "real-text" is end to end over the dataset's own
texts in batches of 32 (tokenization included, padding to the batch's longest), "real-text-1" one text per call
(as an app answering one request at a time; --real-batches).

    python benchmarks/peers.py --checkpoint runs/bbc/checkpoint \
        --artifact runs/bbc/int8 --artifact runs/bbc/fp32 --data bbc_news:dev \
        --out benchmarks/results/peers
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgebert.bench.run import fingerprint, parse_shapes
from edgebert.core.metrics import classification_metrics
from edgebert.core.timing import measure_interleaved, summarize, synthetic_batch
from edgebert.data.load import load_dataset
from edgebert.data.text import LabelSet

BATCH = 32
KEEPS_ACCURACY = 0.5  # points below torch fp32 on --data that an Optimum preset may lose and still be the baseline
# (preset, reduce_range, the ISAs it applies to): full-range u8s8 weights saturate on x86 without VNNI
OPTIMUM_PRESETS = (
    ("avx2", False, ("avx2", "avx512", "avx512-vnni", "avx-vnni")),
    ("avx2", True, ("avx2", "avx512", "avx512-vnni", "avx-vnni")),
    ("avx512", False, ("avx512", "avx512-vnni")),
    ("avx512", True, ("avx512", "avx512-vnni")),
    ("avx512_vnni", False, ("avx512-vnni",)),
)


class Peer:
    """name, run_shape(ids, mask, types) -> None, logits(texts) -> (N, L) array, size_mb, vocab_size (None: any
    id below 30522 is valid)."""

    def __init__(self, name: str, run_shape: Callable, logits: Callable, size_mb: float) -> None:
        self.name, self.run_shape, self.logits, self.size_mb = name, run_shape, logits, size_mb
        self.vocab_size: int | None = None


def torch_peer(checkpoint: Path, threads: int) -> Peer:
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(threads)
    head = _head(checkpoint)
    auto = AutoModel if head else AutoModelForSequenceClassification
    model = auto.from_pretrained(checkpoint).eval()  # default (SDPA) attention
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)

    size = sum(p.stat().st_size for p in checkpoint.glob("*.safetensors")) / 1e6
    return _transformers_style_peer("torch fp32 (eager)", model, tokenizer, size, head)


def _head(checkpoint: Path):
    """(weight (K, H), bias (K,)) of a mean-pooled checkpoint's linear head, else None."""
    from safetensors.numpy import load_file

    path = checkpoint / "mean_pool_head.safetensors"
    if not path.is_file():
        return None
    head = load_file(str(path))
    return head["weight"], head["bias"]


def optimum_presets(isa: str) -> list[tuple[str, bool]]:
    """The AutoQuantizationConfig presets that apply to a CPU of this ISA."""
    return [(preset, reduce_range) for preset, reduce_range, isas in OPTIMUM_PRESETS if isa in isas]


def optimum_name(preset: str, reduce_range: bool) -> str:
    return f"Optimum ORT INT8 (O2 + {preset}{', reduce_range' if reduce_range else ''})"


def optimum_int8_peer(checkpoint: Path, work: Path, threads: int, preset: str, reduce_range: bool) -> Peer:
    """Optimum's documented dynamic INT8 recipe for CPUs, with one AutoQuantizationConfig preset."""
    import onnxruntime as ort
    from optimum.onnxruntime import (
        ORTModelForFeatureExtraction,
        ORTModelForSequenceClassification,
        ORTOptimizer,
        ORTQuantizer,
    )
    from optimum.onnxruntime.configuration import AutoOptimizationConfig, AutoQuantizationConfig
    from transformers import AutoTokenizer

    head = _head(checkpoint)
    ort_class = ORTModelForFeatureExtraction if head else ORTModelForSequenceClassification
    if not (work / "optimum-o2" / "model_optimized.onnx").exists():
        exported = ort_class.from_pretrained(checkpoint, export=True)
        exported.save_pretrained(work / "optimum-fp32")
        optimizer = ORTOptimizer.from_pretrained(exported)
        optimizer.optimize(AutoOptimizationConfig.O2(), save_dir=work / "optimum-o2")
    quantized_dir = work / f"optimum-int8-{preset}{'-rr' if reduce_range else ''}"
    if not (quantized_dir / "model_optimized_quantized.onnx").exists():
        _let_optimum_quantize_fused_graphs()
        quantizer = ORTQuantizer.from_pretrained(work / "optimum-o2", file_name="model_optimized.onnx")
        options = {"reduce_range": reduce_range} if preset != "avx512_vnni" else {}
        config = getattr(AutoQuantizationConfig, preset)(is_static=False, per_channel=True, **options)
        quantizer.quantize(config, save_dir=quantized_dir)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    model = ort_class.from_pretrained(
        quantized_dir, file_name="model_optimized_quantized.onnx", session_options=options
    )
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)

    size = (quantized_dir / "model_optimized_quantized.onnx").stat().st_size / 1e6
    return _transformers_style_peer(optimum_name(preset, reduce_range), model, tokenizer, size, head)


def optimum_baseline(report: dict) -> tuple[str, str]:
    """(name, why) of the Optimum preset every ratio is against: the fastest at 1x128 (else the first shape)
    among those within KEEPS_ACCURACY points of torch fp32; the most accurate when none is."""
    names = [n for n in report["sizes_mb"] if n.startswith("Optimum ORT INT8")]
    torch_accuracy = report["accuracy"]["torch fp32 (eager)"]["accuracy"]
    kept = [n for n in names if 100 * (torch_accuracy - report["accuracy"][n]["accuracy"]) <= KEEPS_ACCURACY]
    shape = "1x128" if "1x128" in report["latency"] else next(iter(report["latency"]))
    if not kept:
        best = max(names, key=lambda n: report["accuracy"][n]["accuracy"])
        return best, f"no preset stayed within {KEEPS_ACCURACY} points of torch fp32; the most accurate"
    best = min(kept, key=lambda n: report["latency"][shape][n]["p50_ms"])
    return best, (
        f"the fastest at {shape} of the {len(kept)} of {len(names)} presets that apply to this CPU and stay within "
        f"{KEEPS_ACCURACY} points of torch fp32"
    )


def optimum_intel_int8_peer(
    checkpoint: Path, work: Path, threads: int, calibration_texts: list[str], *, bias_correction: bool = True
) -> Peer:
    """optimum-intel's documented static INT8 path: OVModelForSequenceClassification(export=True) ->
    OVQuantizer with OVQuantizationConfig (NNCF, transformer preset) on 200 training texts. bias_correction=False
    passes NNCF's AdvancedQuantizationParameters(disable_bias_correction=True): NNCF 3.4's fast (and full) bias
    correction fails on the torch-converted multilingual-e5 graph (a garbage activation shape), the rest works."""
    from optimum.intel import (
        OVConfig,
        OVModelForFeatureExtraction,
        OVModelForSequenceClassification,
        OVQuantizationConfig,
        OVQuantizer,
    )
    from transformers import AutoTokenizer

    head = _head(checkpoint)
    ov_class = OVModelForFeatureExtraction if head else OVModelForSequenceClassification
    out = work / ("optimum-intel-int8" if bias_correction else "optimum-intel-int8-no-bias-correction")
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    if not (out / "openvino_model.xml").exists():
        import nncf

        model = ov_class.from_pretrained(checkpoint, export=True)
        samples = [tokenizer(t, truncation=True, max_length=128, return_tensors="np") for t in calibration_texts[:200]]
        quantizer = OVQuantizer.from_pretrained(model)
        advanced = {} if bias_correction else {"advanced_parameters": _no_bias_correction(nncf)}
        config = OVConfig(quantization_config=OVQuantizationConfig(num_samples=200, **advanced))
        dataset = nncf.Dataset([dict(s) for s in samples])  # no `datasets` dependency: NNCF's own container
        quantizer.quantize(calibration_dataset=dataset, ov_config=config, save_directory=out)
    model = ov_class.from_pretrained(
        out, ov_config={"INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY"}
    )
    size = sum(p.stat().st_size for p in out.glob("openvino_model.*")) / 1e6
    name = "optimum-intel OV INT8 (OVQuantizer" + ("" if bias_correction else ", NNCF bias correction off") + ")"
    return _transformers_style_peer(name, model, tokenizer, size, head)


def _optimum_intel_peer(args, calibration: list[str]) -> tuple[Peer | None, str]:
    """The documented path; where NNCF's bias correction fails on the model, the same without it (said in the
    status); a failure of that too is a result to report, not a reason to stop."""
    try:
        return optimum_intel_int8_peer(
            args.checkpoint, args.work, args.threads, calibration
        ), "measured (its row above)"
    except Exception as exc:
        first = f"{type(exc).__name__}: {str(exc)[:200]}"
    print(f"optimum-intel: the documented path failed ({first}); retrying without bias correction", file=sys.stderr)
    try:
        peer = optimum_intel_int8_peer(args.checkpoint, args.work, args.threads, calibration, bias_correction=False)
    except Exception as exc:
        return None, f"failed while quantizing: {first}; without bias correction: {type(exc).__name__}: {exc}"[:600]
    return peer, f"measured with NNCF bias correction off: the documented path failed with {first}"


def _no_bias_correction(nncf):
    return nncf.AdvancedQuantizationParameters(disable_bias_correction=True)


def _transformers_style_peer(name: str, model, tokenizer, size_mb: float, head=None) -> Peer:
    """Called the way transformers-style models are: torch tensors in, tokenizer padding to the batch's longest."""
    import torch

    @torch.inference_mode()
    def run_shape(ids, mask, types):
        model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.from_numpy(types),
        )

    @torch.inference_mode()
    def logits(texts):
        enc = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        if head is None:
            return model(**enc).logits.numpy()
        hidden = np.asarray(model(**enc).last_hidden_state)  # (B, T, H)
        mask = enc["attention_mask"].numpy()[..., None].astype(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1.0)  # (B, H)
        return pooled @ head[0].T + head[1]

    return Peer(name, run_shape, logits, size_mb)


def _let_optimum_quantize_fused_graphs() -> None:
    """ORT 1.32 cannot type the outputs of fused ops (Attention, SkipLayerNorm) in an O2 graph, and
    ORTQuantizer has no way to pass ORT's `DefaultTensorType` option: inject it, changing nothing else."""
    import onnx
    import optimum.onnxruntime.quantization as optimum_quantization
    from onnxruntime.quantization.onnx_quantizer import ONNXQuantizer

    class Quantizer(ONNXQuantizer):
        def __init__(self, *args, extra_options=None, **kwargs):
            extra_options = {**(extra_options or {}), "DefaultTensorType": onnx.TensorProto.FLOAT}
            super().__init__(*args, extra_options=extra_options, **kwargs)

    optimum_quantization.ONNXQuantizer = Quantizer


def edgebert_peer(artifact: Path, threads: int, long_text: str = "truncate") -> Peer:
    """An artifact through the torch-free runtime. long_text "truncate" reads a text as every peer does (its first
    max_length tokens); "chunk" reads it whole in windows (more work per text), a row of its own."""
    from edgebert import Classifier

    clf = Classifier.load(artifact, threads=threads)
    m = clf.manifest
    mode = f" {m.quantization.mode}" if m.quantization else ""
    bf16 = ", bf16 float layers" if m.openvino_precision == "bf16" else ""
    whole = ", texts read whole in windows" if long_text == "chunk" else ""
    name = f"edgebert {m.backend} {m.precision}{mode} ({artifact.name}{bf16}{whole})"
    size = sum((artifact / f).stat().st_size for f in m.model_files) / 1e6
    peer = Peer(name, clf.backend.run, lambda texts: clf.predict_logits(texts, long_text=long_text), size)
    peer.vocab_size = clf.encoder.tokenizer.get_vocab_size()
    return peer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument(
        "--artifact", type=Path, action="append", default=[], help="an edgebert artifact, reading texts as the peers do"
    )
    parser.add_argument(
        "--artifact-whole",
        type=Path,
        action="append",
        default=[],
        help="an artifact that also reads long texts whole (long_text chunk): a row of its own",
    )
    parser.add_argument("--data", default="bbc_news:dev")
    parser.add_argument("--calib", default="bbc_news:train", help="calibration texts for optimum-intel's INT8")
    parser.add_argument("--shapes", default="1x16,1x128,32x128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument(
        "--real-batches",
        type=lambda text: [int(b) for b in text.split(",")],
        default=[1],
        help="batch sizes of the real-text runs besides 32 (comma-separated; 1: one text per call, as an app "
        "answering one request does)",
    )
    parser.add_argument("--work", type=Path, default=Path("runs/peers"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/peers"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.work.mkdir(parents=True, exist_ok=True)

    data = load_dataset(args.data, split="dev")
    machine = fingerprint(args.threads)
    peers = [torch_peer(args.checkpoint, args.threads)]
    peers += [
        optimum_int8_peer(args.checkpoint, args.work, args.threads, preset, reduce_range)
        for preset, reduce_range in optimum_presets(machine["isa"])
    ]
    intel_status = _optimum_intel_status()
    if intel_status.startswith("measured"):
        calibration = load_dataset(args.calib, split="train", label_column=None).texts
        peer, intel_status = _optimum_intel_peer(args, calibration)
        peers += [peer] if peer else []
    peers += [edgebert_peer(a, args.threads) for a in args.artifact]
    peers += [edgebert_peer(a, args.threads, "chunk") for a in args.artifact_whole]
    labels = json.loads((args.checkpoint / "edgebert_checkpoint.json").read_text())["labels"]
    y = LabelSet(tuple(labels)).encode(data.labels, data.source)

    accuracy = {}
    for peer in peers:
        logits = np.concatenate([peer.logits(data.texts[i : i + BATCH]) for i in range(0, len(data.texts), BATCH)])
        accuracy[peer.name] = classification_metrics(y, logits.argmax(-1), labels)
        accuracy[peer.name]["predictions"] = logits.argmax(-1).tolist()

    latency: dict[str, dict[str, dict]] = {}
    vocab = min([30522, *(p.vocab_size for p in peers if p.vocab_size)])  # a trimmed artifact has fewer ids
    for batch, tokens in parse_shapes(args.shapes):
        feed = synthetic_batch(batch, tokens, vocab)
        runners = {p.name: (lambda p=p, feed=feed: p.run_shape(*feed)) for p in peers}
        key = f"{batch}x{tokens}"
        print(f"measuring {key}", file=sys.stderr)
        samples = measure_interleaved(runners, rounds=args.rounds, seconds_per_round=args.seconds)
        latency[key] = {n: vars(summarize([t for r in s for t in r], batch, s)) for n, s in samples.items()}
    for batch in sorted({BATCH, *args.real_batches}, reverse=True):
        key = real_text_key(batch)
        chunks = [data.texts[i : i + batch] for i in range(0, len(data.texts), batch)]
        runners = {}
        for peer in peers:
            calls = iter(range(1 << 62))
            runners[peer.name] = lambda peer=peer, calls=calls, chunks=chunks: peer.logits(
                chunks[next(calls) % len(chunks)]
            )
        print(f"measuring {key}", file=sys.stderr)
        samples = measure_interleaved(runners, rounds=args.rounds, seconds_per_round=max(args.seconds, 2.0))
        latency[key] = {n: vars(summarize([t for r in s for t in r], batch, s)) for n, s in samples.items()}

    report = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine,
        "data": data.source,
        "checkpoint": str(args.checkpoint),
        "sizes_mb": {p.name: p.size_mb for p in peers},
        "accuracy": accuracy,
        "latency": latency,
        "optimum_intel": intel_status,
    }
    report["optimum_baseline"], report["optimum_baseline_why"] = optimum_baseline(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    args.out.with_suffix(".md").write_text(to_markdown(report, peers, " ".join(sys.argv)))
    print(args.out.with_suffix(".md").read_text())
    return 0


def real_text_key(batch: int) -> str:
    """'real-text' for batches of 32 (the key results files have always used), 'real-text-1' for one per call."""
    return "real-text" if batch == BATCH else f"real-text-{batch}"


def _optimum_intel_status() -> str:
    try:
        import optimum.intel  # noqa: F401
    except ImportError as exc:
        return f"not measured: optimum-intel not importable here ({exc})"
    return "measured (its row above)"


def to_markdown(report: dict, peers: list[Peer], command: str) -> str:
    optimum = report["optimum_baseline"]
    torch_name = "torch fp32 (eager)"
    m = report["machine"]
    cpu = m.get("cpu_record", {})
    uarch = cpu.get("microarchitecture") or m.get("cpu")
    lines = [
        "# edgebert vs peers",
        "",
        f"{report['when']} · CPU: {uarch} ({m.get('isa')}; {m.get('cpu_identity', '')}) · {m.get('threads')} threads "
        f"· data {report['data']}",
        "",
        f"Command: `{command}`",
        "",
        f"Baseline: **{optimum}**: {report['optimum_baseline_why']}.",
        "",
        "Latency p50 in ms (lower is better); in brackets: p50 relative to that baseline (below 1.00x is faster),",
        "and throughput in sequences/s. Interleaved rounds in one process.",
        "",
        "| variant | size MB | accuracy | macro-F1 | drop vs torch (pts) | " + " | ".join(report["latency"]) + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(report["latency"]),
    ]
    ref_acc = report["accuracy"][torch_name]["accuracy"]
    for p in peers:
        acc = report["accuracy"][p.name]
        cells = []
        for stats in report["latency"].values():
            s, base = stats[p.name], stats[optimum]
            cells.append(f"{s['p50_ms']:.1f} ({s['p50_ms'] / base['p50_ms']:.2f}x, {s['throughput']:.0f}/s)")
        drop = 100 * (ref_acc - acc["accuracy"])
        lines.append(
            f"| {p.name} | {p.size_mb:.1f} | {acc['accuracy']:.4f} | {acc['macro_f1']:.4f} | {drop:.2f} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", f"optimum-intel OpenVINO INT8: {report['optimum_intel']}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
