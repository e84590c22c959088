"""`edgebert verify`: re-check an artifact on this machine: checksums, golden logits, and the conformance kit."""

from __future__ import annotations

import json
from pathlib import Path


def add_verify(commands) -> None:
    p = commands.add_parser(
        "verify",
        help="re-check an artifact: checksums, golden logits, token ids of the conformance kit",
        description="Load ARTIFACT as an app would (checksums, manifest, golden logits replayed on this CPU), then "
        "tokenize every string of its conformance kit and compare the ids. Exit 0 when all match, 1 otherwise.",
    )
    p.add_argument("artifact", type=Path, metavar="ARTIFACT")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_verify)


def run_verify(args) -> int:
    from ..core.artifact import SEQUENCE, read_manifest
    from ..runtime import Classifier, TokenClassifier
    from ..runtime.conformance import check_conformance

    front_door = Classifier if read_manifest(args.artifact).task == SEQUENCE else TokenClassifier
    model = front_door.load(args.artifact, verify=True, check_golden=True)  # raises ArtifactError on any mismatch
    report = check_conformance(args.artifact, model.encoder)
    golden = len(model.manifest.golden.texts) if model.manifest.golden else 0
    if args.json:
        print(
            json.dumps(
                {"ok": report.ok, "strings": report.strings, "golden_texts": golden, "mismatches": report.mismatches}
            )
        )
    else:
        print(f"checksums        ok ({len(model.manifest.files)} files)")
        print(f"golden logits    ok ({golden} texts within atol {model.manifest.golden.atol if golden else '-'})")
        print(
            f"conformance kit  {report.strings - len(report.mismatches)}/{report.strings} strings give the recorded ids"
        )
        for row in report.mismatches[:10]:
            print(
                f"  line {row['line']}: {row['text'][:60]!r}: expected {row['expected'][:12]}..., got {row['got'][:12]}..."
            )
    return 0 if report.ok else 1
