"""A model directory from someone else is read, never trusted: no file outside it reaches an artifact, and a config
that lies about the weights is refused in one line before torch allocates anything (issue 32)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgebert.cli import main
from edgebert.core.errors import ArtifactError
from edgebert.modeling.checkpoint import read_checkpoint_meta

from .conftest import save_hf_classifier

LINKABLE = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "model.safetensors"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, tiny_base) -> Path:
    hf_dir = save_hf_classifier(tmp_path_factory.mktemp("pristine") / "m", "bert", tiny_base)
    (hf_dir / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 64}))
    (hf_dir / "special_tokens_map.json").write_text(json.dumps({"cls_token": "[CLS]"}))
    return hf_dir


@pytest.fixture
def hf_dir(tmp_path, pristine) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "model"))


def refused(hf_dir: Path, tmp_path: Path, capsys, message: str) -> None:
    """read_checkpoint_meta raises ArtifactError, and `export` says it in one line, exits 2 and writes nothing."""
    with pytest.raises(ArtifactError, match=message):
        read_checkpoint_meta(hf_dir)
    capsys.readouterr()
    assert main(["export", str(hf_dir), "--out", str(tmp_path / "out"), "--int8"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and message.split()[0] in err
    assert not (tmp_path / "out").exists()


def edit_config(hf_dir: Path, **changes) -> None:
    config = json.loads((hf_dir / "config.json").read_text())
    (hf_dir / "config.json").write_text(json.dumps({**config, **changes}))


@pytest.mark.parametrize("name", LINKABLE)
def test_a_file_linked_from_outside_the_directory_is_refused(hf_dir, tmp_path, capsys, name):
    outside = tmp_path / "elsewhere" / name
    outside.parent.mkdir()
    shutil.move(hf_dir / name, outside)  # the same bytes, so only the link can be the reason
    (hf_dir / name).symlink_to(outside)
    refused(hf_dir, tmp_path, capsys, "links outside")


def test_an_edgebert_checkpoint_with_a_linked_file_is_refused(tmp_path, tiny_checkpoint, capsys):
    checkpoint = Path(shutil.copytree(tiny_checkpoint, tmp_path / "ckpt"))
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = x\n")
    (checkpoint / "special_tokens_map.json").symlink_to(secret)
    refused(checkpoint, tmp_path, capsys, "links outside")


def test_links_inside_the_directory_and_the_hugging_face_cache_layout_are_read(tmp_path, pristine):
    """snapshots/<rev>/<file> -> ../../blobs/<hash>, as huggingface_hub caches a model, stays inside its entry."""
    entry = tmp_path / "models--org--name"
    snapshot, blobs = entry / "snapshots" / "abc123", entry / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    for i, file in enumerate(sorted(pristine.iterdir())):
        shutil.copyfile(file, blobs / f"blob{i}")
        (snapshot / file.name).symlink_to(Path("../../blobs") / f"blob{i}")
    assert read_checkpoint_meta(snapshot).labels == ["business", "sport", "tech"]
    assert main(["export", str(snapshot), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert not any(p.is_symlink() for p in (tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"max_position_embeddings": 10**9}, "max_position_embeddings = 1000000000 is not a size"),
        ({"max_position_embeddings": 256}, "max_position_embeddings = 256, but model.safetensors holds 128 rows"),
        ({"vocab_size": 1000}, "vocab_size = 1000, but model.safetensors holds"),
        ({"hidden_size": "32"}, "hidden_size = '32' is not a size"),
        ({"num_hidden_layers": True}, "num_hidden_layers = True is not a size"),
        ({"model_type": "gpt2"}, "model_type 'gpt2' is not an encoder edgebert exports"),
        ({"id2label": {"0": "a", "1": "b"}}, "id2label names 2 labels, but the classifier"),
        ({"id2label": {"0": None, "1": "b", "2": "c"}}, "id2label names must be non-empty strings; None"),
        ({"id2label": {"0": {"x": 1}, "1": "b", "2": "c"}}, "id2label names must be non-empty strings"),
    ],
)
def test_a_config_that_does_not_describe_the_weights_is_refused(hf_dir, tmp_path, capsys, changes, message):
    edit_config(hf_dir, **changes)
    refused(hf_dir, tmp_path, capsys, message)


def test_truncated_weights_are_refused(hf_dir, tmp_path, capsys):
    weights = hf_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    refused(hf_dir, tmp_path, capsys, "is truncated or not a safetensors file")


@pytest.mark.parametrize("content", [b"", b"\xff" * 8 + b"{}", b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!"])
def test_weights_that_are_not_safetensors_are_refused(hf_dir, tmp_path, capsys, content):
    (hf_dir / "model.safetensors").write_bytes(content)
    refused(hf_dir, tmp_path, capsys, "is truncated or not a safetensors file")


def test_a_tokenizer_with_more_pieces_than_embedding_rows_is_refused(hf_dir, tmp_path, capsys):
    tokenizer = json.loads((hf_dir / "tokenizer.json").read_text())
    rows = len(tokenizer["model"]["vocab"])
    tokenizer["added_tokens"].append({**tokenizer["added_tokens"][0], "id": rows + 5, "content": "[NEW]"})
    (hf_dir / "tokenizer.json").write_text(json.dumps(tokenizer))
    refused(hf_dir, tmp_path, capsys, f"has {rows + 6} pieces but the model has {rows} embedding rows")


def test_token_labels_outside_bio_are_refused(tmp_path, tiny_base, capsys):
    hf_dir = save_hf_classifier(tmp_path / "ner", "bert", tiny_base, head="BertForTokenClassification")
    edit_config(hf_dir, id2label={"0": "O", "1": "S-PER", "2": "PER"}, label2id={"O": 0, "S-PER": 1, "PER": 2})
    refused(hf_dir, tmp_path, capsys, "token labels must be BIO tags")


def test_training_from_an_encoder_directory_with_a_linked_file_is_refused(tmp_path, tiny_base, data_dir, capsys):
    encoder = Path(shutil.copytree(tiny_base, tmp_path / "encoder"))
    secret = tmp_path / "credentials"
    secret.write_text("token = x\n")
    (encoder / "special_tokens_map.json").symlink_to(secret)
    args = ["train", "--data", str(data_dir / "train.jsonl"), "--model", str(encoder), "--out", str(tmp_path / "c")]
    assert main([*args, "--epochs", "1", "--quiet"]) == 2
    assert "links outside" in capsys.readouterr().err and not (tmp_path / "c").exists()
