"""The manifest cannot lie: every field is typed and checked at load, and a refusal names the field."""

from __future__ import annotations

import json

import pytest

from edgebert import Classifier
from edgebert.core.artifact import MANIFEST
from edgebert.core.errors import ArtifactError, InputError


def _edit(artifact, change) -> None:
    path = artifact / MANIFEST
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda m: m.update(labels="business"), "labels"),
        (lambda m: m.update(labels=[0, 1, 2]), "labels[0]"),
        (lambda m: m.update(labels=[m["labels"][0]] * len(m["labels"])), "labels"),
        (lambda m: m.update(max_length="128"), "max_length"),
        (lambda m: m.update(max_length=100000), "max_length"),
        (lambda m: m.update(max_length=600, golden=None), "max_length"),  # past the positions, golden opted out
        (lambda m: m.update(files={}), "files"),
        (lambda m: m["files"].update({"/etc/passwd": "0" * 64}), "files"),
        (lambda m: m.update(model_files=["../../outside/model.onnx"]), "model_files"),
        (lambda m: m.update(task="text-classification"), "task"),
        (lambda m: m.update(golden=None), "golden"),
        (lambda m: m["golden"].update(atol=1e9), "golden.atol"),
        (lambda m: m["golden"]["logits"][0].append(1.0), "golden.logits[0]"),
        (lambda m: m.update(surprise=1), "surprise"),
        (lambda m: m["quantization"].update(per_channel="yes"), "quantization.per_channel"),
    ],
)
def test_lying_or_malformed_field_is_refused_by_name(artifact_copy, change, field):
    _edit(artifact_copy, change)
    with pytest.raises(ArtifactError, match=field.replace("[", r"\[").replace("]", r"\]")):
        Classifier.load(artifact_copy)


@pytest.mark.parametrize(
    "text",
    ["[]", "null", '{"format_version": 2, "labels": NaN}', "[" * 200_000 + "]" * 200_000, '{"format_version": 2}'],
    ids=["list", "null", "nan", "deep", "empty"],
)
def test_malformed_json_is_an_artifact_error_not_a_traceback(artifact_copy, text):
    (artifact_copy / MANIFEST).write_text(text)
    with pytest.raises(ArtifactError):
        Classifier.load(artifact_copy)


def test_permuted_labels_are_caught_by_the_golden_sample_or_width(artifact_copy):
    _edit(artifact_copy, lambda m: m.update(labels=[*m["labels"], "extra"]))
    with pytest.raises(ArtifactError, match="golden|labels"):
        Classifier.load(artifact_copy)


def test_symlink_leaving_the_bundle_is_refused(artifact_copy, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_bytes((artifact_copy / "tokenizer.json").read_bytes())
    (artifact_copy / "tokenizer.json").unlink()
    (artifact_copy / "tokenizer.json").symlink_to(outside)
    with pytest.raises(ArtifactError, match="outside"):
        Classifier.load(artifact_copy)


@pytest.mark.parametrize("options", [{"batch_size": -1}, {"batch_size": 0}, {"threads": 0}, {"threads": -2}])
def test_bad_load_options_are_refused(tiny_int8_artifact, options):
    with pytest.raises(InputError):
        Classifier.load(tiny_int8_artifact, **options)
