"""The artifact bundle refuses anything missing, altered or mismatched, naming what is wrong."""

from __future__ import annotations

import json
import shutil

import pytest

from edgebert import Classifier
from edgebert.core.artifact import MANIFEST, read_manifest
from edgebert.core.errors import ArtifactError, ArtifactExistsError
from edgebert.core.files import atomic_directory


def test_manifest_records_what_the_runtime_needs(tiny_int8_artifact):
    manifest = read_manifest(tiny_int8_artifact)
    assert manifest.precision == "int8" and manifest.backend == "onnxruntime"
    assert manifest.labels == ["business", "sports", "tech"]
    assert set(manifest.files) == {
        "model.onnx",
        "tokenizer.json",
        "conformance.jsonl",
        "README.md",
        "config.json",
        "tokenizer_config.json",
    }
    assert manifest.quantization.recipe == "avx2" and manifest.quantization.reduce_range is True
    assert manifest.optimization.fusions["Attention"] == 2
    assert manifest.tools["onnxruntime"] and manifest.tools["torch"]
    assert len(manifest.golden.texts) == len(manifest.golden.logits) == len(manifest.golden.input_ids)
    assert 0 <= manifest.evaluation.drift.agreement <= 1


def test_altered_model_file_is_refused_by_name(artifact_copy):
    model = artifact_copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model\.onnx does not match its checksum"):
        Classifier.load(artifact_copy)


def test_truncated_tokenizer_is_refused_by_name(artifact_copy):
    tokenizer = artifact_copy / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes()[:100])
    with pytest.raises(ArtifactError, match=r"tokenizer\.json does not match"):
        Classifier.load(artifact_copy)


def test_missing_file_is_refused_by_name(artifact_copy):
    (artifact_copy / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"missing model\.onnx"):
        Classifier.load(artifact_copy)


def test_missing_or_corrupt_manifest(artifact_copy, tmp_path):
    (artifact_copy / MANIFEST).write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt"):
        Classifier.load(artifact_copy)
    with pytest.raises(ArtifactError, match="is not an edgebert artifact"):
        Classifier.load(tmp_path)
    with pytest.raises(ArtifactError, match="not a directory"):
        Classifier.load(tmp_path / "nope")


def test_future_format_version_is_refused(artifact_copy):
    path = artifact_copy / MANIFEST
    data = json.loads(path.read_text())
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="format version 99"):
        Classifier.load(artifact_copy)


def test_golden_sample_mismatch_is_refused(artifact_copy):
    path = artifact_copy / MANIFEST
    data = json.loads(path.read_text())
    data["golden"]["logits"][0] = [v + 1.0 for v in data["golden"]["logits"][0]]
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="outputs differ"):
        Classifier.load(artifact_copy)
    Classifier.load(artifact_copy, check_golden=False)  # the documented escape hatch


def test_golden_tokenization_mismatch_is_refused(artifact_copy):
    path = artifact_copy / MANIFEST
    data = json.loads(path.read_text())
    data["golden"]["input_ids"][0][1] += 1
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="different token ids"):
        Classifier.load(artifact_copy)


def test_atomic_directory_never_leaves_partial_output(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_directory(out) as staging:
        (staging / "half.bin").write_bytes(b"x")
        raise RuntimeError("export failed halfway")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(ArtifactExistsError, match="--force"), atomic_directory(out):
        pass
    assert (out / "keep.txt").read_text() == "precious"
    with atomic_directory(out, force=True) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_export_refuses_existing_artifact_before_doing_work(tiny_checkpoint, tiny_artifact):
    from edgebert.export.config import ExportConfig
    from edgebert.export.pipeline import export_artifact

    before = {p.name: p.stat().st_mtime_ns for p in tiny_artifact.iterdir()}
    with pytest.raises(ArtifactExistsError):
        export_artifact(tiny_checkpoint, tiny_artifact, ExportConfig(), progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in tiny_artifact.iterdir()} == before


def test_copied_artifact_loads_elsewhere(tiny_int8_artifact, tmp_path):
    dst = tmp_path / "moved"
    shutil.copytree(tiny_int8_artifact, dst)
    assert Classifier.load(dst).labels == ["business", "sports", "tech"]


def test_every_artifact_carries_a_model_card_with_the_manifests_numbers(tiny_int8_artifact):
    from edgebert.core.artifact import MODEL_CARD
    from edgebert.core.files import sha256_file

    manifest = read_manifest(tiny_int8_artifact)
    card = (tiny_int8_artifact / MODEL_CARD).read_text(encoding="utf-8")
    assert manifest.files[MODEL_CARD] == sha256_file(tiny_int8_artifact / MODEL_CARD)  # checksummed like the rest
    assert card.startswith("---\nlibrary_name: edgebert\npipeline_tag: text-classification\n")
    e = manifest.evaluation
    assert f"| `{e.data}` | selected on | {e.n} | {100 * e.score:.2f}" in card
    assert all(f"`{label}`" in card for label in manifest.labels)
    assert f"recipe `{manifest.quantization.recipe}`" in card and "Classifier.load(" in card
