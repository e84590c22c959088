"""The runtime (library and `edgebert predict`) works with torch and transformers unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from .conftest import BLOCK_TORCH


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_block_really_blocks():
    result = _run("import torch")
    assert result.returncode != 0 and "blocked" in result.stderr


def test_classifier_loads_and_predicts_without_torch(tiny_int8_artifact):
    result = _run(
        f"""
        import json, sys
        from edgebert import Classifier
        clf = Classifier.load({str(tiny_int8_artifact)!r})
        p = clf.predict(["goal for the team", ""])
        assert "torch" not in sys.modules and "transformers" not in sys.modules
        print(json.dumps([x.label for x in p]))
        """
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2


def test_predict_cli_without_torch(tiny_int8_artifact):
    result = _run(
        f"""
        from edgebert.cli import main
        sys.exit(main(["predict", {str(tiny_int8_artifact)!r}, "goal for the team", "--json"]))
        """
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["label"] in ("business", "sports", "tech")


def test_bench_cli_without_torch(tiny_int8_artifact, tiny_artifact, data_dir, tmp_path):
    """A user benchmarks on the target device with the base install: artifacts only, fp32 artifact as reference."""
    out = tmp_path / "bench"
    result = _run(
        f"""
        from edgebert.cli import main
        code = main(["bench", {str(tiny_int8_artifact)!r}, "--reference", {str(tiny_artifact)!r},
                     "--data", {str(data_dir / "dev.jsonl")!r}, "--shapes", "1x8", "--rounds", "1",
                     "--seconds", "0.05", "--no-cold-start", "--out", {str(out)!r}, "--quiet"])
        assert "torch" not in sys.modules and "transformers" not in sys.modules
        sys.exit(code)
        """
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["accuracy"] and (out / "report.md").exists()
