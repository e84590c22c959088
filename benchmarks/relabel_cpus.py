"""Re-name the CPU in results files where archspec's name contradicted the flags (core/cpu.flags_contradict).

    python benchmarks/relabel_cpus.py  ->  rewrites benchmarks/results/**/*.json in place, idempotent

Files written before 2026-12-07 trusted archspec's name over the flags: an AMX Xeon (KVM, family 6 model 167) was
recorded as "icelake". Each CPU record (a dict with "microarchitecture" and its flags or the table's name for them) whose flags prove a later
microarchitecture gets the flags' name; archspec's is kept beside it and the change is noted in the record.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgebert.core.cpu import flags_contradict, microarchitecture_from_flags

RESULTS = Path(__file__).parent / "results"
NOTE = "relabelled 2026-12-07: the flags prove a later microarchitecture than archspec's name"


def relabel(record: dict) -> bool:
    """Fix one CPU record in place; True if it changed."""
    vendor = record.get("vendor") or (record.get("identity") or "").split(" ")[0]
    by_flags = record.get("microarchitecture_by_edgebert_table") or microarchitecture_from_flags(
        vendor, record.get("arch", "x86_64"), set(record.get("flags", []))
    )
    name = record.get("microarchitecture", "")
    if not flags_contradict(name, by_flags):
        return False
    record["microarchitecture_by_archspec"] = name
    record["microarchitecture"] = by_flags
    record["microarchitecture_source"] = (
        f"edgebert table (by flags; {record.get('microarchitecture_source')} said {name})"
    )
    record["relabelled"] = NOTE
    return True


def walk(node) -> int:
    changed = 0
    if isinstance(node, dict):
        if "microarchitecture" in node and ({"flags", "microarchitecture_by_edgebert_table"} & node.keys()):
            changed += relabel(node)
        changed += sum(walk(value) for value in node.values())
    elif isinstance(node, list):
        changed += sum(walk(value) for value in node)
    return changed


def main() -> int:
    for path in sorted(RESULTS.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        changed = walk(data)
        if changed:
            path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{path.relative_to(RESULTS)}: {changed} CPU record(s) relabelled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
