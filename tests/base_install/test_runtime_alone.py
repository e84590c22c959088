"""The runtime as an app embeds it: these run in the full suite and again in a fresh venv holding only
`pip install .` (make test-base), where torch and the other build-side packages must be absent."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TAGGED, TEXTS, built_elsewhere

pytestmark = pytest.mark.base_install
# (tqdm is absent from this list: tokenizers -> huggingface_hub brings it, not edgebert)
BUILD_SIDE = ("torch", "transformers", "optimum", "onnx", "nncf", "openvino", "matplotlib", "safetensors")


def edgebert_cli() -> list[str]:
    return [str(Path(sys.executable).with_name("edgebert"))]


@pytest.mark.skipif(built_elsewhere() is None, reason="only meaningful in the base-install venv (make test-base)")
def test_base_install_has_no_build_side_packages():
    import edgebert

    present = [name for name in BUILD_SIDE if importlib.util.find_spec(name) is not None]
    assert present == [], f"the base install pulled in {present}"
    assert "site-packages" in edgebert.__file__, "the installed wheel, not the source tree, must be under test"


def test_classifier_gives_the_full_installs_answers(runtime_artifacts, expected):
    from edgebert import Classifier

    for kind in ("fp32", "int8"):
        clf = Classifier.load(runtime_artifacts[kind])  # checksums and golden sample verified
        assert clf.labels == expected[kind]["labels"]
        np.testing.assert_allclose(clf.predict_logits(TEXTS), expected[kind]["logits"], atol=1e-5)


def test_token_classifier_gives_the_full_installs_entities(runtime_artifacts, expected):
    from edgebert import TokenClassifier

    ner = TokenClassifier.load(runtime_artifacts["token"])
    found = [[e.__dict__ for e in ner.entities(text)] for text in TAGGED]
    assert json.loads(json.dumps(found)) == expected["token"]["entities"]


def test_predict_command_runs(runtime_artifacts):
    result = subprocess.run(
        [*edgebert_cli(), "predict", str(runtime_artifacts["int8"]), "--json", *TEXTS[:2]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == TEXTS[:2] and all(0 <= r["score"] <= 1 for r in rows)


def test_bench_command_runs(runtime_artifacts, tmp_path):
    result = subprocess.run(
        [*edgebert_cli(), "bench", str(runtime_artifacts["int8"]), str(runtime_artifacts["fp32"])]
        + ["--shapes", "1x16", "--rounds", "1", "--seconds", "0.05", "--no-cold-start", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "1x16 | int8" in result.stdout


@pytest.mark.skipif(built_elsewhere() is None, reason="only meaningful in the base-install venv (make test-base)")
def test_build_side_commands_name_the_extra_to_install(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [*edgebert_cli(), "train", "--data", "bbc_news", "--out", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2
    assert "pip install 'edgebert[train]'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(built_elsewhere() is None, reason="only meaningful in the base-install venv (make test-base)")
def test_distill_without_torch_names_the_extra(runtime_artifacts, tmp_path):
    result = subprocess.run(
        [*edgebert_cli(), "distill", str(runtime_artifacts["int8"]), "--layers", "1", "--data", "bbc_news"]
        + ["--out", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pip install 'edgebert[train]'" in result.stderr
