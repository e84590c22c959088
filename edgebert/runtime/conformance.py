"""Re-check an artifact's conformance kit with this runtime: the ids it gives each string must be the recorded ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
        logits = row.get("logits", [])
        if not isinstance(row.get("windows", []), list) or not (
            isinstance(logits, list) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in logits)
        ):
            raise ArtifactError(f"{path}:{line_no}: 'windows' must be a list, 'logits' a list of numbers; re-export.")
        rows.append(row)
    return rows


def check_conformance(bundle: Path, model) -> ConformanceReport:
    """Every kit string's ids; for long texts, the windows `model` cuts them into and (text classifiers) their
    logits within the golden tolerance. `model`: the loaded ArtifactModel."""
    encoder: TextEncoder = model.encoder
    rows = read_kit(bundle)
    got, _ = encoder.encode([row["text"] for row in rows])
    report = ConformanceReport(strings=len(rows))
    for line, (row, ids) in enumerate(zip(rows, got, strict=True), 1):
        if ids != row["ids"]:
            report.mismatches.append({"line": line, "text": row["text"], "expected": row["ids"], "got": ids})
    for line, row in enumerate(rows, 1):
        if "windows" in row:
            _check_windows(model, line, row, report)
    return report


def _check_windows(model, line: int, row: dict, report: ConformanceReport) -> None:
    policy = model.long_text_policy()
    windows = model.encoder.encode_windows([row["text"]], None, policy)
    if windows.ids != row["windows"] or bool(windows.truncated[0]) != row.get("truncated"):
        report.mismatches.append({"line": line, "text": row["text"], "expected": row["windows"], "got": windows.ids})
        return
    if "logits" in row and hasattr(model, "logits_of_windows"):
        got = model.logits_of_windows(windows, policy)[0]
        golden = model.manifest.golden
        atol = golden.atol if golden else 1e-3
        if not np.max(np.abs(got - np.asarray(row["logits"]))) <= atol:
            report.mismatches.append(
                {"line": line, "text": row["text"], "expected": row["logits"], "got": got.tolist()}
            )
