"""The HTTP API. Every response is JSON (or Prometheus text); every failure is a status code with a message.

POST /v1/classify  {"inputs": [str, ...], "pairs"?, "top_k"?, "truncate"?}  -> {"results": [...]} in input order
POST /v1/entities  {"inputs": [str, ...]}                                   -> {"results": [[entity, ...]]}
POST /predict      text-embeddings-inference's: {"inputs", "raw_scores"?, "truncate"?} -> [{"label", "score"}] by score
POST /             the Hugging Face Inference API's: {"inputs", "parameters"?: {"top_k", "function_to_apply"}}
GET  /health (alive) · /ready (model loaded, not draining) · /info (the artifact) · /metrics (Prometheus)
GET  /openapi.json (serve/openapi.py: the document a test checks against these routes)

Answers that ran the model carry x-compute-time, x-tokenization-time, x-queue-time and x-inference-time (ms).
Browsers: a request with an Origin header is refused (403) unless --cors-allow-origin lists it; listed origins get
CORS headers and their preflight (OPTIONS) answered.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from .. import __version__
from ..core.artifact import LONG_TEXT_POLICIES
from ..core.unicode_text import valid_unicode
from ..runtime.backends import RowByRow
from ..runtime.classifier import ACTIVATIONS, Classifier
from .batcher import MicroBatcher, QueueFull
from .config import ServeConfig
from .metrics import Metrics
from .openapi import ROUTES, TIMING_HEADERS, openapi_document, request_fields

OPEN_PATHS = ("/health", "/ready")  # liveness probes need no token
INFERENCE_API_PARAMETERS = tuple(ROUTES["/"][2]["parameters"]["properties"])  # the fields of its "parameters"
TIMING = "edgebert.timing"  # scope key: a handler's {stage: seconds}, sent as x-*-time headers
ERROR_TYPES = {
    403: "Forbidden",
    408: "Timeout",
    413: "Validation",
    415: "Validation",
    422: "Validation",
    429: "Overloaded",
    500: "Backend",
}
PREFLIGHT = (
    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
    (b"access-control-allow-headers", b"content-type, authorization"),
    (b"access-control-expose-headers", b"x-compute-time, x-tokenization-time, x-queue-time, x-inference-time"),
    (b"access-control-max-age", b"600"),
)
MAX_URL_BYTES = 8 << 10  # 414 beyond
MAX_HEADER_BYTES = 8 << 10  # 431 beyond (uvicorn closes a connection whose header block exceeds 16 KB)


CLOSE = ((b"connection", b"close"),)  # for answers given before the whole body was read


class HttpError(Exception):
    def __init__(
        self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = (), error_type: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.error_type = error_type or ERROR_TYPES.get(status, "Validation")


def build_app(models: list, bundle, config: ServeConfig) -> ServeApp:
    """models: loaded copies of one Classifier or TokenClassifier (run in parallel); bundle: their directory."""
    metrics = Metrics()
    batcher = MicroBatcher(
        [_runner(m) for m in models],
        max_batch=config.max_batch,
        max_wait_ms=config.max_wait_ms,
        max_queue=config.max_queue,
        metrics=metrics,
    )
    state = {"ready": False}
    h = Handlers(models[0], batcher, config, metrics, state, bundle)
    routes = {
        "/v1/classify": ("POST", h.classify),
        "/predict": ("POST", h.predict),
        "/": ("POST", h.inference_api),
        "/v1/entities": ("POST", h.entities),
        "/health": ("GET", h.health),
        "/ready": ("GET", h.ready),
        "/info": ("GET", h.info),
        "/metrics": ("GET", h.metrics_text),
        "/openapi.json": ("GET", h.openapi),
    }
    return ServeApp(routes, batcher, config, metrics, state)


class Handlers:
    """Each route's answer: (status, payload) from the request's scope and body."""

    def __init__(self, model, batcher: MicroBatcher, config: ServeConfig, metrics: Metrics, state: dict, bundle):
        self.model, self.batcher, self.config, self.metrics, self.state = model, batcher, config, metrics, state
        self.classifies_texts = isinstance(model, Classifier)  # else a TokenClassifier: /v1/entities
        self.info_document = _info(model, bundle)
        self.openapi_document = openapi_document(f"edgebert serve: {bundle}", __version__)

    def _texts_only(self) -> None:
        if not self.classifies_texts:
            raise HttpError(404, "This artifact labels tokens: POST /v1/entities instead.")

    async def classify(self, scope, receive) -> tuple[int, Any]:
        self._texts_only()
        model, config = self.model, self.config
        body = await _json_body(scope, receive, config, "/v1/classify")
        texts = _strings(body, "inputs", config.max_inputs)
        pairs = _strings(body, "pairs", config.max_inputs) if "pairs" in body else None
        if pairs is not None and len(pairs) != len(texts):
            raise HttpError(422, f"'pairs' has {len(pairs)} items but 'inputs' has {len(texts)}; give one per input.")
        top_k = _top_k(body.get("top_k", len(model.labels)), len(model.labels))
        policy = _long_text(model, body)
        if not _flag(body, "truncate", default=True):  # edgebert's own route cuts long texts, and says so
            _refuse_too_long(model, texts, pairs, policy, 'drop "truncate": false')
        rows = list(zip(texts, pairs, strict=True)) if pairs is not None else texts
        answers = await _submit(self.batcher, rows, scope, group=(pairs is not None, policy))
        matrix = np.asarray([row for row, _, _ in answers]).reshape(len(answers), len(model.labels))
        scores, given = model.activate(matrix), model.decide(matrix)
        results = [_top(model.labels, row, top_k) for row in scores]
        return 200, {
            "results": [
                {**r, "labels": list(labels), "truncated": cut, "windows": windows}
                for r, labels, (_, cut, windows) in zip(results, given, answers, strict=True)
            ]
        }

    async def predict(self, scope, receive) -> tuple[int, Any]:
        """text-embeddings-inference's /predict: {"inputs", "raw_scores"?, "truncate"?} -> [{"label", "score"}] sorted
        by score. `inputs` as TEI reads it: a text, [text] or [text, text] (one text, or one pair) gets one such
        list; a batch [[text], [text, text], ...] gets one per sequence."""
        self._texts_only()
        model = self.model
        body = await _json_body(scope, receive, self.config, "/predict")
        sequences, batch = _tei_sequences(body.get("inputs"), self.config.max_inputs)
        raw = _flag(body, "raw_scores")
        if body.get("truncation_direction", "Right") not in ("Right", "right"):  # TEI's spelling, and lower case
            raise HttpError(
                422, "'truncation_direction': edgebert keeps the start of a long text (\"Right\"); drop the field."
            )
        policy = model.long_text_policy().policy  # the artifact's: chunked texts are read whole, up to max_windows
        singles = [i for i, s in enumerate(sequences) if isinstance(s, str)]
        pairs = [i for i, s in enumerate(sequences) if not isinstance(s, str)]
        if not _flag(body, "truncate"):  # TEI's default: an input longer than the model reads is an error, not cut
            fix = 'send "truncate": true to cut it'
            _refuse_too_long(model, [sequences[i] for i in singles], None, policy, fix, rows=singles)
            texts, seconds = zip(*(sequences[i] for i in pairs), strict=True) if pairs else ((), ())
            _refuse_too_long(model, list(texts), list(seconds), policy, fix, rows=pairs)
        answers: list = [None] * len(sequences)
        for rows, with_pairs in ((singles, False), (pairs, True)):  # a pair and a text never share a model call
            done = await _submit(self.batcher, [sequences[i] for i in rows], scope, group=(with_pairs, policy))
            for i, answer in zip(rows, done, strict=True):
                answers[i] = answer
        scored = [_ranked(model.labels, row if raw else model.activate(row[None])[0]) for row, _, _ in answers]
        return 200, scored if batch else scored[0]

    async def inference_api(self, scope, receive) -> tuple[int, Any]:
        """The Hugging Face Inference API's text classification, as huggingface_hub's InferenceClient calls it:
        {"inputs": str | [str], "parameters"?: {"top_k", "function_to_apply"}} -> [[{"label", "score"}, ...]] (one
        ranked list per input, a list of one for a str). Long inputs are cut, as that API does."""
        self._texts_only()
        model = self.model
        body = await _json_body(scope, receive, self.config, "/")
        texts = _strings(body, "inputs", self.config.max_inputs)
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict) or set(parameters) - set(INFERENCE_API_PARAMETERS):
            raise HttpError(422, f"'parameters' takes {list(INFERENCE_API_PARAMETERS)} only.")
        asked = parameters.get("top_k")  # absent or null: every label; 0 is refused like any other bad number
        top_k = len(model.labels) if asked is None else _top_k(asked, len(model.labels), clamp=True)
        function = parameters.get("function_to_apply") or model.activation
        if function not in ACTIVATIONS:
            raise HttpError(422, f"'function_to_apply' is one of {list(ACTIVATIONS)}.")
        answers = await _submit(self.batcher, texts, scope, group=(False, model.long_text_policy().policy))
        return 200, [_ranked(model.labels, model.activate(row[None], function)[0])[:top_k] for row, _, _ in answers]

    async def entities(self, scope, receive) -> tuple[int, Any]:
        if self.classifies_texts:
            raise HttpError(404, "This artifact classifies whole texts: POST /v1/classify instead.")
        body = await _json_body(scope, receive, self.config, "/v1/entities")
        found = await _submit(self.batcher, _strings(body, "inputs", self.config.max_inputs), scope)
        return 200, {"results": [[asdict(e) for e in row] for row in found]}

    async def openapi(self, scope, receive) -> tuple[int, Any]:
        return 200, self.openapi_document

    async def health(self, scope, receive) -> tuple[int, Any]:
        return 200, {"status": "ok"}

    async def ready(self, scope, receive) -> tuple[int, Any]:
        return (200 if self.state["ready"] else 503), {"ready": self.state["ready"]}

    async def info(self, scope, receive) -> tuple[int, Any]:
        return 200, self.info_document

    async def metrics_text(self, scope, receive) -> tuple[int, Any]:
        return 200, self.metrics.render(self.batcher.queued_rows)  # text: Prometheus exposition format


class ServeApp:
    """The ASGI application: lifespan starts and drains the batcher; every HTTP request passes the Host check
    and the bearer token, goes to its route, and gets one JSON (or Prometheus text) response with a status.
    Plain ASGI rather than a framework: six fixed routes need no router, and the server starts sooner."""

    def __init__(self, routes: dict, batcher: MicroBatcher, config: ServeConfig, metrics: Metrics, state: dict):
        self.routes, self.batcher, self.config, self.metrics, self.state = routes, batcher, config, metrics, state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path = scope["path"]
        headers: tuple[tuple[bytes, bytes], ...] = ()
        cors = self._cors_headers(scope)
        try:
            if scope["method"] == "OPTIONS" and cors:
                return await _send(send, 204, (b"", b"text/plain"), cors + PREFLIGHT)
            status, payload = await self._answer(scope, receive)
            response = _encode(payload)  # inside the try: a value JSON cannot hold is a 500 like any other
            headers = _timing_headers(scope.get(TIMING), started)
        except HttpError as exc:
            status, headers = exc.status, exc.headers
            response = _encode({"error": str(exc), "error_type": exc.error_type})  # error_type as TEI sends it
        except ClientGone:
            status, response = 499, None  # nobody to answer (nginx's code for it, in the metrics only)
        except Exception:  # never a traceback in a response; the server log keeps it
            logging.getLogger("edgebert.serve").exception("internal error on %s", path)
            status, response = 500, _encode({"error": "internal error; see the server log", "error_type": "Backend"})
        try:
            if response is not None:
                await _send(send, status, response, headers + cors)
        finally:
            self.metrics.request(path if path in self.routes else "other", status, time.perf_counter() - started)

    async def _answer(self, scope, receive) -> tuple[int, Any]:
        self._check(scope)
        path = scope["path"]
        if path not in self.routes:
            raise HttpError(404, f"No endpoint {path}; see GET /info, POST /v1/classify or POST /v1/entities.")
        method, handler = self.routes[path]
        allowed = (method, "HEAD") if method == "GET" else (method,)  # uvicorn sends no body for HEAD
        if scope["method"] not in allowed:
            raise HttpError(405, f"{path} takes {method}, not {scope['method']}.", ((b"allow", method.encode()),))
        return await handler(scope, receive)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.batcher.start()
                self.state["ready"] = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.state["ready"] = False
                await self.batcher.stop()  # in-flight batches finish first
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _cors_headers(self, scope) -> tuple[tuple[bytes, bytes], ...]:
        """Access-Control-Allow-Origin for an origin --cors-allow-origin lists (checked in _check)."""
        origin = dict(scope["headers"]).get(b"origin")
        allowed = self.config.cors_allow_origins
        if origin is None or not allowed or ("*" not in allowed and origin.decode("latin-1") not in allowed):
            return ()
        return ((b"access-control-allow-origin", b"*" if "*" in allowed else origin), (b"vary", b"origin"))

    def _check(self, scope) -> None:
        url = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if url > MAX_URL_BYTES:
            raise HttpError(414, f"URL over {MAX_URL_BYTES} bytes; the endpoints take their input in the body.")
        if sum(len(k) + len(v) for k, v in scope["headers"]) > MAX_HEADER_BYTES:
            raise HttpError(431, f"Request headers over {MAX_HEADER_BYTES} bytes in total; send fewer or shorter ones.")
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        if name not in self.config.host_names:
            raise HttpError(
                421, f"Host '{host}' is not served here (DNS-rebinding guard); start with --allow-host {name}."
            )
        origin = headers.get(b"origin")
        if origin is not None and not self._cors_headers(scope):
            # A browser page from another site (a page has no business here unless the user said so).
            raise HttpError(
                403,
                f"Requests from web pages at {origin.decode('latin-1')} are not allowed; start the server with "
                "--cors-allow-origin ORIGIN to allow them.",
                error_type="Forbidden",
            )
        if self.config.token and scope["path"] not in OPEN_PATHS:
            scheme, _, given = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
            # the scheme is case-insensitive (RFC 7235): "bearer" and "BEARER" are "Bearer"
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self.config.token.encode()
            ):
                raise HttpError(
                    401,
                    "Missing or wrong bearer token: send 'Authorization: Bearer <token>'.",
                    ((b"www-authenticate", b"Bearer"),),
                )


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


def _encode(payload: Any) -> tuple[bytes, bytes]:
    """(body, content type): Prometheus text for a str, else JSON (allow_nan=False: NaN is never sent as JSON)."""
    if isinstance(payload, str):
        return payload.encode(), b"text/plain; version=0.0.4; charset=utf-8"
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(), b"application/json"


async def _send(send, status: int, response: tuple[bytes, bytes], extra_headers: tuple = ()) -> None:
    body, kind = response
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json_body(scope, receive, config: ServeConfig, path: str) -> dict:
    """The request's JSON object, refused unless every field is one the route declares (serve/openapi.py ROUTES,
    where each route's fields are written once: the OpenAPI document and this check both read them)."""
    # JSON only: a web page can send text/plain, form or multipart bodies cross-origin without asking (no CORS
    # preflight), application/json it cannot, so this also keeps other sites' pages from using a local server.
    kind = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
    if kind != b"application/json":
        raise HttpError(415, "Send the body as JSON with the header 'Content-Type: application/json'.")
    too_big = HttpError(413, f"Request body over {config.max_body_bytes} bytes; send fewer or shorter texts.", CLOSE)
    declared = dict(scope["headers"]).get(b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > config.max_body_bytes):
        raise too_big
    try:  # one deadline for the whole body: a client trickling a byte a second must not hold a request for hours
        async with asyncio.timeout(config.read_timeout_seconds):
            chunks = await _body_chunks(receive, config.max_body_bytes, too_big)
    except TimeoutError:  # closed after the answer: the rest of the body is not read
        message = f"The request body did not arrive within {config.read_timeout_seconds:g} s."
        raise HttpError(408, message, CLOSE) from None
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, or an integer over 4,300 digits
        raise HttpError(
            422, f'The body is not valid JSON ({exc.__class__.__name__}); send {{"inputs": ["text"]}}.'
        ) from None
    if not isinstance(body, dict):
        raise HttpError(422, 'The body must be a JSON object like {"inputs": ["text"]}.')
    fields = request_fields(path)
    unknown = set(body) - fields
    if unknown:
        raise HttpError(422, f"Unknown fields {sorted(unknown)}; known: {', '.join(sorted(fields))}.")
    return body


async def _body_chunks(receive, limit: int, too_big: HttpError) -> list[bytes]:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise too_big
        if not message.get("more_body", False):
            return chunks


def _strings(body: dict, key: str, limit: int) -> list[str]:
    values = body.get(key)
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        raise HttpError(422, f"'{key}' must be a list of strings.")
    if len(values) > limit:
        raise HttpError(413, f"{len(values)} {key} in one request; at most {limit} (--max-inputs).")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise HttpError(422, f"'{key}[{i}]' is {type(value).__name__}; every item must be a string.")
    return [valid_unicode(value) for value in values]


TEI_INPUTS = "a text, a pair [text, text], or a batch of texts and pairs [[text], [text, text], ...]"


def _tei_sequences(inputs: Any, limit: int) -> tuple[list[str | tuple[str, str]], bool]:
    """TEI's `inputs` grammar -> (sequences: a text or a (text, text) pair each, whether it was a batch). As in
    text-embeddings-inference, a flat list of one or two strings is ONE sequence; a batch is a list of lists."""
    if isinstance(inputs, str):
        return [valid_unicode(inputs)], False
    if not isinstance(inputs, list) or not inputs:
        raise HttpError(422, f"'inputs' is {TEI_INPUTS}.")
    if isinstance(inputs[0], str):
        return [_tei_sequence(inputs, "inputs")], False
    if len(inputs) > limit:
        raise HttpError(413, f"{len(inputs)} inputs in one request; at most {limit} (--max-inputs).")
    return [_tei_sequence(item, f"inputs[{i}]") for i, item in enumerate(inputs)], True


def _tei_sequence(value: Any, where: str) -> str | tuple[str, str]:
    if not isinstance(value, list) or not 1 <= len(value) <= 2 or not all(isinstance(v, str) for v in value):
        raise HttpError(422, f"'{where}' must be [text] or a pair [text, text]; 'inputs' is {TEI_INPUTS}.")
    texts = [valid_unicode(v) for v in value]
    return texts[0] if len(texts) == 1 else (texts[0], texts[1])


async def _submit(batcher: MicroBatcher, rows: list, scope, group: Any = None) -> list:
    """The rows' results; their timings go to the scope, for the response headers."""
    if not rows:
        return []
    if len(rows) > batcher.max_queue:  # could never be admitted, so a retry (what 429 asks for) cannot help
        raise HttpError(413, f"{len(rows)} rows in one request; the queue holds {batcher.max_queue} (--max-queue).")
    try:
        results, scope[TIMING] = await batcher.submit(rows, group)
    except QueueFull:
        raise HttpError(429, "Too many rows waiting; retry shortly (or raise --max-queue).") from None
    return results


def _runner(model):
    """(group, rows) -> (results, {stage: seconds}), run on a model copy's thread."""
    if isinstance(model, Classifier):

        def run(group: tuple[bool, str], rows: list) -> tuple[list, dict[str, float]]:
            """(logits, truncated, windows) per row: callers pick the scores. group: (with pairs, long-text policy)."""
            with_pairs, policy = group
            texts, pairs = (list(x) for x in zip(*rows, strict=True)) if with_pairs else (rows, None)
            policy = model.long_text_policy(policy)
            started = time.perf_counter()
            windows = model.encoder.encode_windows(texts, pairs, policy)
            tokenized = time.perf_counter()
            logits = model.logits_of_windows(windows, policy)
            timings = {"tokenization": tokenized - started, "inference": time.perf_counter() - tokenized}
            read = zip(logits, windows.truncated.tolist(), windows.counts.tolist(), strict=True)
            return list(read), timings

        return run

    def run_entities(group, texts: list) -> tuple[list, dict[str, float]]:
        started = time.perf_counter()
        return [model.entities(text) for text in texts], {"inference": time.perf_counter() - started}

    return run_entities


def _timing_headers(timing: dict[str, float] | None, started: float) -> tuple[tuple[bytes, bytes], ...]:
    """x-compute-time (all of the request in the app) and each stage's, in whole ms as text-embeddings-inference
    sends them; none for requests that did not run the model."""
    if timing is None:
        return ()
    values = {"x-compute-time": time.perf_counter() - started}
    values.update({f"x-{stage}-time": seconds for stage, seconds in timing.items()})
    return tuple((name.encode(), str(round(values[name] * 1000)).encode()) for name in TIMING_HEADERS if name in values)


def _refuse_too_long(
    model, texts: list[str], pairs: list[str] | None, policy: str, fix: str, rows: list[int] | None = None
) -> None:
    """413 for the first input (text or pair) longer than the model reads under `policy`, when the request asked
    not to cut. rows: each input's index in the request, where it is not its place in `texts`."""
    if not texts:
        return
    rows = rows or list(range(len(texts)))
    if policy == "chunk" and pairs is None:
        long_text = model.long_text_policy(policy)
        for i, cut in zip(rows, model.encoder.encode_windows(texts, None, long_text).truncated, strict=True):
            if cut:
                where = f"{long_text.max_windows} windows of {model.encoder.max_length} tokens"
                raise HttpError(413, f"inputs[{i}] is longer than this model reads ({where}); {fix}.")
        return
    for i, n in zip(rows, model.encoder.token_counts(texts, pairs), strict=True):
        if n > model.encoder.max_length:
            raise HttpError(
                413, f"inputs[{i}] is {n} tokens, more than this model's {model.encoder.max_length}; {fix}."
            )


def _long_text(model, body: dict) -> str:
    """The request's "long_text" ("truncate" or "chunk"), else the artifact's policy."""
    value = body.get("long_text", model.long_text_policy().policy)
    if value not in LONG_TEXT_POLICIES:
        raise HttpError(422, f"'long_text' is one of {list(LONG_TEXT_POLICIES)} (default: the artifact's).")
    return value


def _top_k(value: Any, labels: int, *, clamp: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (value > labels and not clamp):
        raise HttpError(422, f"'top_k' must be a whole number from 1 to {labels}.")
    return min(value, labels)


def _flag(body: dict, key: str, *, default: bool = False) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise HttpError(422, f"'{key}' must be true or false.")
    return value


def _ranked(labels: list[str], scores) -> list[dict]:
    return [{"label": labels[int(i)], "score": float(scores[int(i)])} for i in scores.argsort()[::-1]]


def _top(labels: list[str], probabilities, k: int) -> dict:
    order = probabilities.argsort()[::-1][:k]
    best = int(order[0])
    return {
        "label": labels[best],
        "score": float(probabilities[best]),
        "scores": {labels[int(i)]: float(probabilities[int(i)]) for i in order},
    }


def _info(model, bundle) -> dict[str, Any]:
    manifest = model.manifest
    quantization = manifest.quantization
    return {
        "task": manifest.task,
        "labels": list(manifest.labels),
        "max_length": manifest.max_length,
        "long_text": asdict(manifest.long_text),  # what a longer input gets (a request's "long_text" can override it)
        "backend": manifest.backend,
        "precision": manifest.precision,
        "recipe": quantization.recipe if quantization else None,
        # checked against the files at load (a fleet bundle's variant: inside its own directory)
        "model_sha256": {name: manifest.files[name] for name in manifest.model_files},
        "variant": model.variant,
        "row_by_row": isinstance(model.backend, RowByRow),
    }
