"""Artifacts for the base-install tests.

In the full suite (`make test`), they are the session's tiny artifacts, and with EDGEBERT_SAVE_ARTIFACTS=DIR they
are copied to DIR with the outputs the full install gives (expected.json). In the fresh base venv
(`make test-base`), EDGEBERT_TEST_ARTIFACTS=DIR points at that copy: nothing here may need torch.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

TEXTS = ["Market shares and profit at the bank", "The team won the cup", "", "中文 混合 🙂"]
TAGGED = ["alice joined initech in paris", "the big week"]
KINDS = ("fp32", "int8", "token")


def built_elsewhere() -> Path | None:
    value = os.environ.get("EDGEBERT_TEST_ARTIFACTS")
    return Path(value) if value else None


@pytest.fixture(scope="session")
def runtime_artifacts(request) -> dict[str, Path]:
    if (given := built_elsewhere()) is not None:
        return {kind: given / kind for kind in KINDS}
    built = {
        "fp32": request.getfixturevalue("tiny_artifact"),
        "int8": request.getfixturevalue("tiny_int8_artifact"),
        "token": _token_artifact(request),
    }
    if save := os.environ.get("EDGEBERT_SAVE_ARTIFACTS"):
        _save(built, Path(save))
    return built


@pytest.fixture(scope="session")
def expected(runtime_artifacts) -> dict:
    """What the full install's runtime answers on TEXTS / TAGGED, per artifact (recorded when saving)."""
    if (given := built_elsewhere()) is not None:
        return json.loads((given / "expected.json").read_text(encoding="utf-8"))
    return outputs(runtime_artifacts)


def outputs(artifacts: dict[str, Path]) -> dict:
    from edgebert import Classifier, TokenClassifier

    result = {}
    for kind in ("fp32", "int8"):
        clf = Classifier.load(artifacts[kind])
        result[kind] = {"labels": clf.labels, "logits": clf.predict_logits(TEXTS).tolist()}
    ner = TokenClassifier.load(artifacts["token"])
    result["token"] = {"entities": [[e.__dict__ for e in ner.entities(t)] for t in TAGGED]}
    return result


def _token_artifact(request) -> Path:
    from edgebert.export.config import ExportConfig
    from edgebert.export.pipeline import export_artifact
    from edgebert.export.recipes import quantization_from_recipe

    checkpoint = request.getfixturevalue("tiny_token_checkpoint")
    out = request.getfixturevalue("tmp_path_factory").mktemp("base-install") / "token"
    export_artifact(checkpoint, out, ExportConfig(quantization=quantization_from_recipe("avx2")), progress=False)
    return out


def _save(built: dict[str, Path], to: Path) -> None:
    if to.exists():
        shutil.rmtree(to)
    to.mkdir(parents=True)
    for kind, path in built.items():
        shutil.copytree(path, to / kind)
    (to / "expected.json").write_text(json.dumps(outputs(built), ensure_ascii=False), encoding="utf-8")
