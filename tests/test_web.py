"""The in-browser page (examples/web) in a real headless Chromium: onnxruntime-web runs the INT8 artifact, the
shared JavaScript tokenizer gives the conformance kit's ids, the logits agree with Python within the golden
tolerance, and the rendered result is on a screenshot. Needs node, npm and Debian's chromium (`make web-setup`);
skipped with the reason otherwise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgebert import Classifier

from .conftest import CHROMIUM, WEB, npm_example, page_server

KIT_TEXTS = 200  # of the conformance kit's strings (Chinese, emoji, long texts, ...) run through the page


@pytest.fixture(scope="module")
def web_example() -> Path:
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: `make web-setup` installs Debian's chromium")
    return npm_example(WEB, "onnxruntime-web")


@pytest.mark.parametrize("tokenizer", ["wordpiece", "byte-level BPE"])
def test_page_classifies_in_chromium_like_python(web_example, tokenizer, request, tmp_path):
    # WordPiece runs on the port in tokenizer.mjs, byte-level BPE (RoBERTa's) on @huggingface/tokenizers
    tiny_int8_artifact = request.getfixturevalue("tiny_int8_artifact" if tokenizer == "wordpiece" else "bpe_artifact")
    kit = [json.loads(line) for line in (tiny_int8_artifact / "conformance.jsonl").read_text().splitlines()]
    texts = [row["text"] for row in kit[:KIT_TEXTS]]
    (tmp_path / "texts.json").write_text(json.dumps(texts, ensure_ascii=False))
    shot = tmp_path / "page.png"
    with page_server(tiny_int8_artifact, tmp_path) as url:
        result = subprocess.run(
            ["node", "check.mjs", url, str(tmp_path / "texts.json"), str(shot), CHROMIUM],
            cwd=WEB,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    page = json.loads(result.stdout)
    assert page["errors"] == [] and page["ready"]["isolated"]  # COOP/COEP: WASM threads are allowed

    # the same ids as the conformance kit recorded from the Rust tokenizer, every string
    assert [row["ids"] for row in page["kit"]] == [row["ids"] for row in kit[:KIT_TEXTS]]
    # the same logits as the Python runtime (one text per call in both), within the artifact's golden tolerance
    clf = Classifier.load(tiny_int8_artifact)
    python = np.concatenate([clf.predict_logits([text]) for text in texts])
    browser = np.asarray([row["logits"] for row in page["kit"]])
    assert np.max(np.abs(browser - python)) <= clf.manifest.golden.atol

    # the UI shows Python's label for the first text, and the screenshot has the rendered bars
    assert page["ui"]["best"] == clf.predict(texts[0]).label and page["ui"]["rows"] == len(clf.labels)
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))[..., :3]  # RGB floats in [0, 1]
    best_bar = np.all(np.abs(pixels - np.array([0xD6, 0x27, 0x28]) / 255) < 0.02, axis=-1)
    assert best_bar.sum() > 500, "the highlighted bar of the best label is not on the screenshot"


def test_the_page_server_serves_no_file_outside_the_artifact(tiny_int8_artifact, tmp_path):
    import http.client

    npm_example(WEB, "onnxruntime-web")
    artifact = tmp_path / "artifact"
    shutil.copytree(tiny_int8_artifact, artifact)
    (tmp_path / "secret.txt").write_text("not for the web")
    manifest = json.loads((artifact / "edgebert.json").read_text())
    manifest["files"]["../secret.txt"] = "0" * 64  # a hostile manifest naming a file outside its folder
    (artifact / "edgebert.json").write_text(json.dumps(manifest))
    statuses = {}
    with page_server(artifact, tmp_path) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        for path in ("/artifact/../secret.txt", "/artifact/tokenizer.json"):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", path)
            statuses[path] = connection.getresponse().status
    assert statuses == {"/artifact/../secret.txt": 404, "/artifact/tokenizer.json": 200}


def test_the_page_server_answers_only_its_own_host_name_and_a_missing_file_with_404(tiny_int8_artifact, tmp_path):
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 sends Host: evil.example."""
    import http.client

    npm_example(WEB, "onnxruntime-web")
    artifact = Path(shutil.copytree(tiny_int8_artifact, tmp_path / "artifact"))
    (artifact / "tokenizer.json").unlink()  # listed by the manifest, gone from the folder
    statuses = {}
    with page_server(artifact, tmp_path) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        for host, path in [
            ("evil.example", "/"),
            (f"evil.example:{port}", "/"),
            (f"localhost:{port}", "/"),
            (f"127.0.0.1:{port}", "/artifact/tokenizer.json"),
        ]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", path, headers={"Host": host})
            statuses[host] = connection.getresponse().status
    assert list(statuses.values()) == [403, 403, 200, 404]


@pytest.mark.parametrize("manifest", ["[]", '{"files": 3}', '{"files": {"1": "x"', '"a string"', "{}"])
def test_the_page_server_refuses_a_manifest_that_is_not_one_in_one_line(tmp_path, manifest):
    npm_example(WEB, "onnxruntime-web")
    (tmp_path / "edgebert.json").write_text(manifest)
    command = [sys.executable, str(WEB / "serve.py"), str(tmp_path), "--port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and "re-export the artifact" in done.stderr


def test_the_page_refuses_a_model_whose_bytes_do_not_match_the_manifest(web_example, tiny_int8_artifact, tmp_path):
    artifact = tmp_path / "artifact"
    shutil.copytree(tiny_int8_artifact, artifact)
    model = bytearray((artifact / "model.onnx").read_bytes())
    model[-1] ^= 1  # one bit
    (artifact / "model.onnx").write_bytes(bytes(model))
    (tmp_path / "texts.json").write_text('["a text"]')
    with page_server(artifact, tmp_path) as url:
        result = subprocess.run(
            ["node", "check.mjs", url, str(tmp_path / "texts.json"), str(tmp_path / "p.png"), CHROMIUM],
            cwd=WEB,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode != 0 and "model.onnx does not match its checksum" in result.stderr
