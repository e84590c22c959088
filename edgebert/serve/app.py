"""The HTTP API. Every response is JSON (or Prometheus text); every failure is a status code with a message.

POST /v1/classify  {"inputs": [str, ...], "pairs": [str, ...]?, "top_k": int?}  -> {"results": [...]} in order
POST /v1/entities  {"inputs": [str, ...]}                                       -> {"results": [[entity, ...]]}
GET  /health (alive) · /ready (model loaded, not draining) · /info (the artifact) · /metrics (Prometheus)
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import time
from dataclasses import asdict
from typing import Any

from ..core.artifact import SEQUENCE
from ..runtime.backends import RowByRow
from .batcher import MicroBatcher, QueueFull
from .config import ServeConfig
from .metrics import Metrics

OPEN_PATHS = ("/health", "/ready")  # liveness probes need no token


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def build_app(models: list, bundle, config: ServeConfig):
    """models: loaded copies of one Classifier or TokenClassifier (run in parallel); bundle: their directory."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    metrics = Metrics()
    model = models[0]
    task = model.manifest.task
    batcher = MicroBatcher(
        [_runner(m) for m in models],
        max_batch=config.max_batch,
        max_wait_ms=config.max_wait_ms,
        max_queue=config.max_queue,
        metrics=metrics,
    )
    state = {"ready": False}
    info = _info(model, bundle)

    async def classify(request: Request) -> Response:
        if task != SEQUENCE:
            raise HttpError(404, "This artifact labels tokens: POST /v1/entities instead.")
        body = await _json_body(request, config)
        texts = _strings(body, "inputs", config.max_inputs)
        pairs = _strings(body, "pairs", config.max_inputs) if "pairs" in body else None
        if pairs is not None and len(pairs) != len(texts):
            raise HttpError(422, f"'pairs' has {len(pairs)} items but 'inputs' has {len(texts)}; give one per input.")
        top_k = body.get("top_k", len(model.labels))
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= len(model.labels):
            raise HttpError(422, f"'top_k' must be a whole number from 1 to {len(model.labels)}.")
        rows = list(zip(texts, pairs, strict=True)) if pairs is not None else texts
        probabilities = await _submit(batcher, rows, group=pairs is not None)
        return JSONResponse({"results": [_top(model.labels, p, top_k) for p in probabilities]})

    async def entities(request: Request) -> Response:
        if task == SEQUENCE:
            raise HttpError(404, "This artifact classifies whole texts: POST /v1/classify instead.")
        body = await _json_body(request, config)
        texts = _strings(body, "inputs", config.max_inputs)
        found = await _submit(batcher, texts)
        return JSONResponse({"results": [[asdict(e) for e in row] for row in found]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    async def info_route(request: Request) -> Response:
        return JSONResponse(info)

    async def metrics_route(request: Request) -> Response:
        return PlainTextResponse(metrics.render(batcher.queued_rows), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        batcher.start()
        state["ready"] = True
        yield
        state["ready"] = False
        await batcher.stop()

    routes = [
        Route("/v1/classify", classify, methods=["POST"]),
        Route("/v1/entities", entities, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/info", info_route, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
    ]

    async def http_error(request: Request, exc: HttpError) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    async def internal_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "internal error; see the server log"}, status_code=500)

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HttpError: http_error, Exception: internal_error}
    )
    app.state.serving = state
    return _Guard(app, config, metrics, state)


class _Guard:
    """ASGI middleware: Host check, bearer token, error mapping and metrics around every HTTP request."""

    def __init__(self, app, config: ServeConfig, metrics: Metrics, state: dict) -> None:
        self.app, self.config, self.metrics, self.state = app, config, metrics, state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        path = scope["path"]
        status = {"code": 0}

        async def tracked_send(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            self._check(scope)
            await self.app(scope, receive, tracked_send)
        except HttpError as exc:
            await _send_json(tracked_send, exc.status, {"error": str(exc)}, exc.status == 401)
        except Exception:  # never a traceback in a response; the server log keeps it
            logging.getLogger("edgebert.serve").exception("internal error on %s", path)
            if not status["code"]:  # Starlette already answered 500 (then re-raised for the log) otherwise
                await _send_json(tracked_send, 500, {"error": "internal error; see the server log"})
        finally:
            known = path if path in ("/v1/classify", "/v1/entities", *OPEN_PATHS, "/info", "/metrics") else "other"
            self.metrics.request(known, status["code"], time.perf_counter() - started)

    def _check(self, scope) -> None:
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
                raise HttpError(401, "Missing or wrong bearer token: send 'Authorization: Bearer <token>'.")


async def _send_json(send, status: int, payload: dict, challenge: bool = False) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if challenge:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json_body(request, config: ServeConfig) -> dict:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > config.max_body_bytes):
        raise HttpError(413, f"Request body over {config.max_body_bytes} bytes; send fewer or shorter texts.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > config.max_body_bytes:
            raise HttpError(413, f"Request body over {config.max_body_bytes} bytes; send fewer or shorter texts.")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise HttpError(
            422, f'The body is not valid JSON ({exc.__class__.__name__}); send {{"inputs": ["text"]}}.'
        ) from None
    if not isinstance(body, dict):
        raise HttpError(422, 'The body must be a JSON object like {"inputs": ["text"]}.')
    unknown = set(body) - {"inputs", "pairs", "top_k"}
    if unknown:
        raise HttpError(422, f"Unknown fields {sorted(unknown)}; known: inputs, pairs, top_k.")
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
    if model.manifest.task == SEQUENCE:

        def run(with_pairs: bool, rows: list) -> list:
            if with_pairs:
                texts, pairs = zip(*rows, strict=True)
                return list(model.predict_proba(list(texts), list(pairs)))
            return list(model.predict_proba(rows))

        return run
    return lambda group, texts: [model.entities(text) for text in texts]


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
