"""Texts longer than the model: truncated or read in windows, on held-out data, with what each costs.

    python benchmarks/long_text.py --artifact DIR --data bbc_news:test [--longer 256] [--name NAME] [--out FILE]
        -> benchmarks/results/long_text-<name>-<cpu>.json

Reads every text of DATA (a test split: nothing was selected on it) four ways with the same INT8 artifact (and, with
--baseline, another artifact of the same labels truncated, e.g. one trained on first windows only):
  truncate        the first max_length tokens (what every front door did before `long_text`)
  chunk-mean      windows of max_length tokens, a quarter shared, at most 16 per text, logits averaged (the default)
  chunk-max       the same windows, the max per label
  truncate-LONGER the first --longer tokens in one call: the model read past the length it was trained at
For each: accuracy with a 95% bootstrap interval, the difference from `truncate` with a 95% paired-bootstrap interval
(the same texts, so what both get right cancels), the same on the texts longer than max_length alone, windows per
text, and latency per text one text per call as an app calls it (rounds interleaved across readings, median).
Then the bound: one 10 MB text read each way in a fresh process, wall time and peak memory over the loaded model's
and the text's (Linux: the peak is reset through /proc/self/clear_refs once both are in memory).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgebert.core.artifact import LongText
from edgebert.core.cpu import cpu_info
from edgebert.core.metrics import accuracy_interval, bootstrap_rows, paired_accuracy_difference
from edgebert.data.load import load_dataset
from edgebert.runtime import Classifier
from edgebert.runtime.tokenization import TextEncoder

RESULTS = Path(__file__).parent / "results"
HUGE_TEXT_BYTES = 10_000_000


def readings(clf: Classifier, longer: int) -> dict:
    """name -> (classifier, long_text policy): the same model and weights, read four ways."""
    chunk = replace(clf.manifest.long_text, policy="chunk")
    tokenizer = clf.encoder.tokenizer.to_str().encode()
    reads_longer = Classifier(clf.manifest, TextEncoder.from_bytes(tokenizer, longer), clf.backend)
    return {
        "truncate": (clf, LongText("truncate")),
        "chunk-mean": (clf, replace(chunk, aggregate="mean")),
        "chunk-max": (clf, replace(chunk, aggregate="max")),
        f"truncate-{longer}": (reads_longer, LongText("truncate")),
    }


def score(ways: dict, texts: list[str], truth: np.ndarray, long_rows: np.ndarray, baseline: str | None) -> dict:
    rows, rows_long = bootstrap_rows(len(truth)), bootstrap_rows(int(long_rows.sum()))
    correct, out = {}, {}
    for name, (clf, policy) in ways.items():
        logits, windows = clf.read(texts, long_text=policy)
        correct[name] = logits.argmax(-1) == truth
        out[name] = {
            "accuracy": accuracy_interval(correct[name], rows),
            "long_texts_accuracy": accuracy_interval(correct[name][long_rows], rows_long),
            "windows_per_text": {"mean": float(windows.counts.mean()), "max": int(windows.counts.max())},
            "texts_cut": int(windows.truncated.sum()),
        }
    for name in ways:
        for other, key in (("truncate", "vs_truncate"), (baseline, "vs_baseline")):
            if other is None or name == other:
                continue
            out[name][key] = paired_accuracy_difference(correct[name], correct[other], rows)
            out[name][f"{key}_long_texts"] = paired_accuracy_difference(
                correct[name][long_rows], correct[other][long_rows], rows_long
            )
    return out


def accuracy_by_window(clf: Classifier, policy: LongText, texts: list[str], truth: np.ndarray) -> list[dict]:
    """Each window alone, by its place in the text (first, second, ...): is it as telling as the first?"""
    windows = clf.encoder.encode_windows(texts, None, policy)
    right = clf.logits_of_ids(windows.ids, windows.type_ids).argmax(-1) == truth[windows.owners]
    place = np.concatenate([np.arange(n) for n in windows.counts])
    return [
        {"window": k + 1, "texts": int((place == k).sum()), "accuracy": float(right[place == k].mean())}
        for k in range(min(8, int(place.max()) + 1))
    ]


def latency(ways: dict, texts: list[str], rounds: int) -> dict:
    """ms per text, one text per call, rounds interleaved across readings; median round and [fastest, slowest]."""
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for clf, policy in ways.values():
        clf.predict_logits(texts[:4], long_text=policy)  # warm
    for _ in range(rounds):
        for name, (clf, policy) in ways.items():
            started = time.perf_counter()
            for text in texts:
                clf.predict_logits([text], long_text=policy)
            samples[name].append(1000 * (time.perf_counter() - started) / len(texts))
    return {name: {"ms_per_text": statistics.median(s), "spread": [min(s), max(s)]} for name, s in samples.items()}


HUGE = """
import json, sys, time
from edgebert.runtime import Classifier

def status(key):  # kB, from /proc/self/status
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))

clf = Classifier.load(sys.argv[1], threads=1)
text = ("The economy grew faster than expected in the third quarter, officials said. " * 200_000)[:%d]
open("/proc/self/clear_refs", "w").write("5")  # reset the peak: measure from the loaded model and the text on
before = status("VmRSS")
started = time.perf_counter()
p = clf.predict(text, long_text=sys.argv[2])
seconds = time.perf_counter() - started
grown = status("VmHWM") - before
print(json.dumps({"seconds": seconds, "peak_rss_growth_mb": grown / 1024, "windows": p.windows, "cut": p.truncated}))
"""


def huge_text(artifact: Path) -> dict:
    """One 10 MB text read each way in a fresh process: time and peak RSS growth over the loaded model's."""
    out = {}
    for policy in ("truncate", "chunk"):
        done = subprocess.run(
            [sys.executable, "-c", HUGE % HUGE_TEXT_BYTES, str(artifact), policy], capture_output=True, text=True
        )
        out[policy] = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-500:]}
    return {"text_bytes": HUGE_TEXT_BYTES, **out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True, help="an artifact (its own policy is not used)")
    parser.add_argument("--data", required=True, help="labelled held-out texts, e.g. bbc_news:test")
    parser.add_argument(
        "--baseline", type=Path, help="another artifact of the same labels, read truncated: every reading vs it too"
    )
    parser.add_argument("--longer", type=int, default=256, help="tokens for the longer truncation (default 256)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default=None, help="results name (default: the data's name)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    clf = Classifier.load(args.artifact, threads=1)
    data = load_dataset(args.data, split="test")
    truth = np.asarray([clf.labels.index(y) for y in data.labels])
    counts = np.asarray(clf.encoder.token_counts(data.texts))
    long_rows = counts > clf.manifest.max_length
    ways = readings(clf, args.longer)
    baseline = None
    if args.baseline:
        baseline = f"baseline {args.baseline.name} (truncate)"
        ways[baseline] = (Classifier.load(args.baseline, threads=1), LongText("truncate"))
    cpu = cpu_info()
    result = {
        "data": f"{data.source}: {len(data)} texts, {int(long_rows.sum())} longer than {clf.manifest.max_length} tokens",
        "artifact": str(args.artifact),
        "max_length": clf.manifest.max_length,
        "chunk": {"stride": "a quarter of a window", "max_windows": clf.manifest.long_text.max_windows},
        "cpu": cpu.record(),
        "threads": 1,
        "resolution": f"one text = {100 / len(data):.2f} points",
        "baseline": str(args.baseline) if args.baseline else None,
        "readings": score(ways, data.texts, truth, long_rows, baseline),
        "accuracy_by_window": accuracy_by_window(clf, ways["chunk-mean"][1], data.texts, truth),
        "latency": latency(ways, data.texts, args.rounds),
        "huge_text": huge_text(args.artifact),
    }
    name = args.name or data.source.split(":")[0]
    out = args.out or RESULTS / f"long_text-{name}-{cpu.microarchitecture or cpu.isa}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for reading, r in result["readings"].items():
        diff = r.get("vs_truncate", {})
        print(
            f"{reading:14s} acc {100 * r['accuracy']['accuracy']:.2f} "
            f"long {100 * r['long_texts_accuracy']['accuracy']:.2f} "
            f"vs truncate {diff.get('points', 0):+.2f} {diff.get('ci95', '')} "
            f"windows {r['windows_per_text']['mean']:.2f} ms/text {result['latency'][reading]['ms_per_text']:.2f}"
        )
    print(json.dumps(result["huge_text"]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
