"""How close an INT8 artifact gets to this CPU's INT8 GEMM ceiling at 32x128.

The ceiling: the best of a few large u8 x s8 MatMulInteger graphs in ONNX Runtime on the same threads
(the kernel every INT8 MatMul of an artifact ends in). The artifact: 32 sequences of 128 tokens through the
runtime as shipped, timed in the same interleaved rounds. Its useful work is counted from the checkpoint's
config: per token and layer 2*(4H^2 + 2HI) for the projections and feed-forward, 2*2*T*H for attention
(QK^T and PV); a light last layer computes K and V for every token and the rest for [CLS] only.

    python benchmarks/gemm_ceiling.py --artifact runs/bbc/tuned --config runs/bbc/checkpoint/config.json \
        --out benchmarks/results/gemm_ceiling
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgebert import Classifier
from edgebert.bench.run import fingerprint
from edgebert.core.cpu import cpu_info
from edgebert.core.timing import measure_interleaved, median_ms, synthetic_batch

GEMMS = [(4096, 384, 1536), (4096, 1024, 1024), (4096, 1536, 384)]  # (M, K, N): MiniLM's FFN and a square one
BATCH, TOKENS = 32, 128


def gemm_session(m: int, k: int, n: int, threads: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.integers(-64, 64, (k, n), dtype=np.int8), "B")
    zero_a = numpy_helper.from_array(np.array(128, np.uint8), "a_zero")
    node = helper.make_node("MatMulInteger", ["A", "B", "a_zero"], ["Y"])
    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        initializer=[weights, zero_a],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"A": rng.integers(0, 256, (m, k), dtype=np.uint8)}
    return lambda: session.run(None, feed)


def model_ops(config: dict, last_layer: str, tokens: int = TOKENS) -> float:
    """Multiply-add work (2 ops each) of one sequence of `tokens` through the encoder's MatMuls."""
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    per_token = 2 * (4 * h * h + 2 * h * i) + 2 * 2 * tokens * h
    full_layers = layers - (1 if last_layer == "cls_only" else 0)
    ops = full_layers * tokens * per_token
    if last_layer == "cls_only":
        ops += tokens * 2 * 2 * h * h + per_token - 2 * 2 * h * h  # K, V for all; Q, O, FFN, attention for [CLS]
    return float(ops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifact", type=Path, action="append", required=True)
    parser.add_argument("--config", type=Path, action="append", required=True, help="config.json per --artifact")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gemm_ceiling"))
    args = parser.parse_args()

    runners = {f"gemm {m}x{k}x{n}": gemm_session(m, k, n, args.threads) for m, k, n in GEMMS}
    artifacts = {}
    for path, config_path in zip(args.artifact, args.config, strict=True):
        clf = Classifier.load(path, threads=args.threads)
        feed = synthetic_batch(BATCH, TOKENS, vocab_size=clf.encoder.tokenizer.get_vocab_size())
        runners[path.name] = lambda c=clf, f=feed: c.backend.run(*f)
        artifacts[path.name] = (json.loads(config_path.read_text()), clf.manifest.optimization.last_layer)
    samples = measure_interleaved(runners, rounds=args.rounds, seconds_per_round=1.0)

    gemm_gops = {}
    for (m, k, n), name in zip(GEMMS, [r for r in runners if r.startswith("gemm")], strict=True):
        gemm_gops[name] = 2 * m * k * n / (median_ms(samples[name]) / 1000) / 1e9
    ceiling = max(gemm_gops.values())
    result = {"machine": fingerprint(args.threads), "gemm_gops": gemm_gops, "ceiling_gops": ceiling, "artifacts": {}}
    for name, (config, last_layer) in artifacts.items():
        ms = median_ms(samples[name])
        gops = BATCH * model_ops(config, last_layer) / (ms / 1000) / 1e9
        result["artifacts"][name] = {
            "p50_ms_32x128": ms,
            "sequences_per_s": BATCH / (ms / 1000),
            "last_layer": last_layer,
            "useful_gops": gops,
            "fraction_of_ceiling": gops / ceiling,
        }
    suffix = cpu_info().microarchitecture or cpu_info().isa  # named by features, not guessed from the ISA
    out = args.out.with_name(f"{args.out.name}-{suffix}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
