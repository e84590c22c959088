"""Re-check an artifact's conformance kit with this runtime: the ids it gives each string must be the recorded ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..core.artifact import CONFORMANCE
from ..core.errors import ArtifactError
from .tokenization import TextEncoder


@dataclass
class ConformanceReport:
    strings: int
    mismatches: list[dict] = field(default_factory=list)  # {"line", "text", "expected", "got"}

    @property
    def ok(self) -> bool:
        return not self.mismatches


def read_kit(bundle: Path) -> list[dict]:
    path = Path(bundle) / CONFORMANCE
    if not path.is_file():
        raise ArtifactError(f"{bundle} has no {CONFORMANCE} (exported by an older edgebert); re-export to get the kit.")
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{path}:{line_no} is not valid JSON ({exc.msg}); re-export the artifact.") from None
        if not (isinstance(row, dict) and isinstance(row.get("text"), str) and isinstance(row.get("ids"), list)):
            raise ArtifactError(f"{path}:{line_no} must hold 'text' (string) and 'ids' (list); re-export the artifact.")
        rows.append(row)
    return rows


def check_conformance(bundle: Path, encoder: TextEncoder) -> ConformanceReport:
    rows = read_kit(bundle)
    got, _ = encoder.encode([row["text"] for row in rows])
    report = ConformanceReport(strings=len(rows))
    for line, (row, ids) in enumerate(zip(rows, got, strict=True), 1):
        if ids != row["ids"]:
            report.mismatches.append({"line": line, "text": row["text"], "expected": row["ids"], "got": ids})
    return report
