"""ONNX Runtime thread-pool spinning policies for an app that calls now and then (5 calls/s), per text length.

Each policy runs in a fresh process: a session with 2 intra-op threads and the given session-config entries,
one call every 200 ms for 4 s (after warm-up and a 0.5 s pause), then p50 latency and CPU per request.
edgebert's default is `force_spinning_stop` (spin inside a call, sleep between calls); this measures the others.

    python benchmarks/spin_policy.py --model runs/bbc/int8/model.onnx --out benchmarks/results/spin_policy
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from edgebert.bench.run import fingerprint
from edgebert.core.cpu import cpu_info

CHILD = r"""
import sys, time, json, numpy as np, onnxruntime as ort
path, tokens, cfg = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.inter_op_num_threads = 1
for k, v in cfg.items(): o.add_session_config_entry(k, v)
s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
ids = np.random.default_rng(0).integers(1000, 20000, (1, tokens)).astype(np.int64)
feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
feed = {i.name: feed[i.name] for i in s.get_inputs()}
for _ in range(5): s.run(None, feed)
time.sleep(0.5)
lat = []; c0 = time.process_time(); start = time.perf_counter(); nxt = start
while time.perf_counter() < start + 4:
    now = time.perf_counter()
    if now < nxt: time.sleep(nxt - now)
    t = time.perf_counter(); s.run(None, feed); lat.append((time.perf_counter() - t) * 1000); nxt += 0.2
print(json.dumps({"p50_ms": float(np.median(lat)), "cpu_ms_per_request": (time.process_time() - c0) * 1000 / len(lat)}))
"""

POLICIES = {
    "spin (ORT default)": {"session.intra_op.allow_spinning": "1"},
    "force_spinning_stop (edgebert default)": {"session.force_spinning_stop": "1"},
    "no spinning": {"session.intra_op.allow_spinning": "0"},
    "spin 300us + stop": {"session.intra_op.spin_duration_us": "300", "session.force_spinning_stop": "1"},
    "spin 3ms + stop": {"session.intra_op.spin_duration_us": "3000", "session.force_spinning_stop": "1"},
    "spin 100us": {"session.intra_op.spin_duration_us": "100"},
    "spin 300us": {"session.intra_op.spin_duration_us": "300"},
    "spin 1ms": {"session.intra_op.spin_duration_us": "1000"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/spin_policy"))
    args = parser.parse_args()
    rows: dict[str, dict[str, list[dict]]] = {}
    for r in range(args.rounds):
        for tokens in (20, 128):
            names = list(POLICIES) if r % 2 == 0 else list(POLICIES)[::-1]
            for name in names:
                cmd = [sys.executable, "-c", CHILD, str(args.model), str(tokens), json.dumps(POLICIES[name])]
                result = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
                rows.setdefault(f"{tokens} tokens", {}).setdefault(name, []).append(result)
    summary = {
        length: {name: {k: sorted(x[k] for x in runs)[len(runs) // 2] for k in runs[0]} for name, runs in by.items()}
        for length, by in rows.items()
    }
    suffix = cpu_info().microarchitecture or cpu_info().isa  # named by features, not guessed from the ISA
    out = args.out.with_name(f"{args.out.name}-{suffix}.json")
    result = {"machine": fingerprint(2), "model": str(args.model), "rate_per_s": 5, "summary": summary, "runs": rows}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
