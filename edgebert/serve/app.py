"""The HTTP API. Every response is JSON (or Prometheus text); every failure is a status code with a message.

POST /v1/classify  {"inputs": [str, ...], "pairs": [str, ...]?, "top_k": int?}  -> {"results": [...]} in order
POST /v1/entities  {"inputs": [str, ...]}                                       -> {"results": [[entity, ...]]}
POST /predict      text-embeddings-inference's: {"inputs", "raw_scores"?, "truncate"?} -> [{"label", "score"}] by score
GET  /health (alive) · /ready (model loaded, not draining) · /info (the artifact) · /metrics (Prometheus)
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import asdict
from typing import Any

from ..runtime.backends import RowByRow
from ..runtime.classifier import Classifier
from ..runtime.model import softmax
from .batcher import MicroBatcher, QueueFull
from .config import ServeConfig
from .metrics import Metrics

OPEN_PATHS = ("/health", "/ready")  # liveness probes need no token
CLASSIFY_FIELDS = ("inputs", "pairs", "top_k")
PREDICT_FIELDS = ("inputs", "raw_scores", "truncate", "truncation_direction")
ERROR_TYPES = {
    408: "Timeout",
    413: "Validation",
    415: "Validation",
    422: "Validation",
    429: "Overloaded",
    500: "Backend",
}
MAX_URL_BYTES = 8 << 10  # 414 beyond
MAX_HEADER_BYTES = 8 << 10  # 431 beyond (uvicorn closes a connection whose header block exceeds 16 KB)


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
    model = models[0]
    classifies_texts = isinstance(model, Classifier)  # else a TokenClassifier: /v1/entities
    batcher = MicroBatcher(
        [_runner(m) for m in models],
        max_batch=config.max_batch,
        max_wait_ms=config.max_wait_ms,
        max_queue=config.max_queue,
        metrics=metrics,
    )
    state = {"ready": False}
    info = _info(model, bundle)

    async def classify(scope, receive) -> tuple[int, Any]:
        if not classifies_texts:
            raise HttpError(404, "This artifact labels tokens: POST /v1/entities instead.")
        body = await _json_body(scope, receive, config)
        texts = _strings(body, "inputs", config.max_inputs)
        pairs = _strings(body, "pairs", config.max_inputs) if "pairs" in body else None
        if pairs is not None and len(pairs) != len(texts):
            raise HttpError(422, f"'pairs' has {len(pairs)} items but 'inputs' has {len(texts)}; give one per input.")
        top_k = body.get("top_k", len(model.labels))
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= len(model.labels):
            raise HttpError(422, f"'top_k' must be a whole number from 1 to {len(model.labels)}.")
        rows = list(zip(texts, pairs, strict=True)) if pairs is not None else texts
        logits = await _submit(batcher, rows, group=pairs is not None)
        return 200, {"results": [_top(model.labels, softmax(row[None])[0], top_k) for row in logits]}

    async def predict(scope, receive) -> tuple[int, Any]:
        """text-embeddings-inference's /predict: {"inputs": str | [str], "raw_scores"?, "truncate"?} ->
        [{"label", "score"}] sorted by score (a list of those for a list of inputs)."""
        if not classifies_texts:
            raise HttpError(404, "This artifact labels tokens: POST /v1/entities instead.")
        body = await _json_body(scope, receive, config, fields=PREDICT_FIELDS)
        texts = _strings(body, "inputs", config.max_inputs)
        raw, truncate = _flag(body, "raw_scores"), _flag(body, "truncate")
        if not truncate:  # TEI's default: an input longer than the model takes is an error, not silently cut
            for i, n in enumerate(model.encoder.token_counts(texts)):
                if n > model.encoder.max_length:
                    raise HttpError(
                        413,
                        f"inputs[{i}] is {n} tokens, more than this model's {model.encoder.max_length}; "
                        'send "truncate": true to cut it.',
                        error_type="Validation",
                    )
        logits = await _submit(batcher, texts)
        scored = [_ranked(model.labels, row if raw else softmax(row[None])[0]) for row in logits]
        return 200, scored[0] if isinstance(body["inputs"], str) else scored

    async def entities(scope, receive) -> tuple[int, Any]:
        if classifies_texts:
            raise HttpError(404, "This artifact classifies whole texts: POST /v1/classify instead.")
        body = await _json_body(scope, receive, config)
        found = await _submit(batcher, _strings(body, "inputs", config.max_inputs))
        return 200, {"results": [[asdict(e) for e in row] for row in found]}

    async def health(scope, receive) -> tuple[int, Any]:
        return 200, {"status": "ok"}

    async def ready(scope, receive) -> tuple[int, Any]:
        return (200 if state["ready"] else 503), {"ready": state["ready"]}

    async def info_route(scope, receive) -> tuple[int, Any]:
        return 200, info

    async def metrics_route(scope, receive) -> tuple[int, Any]:
        return 200, metrics.render(batcher.queued_rows)  # text: Prometheus exposition format

    routes = {
        "/v1/classify": ("POST", classify),
        "/predict": ("POST", predict),
        "/v1/entities": ("POST", entities),
        "/health": ("GET", health),
        "/ready": ("GET", ready),
        "/info": ("GET", info_route),
        "/metrics": ("GET", metrics_route),
    }
    return ServeApp(routes, batcher, config, metrics, state)


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
        try:
            status, payload = await self._answer(scope, receive)
            response = _encode(payload)  # inside the try: a value JSON cannot hold is a 500 like any other
        except HttpError as exc:
            status, headers = exc.status, exc.headers
            response = _encode({"error": str(exc), "error_type": exc.error_type})  # error_type as TEI sends it
        except ClientGone:
            status, response = 499, None  # nobody to answer (nginx's code for it, in the metrics only)
        except Exception:  # never a traceback in a response; the server log keeps it
            logging.getLogger("edgebert.serve").exception("internal error on %s", path)
            status, response = 500, _encode({"error": "internal error; see the server log"})
        try:
            if response is not None:
                await _send(send, status, response, headers)
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
        if self.config.token and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"").decode("latin-1")
            expected = f"Bearer {self.config.token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
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


async def _json_body(scope, receive, config: ServeConfig, fields: tuple[str, ...] = CLASSIFY_FIELDS) -> dict:
    # JSON only: a web page can send text/plain, form or multipart bodies cross-origin without asking (no CORS
    # preflight), application/json it cannot, so this also keeps other sites' pages from using a local server.
    kind = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
    if kind != b"application/json":
        raise HttpError(415, "Send the body as JSON with the header 'Content-Type: application/json'.")
    too_big = HttpError(413, f"Request body over {config.max_body_bytes} bytes; send fewer or shorter texts.")
    declared = dict(scope["headers"]).get(b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > config.max_body_bytes):
        raise too_big
    chunks, size = [], 0
    while True:
        try:  # a client that trickles its body does not hold a request (and its memory) open for long
            message = await asyncio.wait_for(receive(), timeout=config.read_timeout_seconds)
        except TimeoutError:
            raise HttpError(408, f"The request body did not arrive within {config.read_timeout_seconds:g} s.") from None
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > config.max_body_bytes:
            raise too_big
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, or an integer over 4,300 digits
        raise HttpError(
            422, f'The body is not valid JSON ({exc.__class__.__name__}); send {{"inputs": ["text"]}}.'
        ) from None
    if not isinstance(body, dict):
        raise HttpError(422, 'The body must be a JSON object like {"inputs": ["text"]}.')
    unknown = set(body) - set(fields)
    if unknown:
        raise HttpError(422, f"Unknown fields {sorted(unknown)}; known: {', '.join(fields)}.")
    return body


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
    return values


async def _submit(batcher: MicroBatcher, rows: list, group: Any = None) -> list:
    if not rows:
        return []
    try:
        return await batcher.submit(rows, group)
    except QueueFull:
        raise HttpError(429, "Too many rows waiting; retry shortly (or raise --max-queue).") from None


def _runner(model):
    if isinstance(model, Classifier):

        def run(with_pairs: bool, rows: list) -> list:  # logits: /predict may ask for raw scores
            if with_pairs:
                texts, pairs = zip(*rows, strict=True)
                return list(model.predict_logits(list(texts), list(pairs)))
            return list(model.predict_logits(rows))

        return run
    return lambda group, texts: [model.entities(text) for text in texts]


def _flag(body: dict, key: str) -> bool:
    value = body.get(key, False)
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
        "backend": manifest.backend,
        "precision": manifest.precision,
        "recipe": quantization.recipe if quantization else None,
        # checked against the files at load (a fleet bundle's variant: inside its own directory)
        "model_sha256": {name: manifest.files[name] for name in manifest.model_files},
        "variant": model.variant,
        "row_by_row": isinstance(model.backend, RowByRow),
    }
