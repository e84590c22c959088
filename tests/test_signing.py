"""Signed artifacts (issue 32): the manifest proves a bundle is intact, a signature proves who made it. A rewrite
that keeps the manifest self-consistent (thresholds of 1e-300, a sequence model relabelled multi-label) loads
without a key, and fails `verify` and `load` with one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgebert import Classifier
from edgebert.cli import main
from edgebert.core.errors import ArtifactError
from edgebert.core.signature import SIGNATURE

pytest.importorskip("model_signing")

from .conftest import Server  # noqa: E402


def key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    encoding = serialization.Encoding.PEM
    private.write_bytes(key.private_bytes(encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    (private, public), (_, other) = key_pair(folder, "maker"), key_pair(folder, "someone-else")
    return {"private": private, "public": public, "other": other}


@pytest.fixture(scope="module")
def signed(tmp_path_factory, tiny_checkpoint, keys) -> Path:
    out = tmp_path_factory.mktemp("signed") / "int8"
    assert main(["export", str(tiny_checkpoint), "--out", str(out), "--int8", "--sign", str(keys["private"])]) == 0
    return out


@pytest.fixture
def copy(signed, tmp_path) -> Path:
    return Path(shutil.copytree(signed, tmp_path / "copy"))


def rewrite_manifest(artifact: Path, **changes) -> None:
    """A self-consistent rewrite: the manifest's checksums cover the other files, which are untouched."""
    manifest = json.loads((artifact / "edgebert.json").read_text())
    (artifact / "edgebert.json").write_text(json.dumps({**manifest, **changes}))


def test_a_signed_artifact_verifies_and_loads_with_its_public_key(signed, keys, capsys):
    assert (signed / SIGNATURE).is_file()
    assert main(["verify", str(signed), "--public-key", str(keys["public"])]) == 0
    assert "signature        ok" in capsys.readouterr().out
    assert Classifier.load(signed, public_key=keys["public"]).predict(["goal"])[0].label


@pytest.mark.parametrize(
    "tamper",
    ["thresholds of 1e-300", "relabelled", "a flipped weight byte", "a file added", "the signature removed"],
)
def test_any_change_after_signing_fails_verify_and_load_with_a_key(copy, keys, capsys, tamper):
    manifest = json.loads((copy / "edgebert.json").read_text())
    if tamper == "thresholds of 1e-300":
        rewrite_manifest(copy, task="multi_label", thresholds=[1e-300] * len(manifest["labels"]))
    elif tamper == "relabelled":
        rewrite_manifest(copy, labels=manifest["labels"][::-1])
    elif tamper == "a flipped weight byte":
        data = bytearray((copy / "model.onnx").read_bytes())
        data[len(data) // 2] ^= 0x10
        (copy / "model.onnx").write_bytes(bytes(data))
    elif tamper == "a file added":
        (copy / "notes.txt").write_text("added later")
    else:
        (copy / SIGNATURE).unlink()
    if tamper in ("thresholds of 1e-300", "relabelled"):
        Classifier.load(copy)  # the gap a signature closes: without a key the rewrite loads
    with pytest.raises(ArtifactError, match="signature|not signed"):
        Classifier.load(copy, public_key=keys["public"])
    capsys.readouterr()
    assert main(["verify", str(copy), "--public-key", str(keys["public"])]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_another_key_does_not_verify(signed, keys):
    with pytest.raises(ArtifactError, match="signed by another key"):
        Classifier.load(signed, public_key=keys["other"])


def test_serve_with_a_key_starts_only_on_a_signed_artifact(signed, tiny_int8_artifact, keys, tmp_path):
    server = Server(signed, tmp_path, "--public-key", str(keys["public"]))
    try:
        assert server.json("/v1/classify", {"inputs": ["goal"]})[0] == 200
    finally:
        assert server.stop()[0] == 0
    with pytest.raises(RuntimeError, match="not signed"):
        Server(tiny_int8_artifact, tmp_path, "--public-key", str(keys["public"]))


@pytest.mark.parametrize("key", ["public", "missing", "text"])
def test_sign_with_something_that_is_not_a_private_key_fails_before_any_work(tiny_checkpoint, keys, tmp_path, key):
    path = {"public": keys["public"], "missing": tmp_path / "nope.pem", "text": tmp_path / "t.pem"}[key]
    if key == "text":
        path.write_text("hello")
    out = tmp_path / "out"
    assert main(["export", str(tiny_checkpoint), "--out", str(out), "--sign", str(path), "--quiet"]) == 2
    assert not out.exists()


def test_a_fleet_bundle_is_signed_as_a_whole(tiny_int8_artifact, tiny_artifact, keys, tmp_path):
    bundle = tmp_path / "fleet"
    args = ["bundle", str(tiny_int8_artifact), str(tiny_artifact), "--out", str(bundle), "--sign", str(keys["private"])]
    assert main(args) == 0
    assert main(["verify", str(bundle), "--public-key", str(keys["public"])]) == 0
    variant = next(p for p in bundle.iterdir() if p.is_dir())
    (variant / "tokenizer.json").write_text((variant / "tokenizer.json").read_text() + " ")
    with pytest.raises(ArtifactError, match="signature"):
        Classifier.load(bundle, public_key=keys["public"])


def test_predict_and_score_take_a_public_key_and_refuse_what_it_did_not_sign(signed, copy, keys, tmp_path, capsys):
    key = ["--public-key", str(keys["public"])]
    assert main(["predict", str(signed), "goal for the team", *key]) == 0
    rewrite_manifest(copy, thresholds=None, labels=["a", "b", "c"])  # self-consistent, unsigned change
    assert main(["predict", str(copy), "goal", *key]) == 2
    assert main(["predict", str(signed), "goal", "--public-key", str(keys["other"])]) == 2
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "1", "text": "goal"}\n')
    score = ["score", "--input", str(corpus), "--workers", "1", "--quiet"]
    assert main([*score[:1], str(signed), *score[1:], "--output", str(tmp_path / "a.jsonl"), *key]) == 0
    assert main([*score[:1], str(copy), *score[1:], "--output", str(tmp_path / "b.jsonl"), *key]) == 2
    assert not (tmp_path / "b.jsonl").exists()
    assert "signed" in capsys.readouterr().err
