"""The accuracy-budget path of an artifact exported with `--max-drop`: the drop and its 95% interval after each step
that returned a unit (a layer, the embeddings or the head) to fp32, from its manifest, for docs/images.

    edgebert export runs/zh-e5 --int8 --max-drop 0.1 --eval zh_reviews:dev --out runs/zh-e5-budget
    python benchmarks/accuracy_budget.py --artifact runs/zh-e5-budget --out benchmarks/results/accuracy_budget-zh-e5

writes OUT-<microarchitecture>.json: the budget, every step (units in fp32, the metric, drop, interval), each
unit's sensitivity (mean |Δlogit| when quantized alone), the latency the kept units cost, and the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from edgebert.core.artifact import read_manifest
from edgebert.core.cpu import cpu_info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True, help="an artifact exported with --int8 --max-drop")
    parser.add_argument("--out", type=Path, required=True, help="results file stem; the CPU's name is appended")
    args = parser.parse_args()
    manifest = read_manifest(args.artifact)
    budget = manifest.quantization.accuracy_budget if manifest.quantization else None
    if budget is None:
        sys.exit(f"{args.artifact} was not exported with --max-drop: it has no accuracy budget to draw")
    cpu = cpu_info()
    record = {
        "artifact": str(args.artifact),
        "checkpoint": manifest.source.checkpoint,
        "recipe": manifest.quantization.recipe,
        "backend": manifest.backend,
        "data": manifest.evaluation.data if manifest.evaluation else None,
        "n": manifest.evaluation.n if manifest.evaluation else None,
        "metric": "accuracy" if manifest.task != "token" else "entity F1",
        "cpu": cpu.record(),
        "budget": dataclasses.asdict(budget),
    }
    out = args.out.with_name(f"{args.out.name}-{cpu.microarchitecture or cpu.isa}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    steps = budget.steps
    print(f"{out}: {len(steps)} steps, {len(budget.fp32_units)} units in fp32, final drop {budget.drop_points:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
