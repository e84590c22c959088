"""`edgebert serve`: a real server process on 127.0.0.1, real HTTP requests, every error path, a drained stop."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("uvicorn")

from edgebert import Classifier, TokenClassifier  # noqa: E402
from edgebert.cli import main  # noqa: E402
from edgebert.core.files import sha256_file  # noqa: E402

from .conftest import Server, make_examples  # noqa: E402

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def server(tiny_int8_artifact, tmp_path_factory):
    s = Server(
        tiny_int8_artifact,
        tmp_path_factory.mktemp("serve"),
        "--max-inputs",
        "64",
        "--max-queue",
        "100",
        "--max-body-bytes",
        "65536",
        "--read-timeout",
        "2",
    )
    yield s
    code, err = s.stop()
    assert code == 0 and "Traceback" not in err, err


def test_classify_equals_in_process_predict_in_input_order(server, tiny_int8_artifact):
    texts = [row["text"] for row in make_examples(20, seed=3)] + ["进球", ""]
    status, body = server.json("/v1/classify", {"inputs": texts})
    assert status == 200
    expected = Classifier.load(tiny_int8_artifact).predict(texts)
    assert [r["label"] for r in body["results"]] == [p.label for p in expected]
    for row, prediction in zip(body["results"], expected, strict=True):
        assert row["scores"] == pytest.approx(prediction.scores, abs=1e-6)


def test_concurrent_requests_are_micro_batched_and_each_gets_its_own_answers(server, tiny_int8_artifact):
    texts = [row["text"] for row in make_examples(64, seed=5)]
    clf = Classifier.load(tiny_int8_artifact)
    expected = clf.predict_proba(texts)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda t: server.json("/v1/classify", {"inputs": [t]}), texts))
    for (status, body), probabilities in zip(answers, expected, strict=True):
        assert status == 200
        got = body["results"][0]["scores"]
        np.testing.assert_allclose([got[label] for label in clf.labels], probabilities, atol=1e-6)
    _, metrics = server.request("/metrics")
    batch_count = next(
        float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("edgebert_batch_rows_count")
    )
    rows = next(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("edgebert_rows_total"))
    assert batch_count < rows, "concurrent single-text requests never shared an inference call"


def test_top_k_and_pairs_validation(server):
    status, body = server.json("/v1/classify", {"inputs": ["goal"], "top_k": 1})
    assert status == 200 and len(body["results"][0]["scores"]) == 1
    for bad in (
        {"inputs": ["a"], "top_k": 0},
        {"inputs": ["a"], "top_k": True},
        {"inputs": ["a", "b"], "pairs": ["x"]},
    ):
        assert server.json("/v1/classify", bad)[0] == 422


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"not json", 422),
        (b"[1, 2]", 422),
        (b'{"inputs": [1]}', 422),
        (b'{"inputs": null}', 422),
        (b'{"inputs": ["a"], "extra": 1}', 422),
        (b"[" * 30_000 + b"]" * 30_000, 422),
        (b'{"inputs": ' + json.dumps(["a"] * 65).encode() + b"}", 413),
        (b'{"inputs": ["' + b"a" * 70_000 + b'"]}', 413),
    ],
)
def test_bad_requests_get_a_status_and_a_message_never_a_traceback(server, payload, status):
    got, text = server.request("/v1/classify", raw=payload, headers={"Content-Type": "application/json"})
    assert got == status
    assert "error" in json.loads(text) and "Traceback" not in text


def test_unknown_paths_and_wrong_methods_get_json_errors(server):
    status, body = server.json("/v1/nope")
    assert status == 404 and "/v1/classify" in body["error"]
    status, body = server.json("/health", {"inputs": ["a"]})  # a POST to a GET endpoint
    assert status == 405 and "GET" in body["error"]
    status, body = server.json("/v1/classify")  # a GET to a POST endpoint
    assert status == 405 and "POST" in body["error"]
    metrics = server.request("/metrics")[1]
    assert 'edgebert_requests_total{path="other",status="404"} 1.0' in metrics
    head = urllib.request.Request(server.url + "/health", method="HEAD")  # probes that send HEAD get headers only
    with urllib.request.urlopen(head, timeout=60) as response:
        assert response.status == 200 and response.read() == b""


def test_queue_limit_answers_429(tiny_int8_artifact, tmp_path):
    s = Server(tiny_int8_artifact, tmp_path, "--max-queue", "4")
    try:
        status, body = s.json("/v1/classify", {"inputs": ["a"] * 5})  # more than the queue can ever hold
        assert status == 413 and "--max-queue" in body["error"]
        assert s.json("/v1/classify", {"inputs": ["a"] * 4})[0] == 200
        with ThreadPoolExecutor(8) as pool:  # together they are more than the queue holds: some wait their turn
            statuses = list(pool.map(lambda _: s.json("/v1/classify", {"inputs": ["a " * 60] * 4})[0], range(32)))
        assert set(statuses) <= {200, 429} and 200 in statuses
    finally:
        assert s.stop()[0] == 0


def test_info_health_ready_and_metrics(server, tiny_int8_artifact):
    status, info = server.json("/info")
    manifest = json.loads((tiny_int8_artifact / "edgebert.json").read_text())
    assert status == 200 and info["labels"] == manifest["labels"] and info["precision"] == "int8"
    assert info["model_sha256"]["model.onnx"] == sha256_file(tiny_int8_artifact / "model.onnx")
    assert server.json("/health") == (200, {"status": "ok"})
    assert server.json("/ready") == (200, {"ready": True})
    server.json("/predict", {"inputs": "bank profit rises"})
    _, metrics = server.request("/metrics")
    assert 'edgebert_requests_total{path="/health",status="200"}' in metrics
    # latency for every route (TEI's /predict too), and the process's own CPU and memory (prometheus-client)
    assert 'edgebert_request_seconds_count{path="/predict"}' in metrics
    assert 'edgebert_request_seconds_bucket{le="+Inf",path="/health"}' in metrics
    resident = next(line for line in metrics.splitlines() if line.startswith("process_resident_memory_bytes"))
    assert float(resident.split()[-1]) > 10e6 and "process_cpu_seconds_total" in metrics


def test_host_header_from_another_name_is_refused(server):
    status, body = server.json("/info", headers={"Host": "attacker.example:80"})
    assert status == 421 and "--allow-host" in body["error"]


def test_bearer_token_from_env_guards_everything_but_probes(tiny_int8_artifact, tmp_path):
    s = Server(tiny_int8_artifact, tmp_path, env={"EDGEBERT_TOKEN": TOKEN})
    try:
        assert s.json("/v1/classify", {"inputs": ["a"]})[0] == 401
        assert s.json("/v1/classify", {"inputs": ["a"]}, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert s.json("/v1/classify", {"inputs": ["a"]}, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert s.json("/v1/classify", {"inputs": ["a"]}, headers={"Authorization": f"bearer {TOKEN}"})[0] == 200
        assert s.json("/v1/classify", {"inputs": ["a"]}, headers={"Authorization": f"Basic {TOKEN}"})[0] == 401
        assert s.json("/health")[0] == 200
    finally:
        assert s.stop()[0] == 0


def test_entities_for_token_artifacts(token_int8_artifact, tmp_path):
    s = Server(token_int8_artifact, tmp_path)
    try:
        text = "alice joined arsenal in paris"
        status, body = s.json("/v1/entities", {"inputs": [text]})
        expected = TokenClassifier.load(token_int8_artifact).entities(text)
        assert status == 200 and [e["text"] for e in body["results"][0]] == [e.text for e in expected]
        assert s.json("/v1/classify", {"inputs": [text]})[0] == 404
    finally:
        assert s.stop()[0] == 0


def test_sigterm_lets_in_flight_requests_finish(tiny_int8_artifact, tmp_path):
    s = Server(tiny_int8_artifact, tmp_path, "--max-inputs", "2000", "--max-queue", "4000")
    texts = [row["text"] for row in make_examples(40, seed=1)] * 50  # ~2000 rows: takes a moment
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(s.json, "/v1/classify", {"inputs": texts})
        time.sleep(0.3)
        code, err = s.stop()
        status, body = pending.result()
    assert status == 200 and len(body["results"]) == len(texts)
    assert code == 0 and "stopped" in err


def test_serve_refuses_bad_flags(tiny_int8_artifact, capsys):
    from edgebert.cli import main

    for flags in (["--port", "70000"], ["--max-batch", "0"], ["--max-wait-ms", "nan"], ["--token", "short"]):
        assert main(["serve", str(tiny_int8_artifact), *flags]) == 2, flags
        assert "error" in capsys.readouterr().err


def test_replicas_run_batches_in_parallel_with_the_same_answers(tiny_int8_artifact, tmp_path):
    s = Server(tiny_int8_artifact, tmp_path, "--replicas", "2", "--threads", "1", "--max-batch", "4")
    try:
        texts = [row["text"] for row in make_examples(40, seed=8)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda t: s.json("/v1/classify", {"inputs": [t]}), texts))
        expected = Classifier.load(tiny_int8_artifact).predict(texts)
        assert [a[1]["results"][0]["label"] for a in answers] == [p.label for p in expected]
    finally:
        assert s.stop()[0] == 0


def test_lone_request_on_an_idle_server_does_not_wait_for_batch_mates():
    """max_wait_ms is the time a batch waits for company under load; alone, a request runs at once."""
    import asyncio

    from edgebert.serve.batcher import MicroBatcher
    from edgebert.serve.metrics import Metrics

    calls: list[list[str]] = []

    def runner(group, rows):
        calls.append(list(rows))
        return [row.upper() for row in rows], {"inference": 0.001}

    async def scenario():
        batcher = MicroBatcher([runner], max_batch=8, max_wait_ms=60_000, max_queue=100, metrics=Metrics())
        batcher.start()
        try:  # a minute of waiting for company would time out here
            return await asyncio.wait_for(batcher.submit(["alone"]), timeout=10)
        finally:
            await batcher.stop()

    results, timings = asyncio.run(scenario())
    assert results == ["ALONE"] and calls == [["alone"]] and timings["inference"] == 0.001 and timings["queue"] >= 0


def test_server_on_a_fleet_bundle_answers_with_the_variant_this_cpu_gets(tiny_int8_artifact, tiny_artifact, tmp_path):
    import shutil

    from edgebert.export.fleet import build_fleet

    for name, source in (("ort-avx2", tiny_int8_artifact), ("ort-fp32", tiny_artifact)):
        shutil.copytree(source, tmp_path / name)
    build_fleet([tmp_path / "ort-avx2", tmp_path / "ort-fp32"], tmp_path / "fleet")
    expected = Classifier.load(tmp_path / "fleet")
    s = Server(tmp_path / "fleet", tmp_path)
    try:
        status, info = s.json("/info")
        assert status == 200 and info["variant"] == expected.variant
        chosen = tmp_path / "fleet" / expected.variant
        assert info["model_sha256"] == {"model.onnx": sha256_file(chosen / "model.onnx")}
        status, body = s.json("/v1/classify", {"inputs": ["the team won the match"]})
        assert status == 200 and body["results"][0]["label"] == expected.predict("the team won the match").label
    finally:
        s.stop()


def test_an_answer_json_cannot_hold_is_a_json_500_not_a_broken_response():
    import asyncio

    from edgebert.serve.asgi import ServeApp
    from edgebert.serve.config import ServeConfig
    from edgebert.serve.metrics import Metrics

    async def nan_route(scope, receive):
        return 200, {"score": float("nan")}

    app = ServeApp({"/nan": ("GET", nan_route)}, None, ServeConfig(), Metrics(), {"ready": True})
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/nan", "headers": [(b"host", b"127.0.0.1:8000")]}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"]) == {"error": "internal error; see the server log", "error_type": "Backend"}


def test_rude_requests_get_their_status(server):
    """JSON only (a cross-origin page cannot send it without asking), bounded URL and headers, a body that must
    arrive in time (issue 26 item 6), each over loopback."""
    import socket

    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, body = server.json("/v1/classify", {"inputs": ["a"]}, headers={"Content-Type": kind})
        assert status == 415 and "application/json" in body["error"]
    assert server.request("/info?" + "q" * 9000)[0] == 414
    assert server.request("/info", headers={f"X-Pad-{i}": "v" * 1000 for i in range(12)})[0] == 431
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:  # promises 100 bytes, sends 10
        head = "POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        sock.sendall((head + "Content-Length: 100\r\n\r\n" + '{"inputs":').encode())
        assert sock.recv(4096).split(b" ")[1] == b"408"
    assert server.json("/v1/classify", {"inputs": ["still answering"]})[0] == 200


def test_predict_speaks_text_embeddings_inference(server, tiny_int8_artifact):
    """POST /predict as TEI clients call it: labels sorted by score, raw logits on request, a too-long input an
    error unless truncate is true, errors with error_type."""
    model = Classifier.load(tiny_int8_artifact)
    status, one = server.json("/predict", {"inputs": "goal for the team"})
    expected = model.predict_proba(["goal for the team"])[0]
    assert status == 200 and [r["label"] for r in one] == [model.labels[i] for i in expected.argsort()[::-1]]
    assert one[0]["score"] == pytest.approx(float(expected.max()), abs=1e-5)
    # TEI's grammar: a batch is a list of sequences, each [text] or a pair [text, text]
    batch = [["goal for the team"], ["bank profit"], ["goal for the team", "bank profit"]]
    status, many = server.json("/predict", {"inputs": batch, "raw_scores": True})
    logits = model.predict_logits(["goal for the team", "bank profit"])
    pair = model.predict_logits(["goal for the team"], ["bank profit"])[0]
    assert status == 200 and len(many) == 3
    assert many[1][0]["score"] == pytest.approx(float(logits[1].max()), abs=1e-4)
    assert many[2][0]["score"] == pytest.approx(float(pair.max()), abs=1e-4)
    status, one_pair = server.json("/predict", {"inputs": ["goal for the team", "bank profit"], "raw_scores": True})
    assert status == 200 and one_pair == many[2]  # a flat list of two strings is ONE pair, as in TEI
    assert server.json("/predict", {"inputs": ["goal for the team"]})[1] == one  # [text] is that text
    for bad in (["a", "b", "c"], [["a", "b", "c"]], [["a"], "b"], [], [[]], {"text": "a"}):
        status, body = server.json("/predict", {"inputs": bad})
        assert status == 422 and "[text, text]" in body["error"] and body["error_type"] == "Validation"
    long_text = "goal " * 500
    status, body = server.json("/predict", {"inputs": long_text})
    assert status == 413 and body["error_type"] == "Validation" and "truncate" in body["error"]
    assert server.json("/predict", {"inputs": long_text, "truncate": True})[0] == 200
    status, body = server.json("/predict", {"inputs": "x", "raw_scores": "yes"})
    assert status == 422 and body["error_type"] == "Validation"
    assert server.json("/predict", {"inputs": long_text, "truncate": True, "truncation_direction": "Right"})[0] == 200
    for direction in ("Left", "left", "sideways", 5, None):  # honoured or refused, never ignored
        status, body = server.json("/predict", {"inputs": "x", "truncation_direction": direction})
        assert status == 422 and "truncation_direction" in body["error"] and body["error_type"] == "Validation"


def test_classify_says_which_rows_were_truncated_and_refuses_them_on_request(server):
    long_text = "goal " * 500
    status, body = server.json("/v1/classify", {"inputs": ["short text", long_text]})
    assert status == 200 and [r["truncated"] for r in body["results"]] == [False, True]
    status, body = server.json("/v1/classify", {"inputs": ["short text", long_text], "truncate": False})
    assert status == 413 and "inputs[1]" in body["error"] and body["error_type"] == "Validation"


def test_answers_carry_timing_headers(server):
    req = urllib.request.Request(
        server.url + "/v1/classify",
        data=json.dumps({"inputs": ["goal for the team"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as response:
        times = {name: int(response.headers[name]) for name in ("x-compute-time", "x-queue-time", "x-inference-time")}
        times["x-tokenization-time"] = int(response.headers["x-tokenization-time"])
    assert all(value >= 0 for value in times.values())
    assert times["x-compute-time"] >= times["x-inference-time"]
    with urllib.request.urlopen(server.url + "/health", timeout=60) as response:
        assert response.headers["x-compute-time"] is None  # no model ran


def test_openapi_document_matches_the_real_routes(server):
    from edgebert.serve.openapi import request_fields

    status, document = server.json("/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    for path, item in document["paths"].items():  # every documented route answers with its method, not 404/405
        method = next(iter(item))
        if method == "get":
            code, text = server.request(path)
        else:
            code, text = server.request(path, {"inputs": ["a text"]})
        if path == "/v1/entities":  # a route of token artifacts: this one classifies texts and says where to go
            assert code == 404 and "POST /v1/classify instead" in text
            continue
        assert code not in (404, 405), (path, code)
    assert server.request("/not-documented")[0] == 404
    for path in ("/v1/classify", "/predict", "/"):  # the document's fields are the ones the route checks
        fields = request_fields(path)
        assert fields == set(
            document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
        )
        code, text = server.request(path, {"inputs": "a text", "not_a_field": 1})
        assert code == 422 and all(name in text for name in fields), (path, text)


def test_a_huggingface_hub_inference_client_classifies_through_the_server(server, tiny_int8_artifact, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    # HF_HUB_OFFLINE (set for the whole project: never the Hub) also stops the client reaching this local server
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    client = huggingface_hub.InferenceClient(base_url=server.url)
    answer = client.text_classification("goal for the team")
    expected = Classifier.load(tiny_int8_artifact).predict("goal for the team")
    assert [a.label for a in answer] == [s.label for s in expected.top]
    assert answer[0].score == pytest.approx(expected.score, abs=1e-5)
    top1 = client.text_classification("goal for the team", top_k=1, function_to_apply="none")
    logits = Classifier.load(tiny_int8_artifact).predict_logits(["goal for the team"])[0]
    assert len(top1) == 1 and top1[0].score == pytest.approx(float(logits.max()), abs=1e-4)


def test_cors_is_opt_in_and_other_web_origins_are_refused(tiny_int8_artifact, tmp_path):
    body = json.dumps({"inputs": ["goal"]}).encode()

    def call(url, method="POST", origin="http://localhost:3000"):
        headers = {"Content-Type": "application/json", "Origin": origin}
        if method == "OPTIONS":
            headers["Access-Control-Request-Method"] = "POST"
        req = urllib.request.Request(url + "/v1/classify", data=body if method == "POST" else None, headers=headers)
        req.method = method
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers)

    closed = Server(tiny_int8_artifact, tmp_path)
    try:
        status, headers = call(closed.url)
        assert status == 403 and "access-control-allow-origin" not in {k.lower() for k in headers}
    finally:
        closed.stop()
    opened = Server(tiny_int8_artifact, tmp_path, "--cors-allow-origin", "http://localhost:3000")
    try:
        status, headers = call(opened.url, "OPTIONS")
        lower = {k.lower(): v for k, v in headers.items()}
        assert status == 204 and lower["access-control-allow-origin"] == "http://localhost:3000"
        assert "content-type" in lower["access-control-allow-headers"]
        status, headers = call(opened.url)
        assert status == 200 and {k.lower(): v for k, v in headers.items()}["access-control-allow-origin"]
        assert call(opened.url, origin="http://evil.example")[0] == 403
    finally:
        opened.stop()


def test_a_client_that_trickles_its_headers_gets_408_while_others_are_answered(server):
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)), timeout=30)
    try:
        slow.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing more
        status, _ = server.json("/v1/classify", {"inputs": ["goal"]})  # another client is not held up
        assert status == 200
        answer = slow.recv(4096)  # the fixture's --read-timeout 2: the deadline for a header block
        assert answer.startswith(b"HTTP/1.1 408") and b"Timeout" in answer
        assert slow.recv(4096) == b""  # and closed
    finally:
        slow.close()


def test_a_body_trickled_a_byte_at_a_time_is_cut_off_at_one_deadline_for_the_whole_body(server):
    """Each byte arrives well within the fixture's --read-timeout 2, but the body as a whole does not: 408 and closed
    about 2 s after the headers, not when the 60,000 declared bytes would have arrived (4 hours at this pace)."""
    import socket
    import time

    host, port = server.url.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)), timeout=30)
    try:
        head = b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        slow.sendall(head + b"Content-Length: 60000\r\n\r\n{")
        started, answer = time.monotonic(), b""
        slow.settimeout(0.25)
        while not answer and time.monotonic() - started < 20:
            try:
                answer = slow.recv(4096)
            except TimeoutError:
                slow.sendall(b" ")  # one byte every 0.25 s
        held = time.monotonic() - started
        slow.settimeout(5)
        while chunk := slow.recv(4096):  # the rest of the answer, then the server closes the connection
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408") and b'"error_type":"Timeout"' in answer
        assert 1.5 <= held < 10, held
        assert b"connection: close" in answer.lower()
    finally:
        slow.close()
    assert server.json("/v1/classify", {"inputs": ["goal"]})[0] == 200


def test_an_oversized_header_block_is_cut_off_with_431_before_it_is_parsed(server):
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    big = socket.create_connection((host, int(port)), timeout=30)
    try:
        big.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        answer = b""
        try:
            for _ in range(64):  # 4 MB in 64 KB pieces; the server stops reading after 64 KB
                big.sendall(b"a" * (64 << 10))
        except OSError:
            pass  # closed under us: what we hope for
        answer = big.recv(4096)
        assert answer.startswith(b"HTTP/1.1 431")
    finally:
        big.close()
    assert server.json("/v1/classify", {"inputs": ["goal"]})[0] == 200


LONE_SURROGATE = '{"text": "goal for the team \\ud800 today"}'  # JSON can carry it; UTF-8 cannot


def test_a_lone_surrogate_reads_as_u_fffd_in_predict_score_serve_and_the_runtime(
    server, tiny_int8_artifact, token_int8_artifact, tmp_path, capsys
):
    """Issue 32: one answer everywhere, never a crash when the text is printed or sent back."""
    clean = "goal for the team \ufffd today"
    expected = Classifier.load(tiny_int8_artifact).predict([clean])[0]
    (tmp_path / "in.jsonl").write_text(LONE_SURROGATE + "\n")
    assert main(["predict", str(tiny_int8_artifact), "--file", str(tmp_path / "in.jsonl"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["text"], printed["label"]) == (clean, expected.label)
    assert printed["score"] == pytest.approx(expected.score, abs=1e-6)
    out = tmp_path / "scored.jsonl"
    assert main(["score", str(tiny_int8_artifact), "--input", str(tmp_path / "in.jsonl"), "--output", str(out)]) == 0
    (scored,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert scored["label"] == expected.label and scored["score"] == pytest.approx(expected.score, abs=1e-6)
    status, body = server.request("/v1/classify", raw=b'{"inputs": ["goal for the team \\ud800 today"]}')
    assert status == 200 and json.loads(body)["results"][0]["label"] == expected.label
    assert Classifier.load(tiny_int8_artifact).predict(["goal for the team \ud800 today"])[0].label == expected.label
    s = Server(token_int8_artifact, tmp_path)
    try:
        status, body = s.request("/v1/entities", raw=b'{"inputs": ["alice \\ud800 joined arsenal"]}')
        found = TokenClassifier.load(token_int8_artifact).entities("alice \ufffd joined arsenal")
        assert status == 200 and [e["text"] for e in json.loads(body)["results"][0]] == [e.text for e in found]
    finally:
        assert s.stop()[0] == 0


def test_inference_api_top_k_zero_is_refused(server):
    status, body = server.json("/", {"inputs": "goal", "parameters": {"top_k": 0}})
    assert status == 422 and "top_k" in body["error"]
    assert len(server.json("/", {"inputs": "goal", "parameters": {"top_k": None}})[1][0]) == 3  # absent: all labels


def test_flags_left_out_come_from_the_environment_and_a_bad_one_is_named(tiny_int8_artifact, tmp_path, capsys):
    s = Server(tiny_int8_artifact, tmp_path, env={"EDGEBERT_MAX_INPUTS": "2", "EDGEBERT_REPLICAS": "1"})
    try:
        assert s.json("/v1/classify", {"inputs": ["a", "b"]})[0] == 200
        status, body = s.json("/v1/classify", {"inputs": ["a", "b", "c"]})
        assert status == 413 and "--max-inputs" in body["error"]
    finally:
        s.stop()
    s = Server(tiny_int8_artifact, tmp_path, "--max-inputs", "3", env={"EDGEBERT_MAX_INPUTS": "2"})
    try:
        assert s.json("/v1/classify", {"inputs": ["a", "b", "c"]})[0] == 200  # a flag given wins
    finally:
        s.stop()
    from edgebert.cli import main

    for name, value in (("EDGEBERT_MAX_BATCH", "many"), ("EDGEBERT_SPINNING", "maybe")):
        os.environ[name] = value
        try:
            assert main(["serve", str(tiny_int8_artifact), "--port", "0"]) == 2
        finally:
            del os.environ[name]
        assert name in capsys.readouterr().err
