"""The ASGI plumbing under every route: lifespan (start and drain the batcher), the checks every request passes
(URL and header size, the Host name against DNS rebinding, web-page origins, the bearer token), dispatch to the
route table, and one JSON (or Prometheus text) response per request, errors included, each with TEI's error_type.
Plain ASGI rather than Starlette (whose imports would add about 5% to start-up): its CORS middleware lets an unlisted
origin's request run and its host check answers 400 without naming the fix; this refuses both first (docs/serving.md)."""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Any

from .batcher import MicroBatcher
from .config import ServeConfig
from .metrics import Metrics
from .openapi import TIMING_HEADERS

OPEN_PATHS = ("/health", "/ready")  # liveness probes need no token


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


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


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
                return await send_response(send, 204, (b"", b"text/plain"), cors + PREFLIGHT)
            status, payload = await self._answer(scope, receive)
            response = encode(payload)  # inside the try: a value JSON cannot hold is a 500 like any other
            headers = timing_headers(scope.get(TIMING), started)
        except HttpError as exc:
            status, headers = exc.status, exc.headers
            response = encode({"error": str(exc), "error_type": exc.error_type})  # error_type as TEI sends it
        except ClientGone:
            status, response = 499, None  # nobody to answer (nginx's code for it, in the metrics only)
        except Exception:  # never a traceback in a response; the server log keeps it
            logging.getLogger("edgebert.serve").exception("internal error on %s", path)
            status, response = 500, encode({"error": "internal error; see the server log", "error_type": "Backend"})
        try:
            if response is not None:
                await send_response(send, status, response, headers + cors)
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


def encode(payload: Any) -> tuple[bytes, bytes]:
    """(body, content type): Prometheus text for a str, else JSON (allow_nan=False: NaN is never sent as JSON)."""
    if isinstance(payload, str):
        return payload.encode(), b"text/plain; version=0.0.4; charset=utf-8"
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(), b"application/json"


async def send_response(send, status: int, response: tuple[bytes, bytes], extra_headers: tuple = ()) -> None:
    body, kind = response
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def timing_headers(timing: dict[str, float] | None, started: float) -> tuple[tuple[bytes, bytes], ...]:
    """x-compute-time (all of the request in the app) and each stage's, in whole ms as text-embeddings-inference
    sends them; none for requests that did not run the model."""
    if timing is None:
        return ()
    values = {"x-compute-time": time.perf_counter() - started}
    values.update({f"x-{stage}-time": seconds for stage, seconds in timing.items()})
    return tuple((name.encode(), str(round(values[name] * 1000)).encode()) for name in TIMING_HEADERS if name in values)
