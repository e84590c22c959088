"""Start the server: load and verify the artifact, bind, announce the port, serve until SIGTERM/Ctrl-C, drain."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
from pathlib import Path

from ..core.errors import InputError, require
from ..core.files import write_text_atomic
from .config import ServeConfig


def serve(artifact: str | Path, config: ServeConfig, *, log=lambda message: print(message, file=sys.stderr)) -> None:
    uvicorn = require("uvicorn", "serve")
    from ..runtime import front_door as front_door_of
    from .app import build_app

    bundle = Path(artifact)
    front_door = front_door_of(bundle)
    options = {"threads": config.threads, "batch_size": config.max_batch, "spinning": config.spinning}
    options["openvino_precision"] = config.openvino_precision
    # signature (when a key is given), checksums and golden logits checked once
    models = [front_door.load(bundle, public_key=config.public_key, **options)]
    models += [front_door.load(bundle, verify=False, check_golden=False, **options) for _ in range(config.replicas - 1)]
    app = build_app(models, bundle, config)

    sock = _bind(config.host, config.port)
    port = sock.getsockname()[1]
    uv_config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=config.drain_seconds,
        lifespan="on",
        limit_concurrency=config.max_connections,  # beyond: 503, so slow clients cannot exhaust file descriptors
        timeout_keep_alive=5,
        http=header_deadline_protocol(config.read_timeout_seconds),
        h11_max_incomplete_event_size=16 << 10,  # a header block larger than this closes the connection
    )
    server = uvicorn.Server(uv_config)
    original_startup = server.startup

    async def startup(sockets=None):
        await original_startup(sockets=sockets)
        if config.port_file:  # written once the socket accepts, so the parent app may connect at once
            write_text_atomic(Path(config.port_file), f"{port}\n")
        log(f"edgebert serve: {bundle} on http://{_url_host(config.host)}:{port} (Ctrl-C or SIGTERM to stop)")

    server.startup = startup
    # On SIGTERM/Ctrl-C uvicorn stops accepting, finishes in-flight requests, then re-raises the signal it handled.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    log("edgebert serve: stopped")


MAX_HEADER_BLOCK = 64 << 10  # bytes of request line + headers; beyond: 431 and close, before parsing any further


def header_deadline_protocol(seconds: float):
    """uvicorn's HTTP protocol, with a deadline and a size cap for each request's headers: a connection that has not
    sent a whole header block `seconds` after it opened (or after its previous request began) is answered 408, one
    whose header block passes MAX_HEADER_BLOCK bytes 431, and either is closed.

    uvicorn alone has neither: a client trickling one header byte a second holds its connection for ever, and enough
    of them hold every connection --max-connections allows (slowloris); a 128 MB header is parsed whole, holding up
    every other client. The body has its own deadline and cap (app.py)."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    if not issubclass(AutoHTTPProtocol, HttpToolsProtocol):  # h11 (no httptools): its own limits only
        return AutoHTTPProtocol
    return type("HeaderDeadlineProtocol", (HeaderDeadline, AutoHTTPProtocol), {"header_seconds": seconds})


class HeaderDeadline:
    """The header deadline and cap, mixed into uvicorn's httptools protocol (imported only when serving)."""

    header_seconds = 10.0
    _header_timer = None
    _header_bytes = 0
    _header_since = 0.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._start_header_timer()
        self._make_room()

    def _make_room(self) -> None:
        """At the connection cap, drop the connections stalled longest in their headers (oldest first) rather
        than answer the newcomer 503: a flood of slow clients then churns itself, and quick clients get in."""
        limit = self.limit_concurrency
        if limit is None or len(self.connections) < limit:
            return
        stalled = [c for c in self.connections if c is not self and getattr(c, "_header_timer", None) is not None]
        stalled.sort(key=lambda c: c._header_since)
        for connection in stalled[: len(self.connections) - limit + 1]:
            connection._stop_header_timer()
            connection._refuse(408, "Request Timeout", "request headers too slow while the server is full", "Timeout")

    def data_received(self, data: bytes) -> None:
        reading_headers = self._header_timer is not None
        super().data_received(data)  # parses at most this chunk (asyncio reads 64-256 KB at a time)
        if reading_headers and self._header_timer is not None:  # the header block is still not complete
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BLOCK:
                self._stop_header_timer()
                self._refuse(431, "Request Header Fields Too Large", "request headers too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        self._header_bytes, self._header_since = 0, self.loop.time()
        self._header_timer = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # a request is being answered: not a header problem
        self._refuse(408, "Request Timeout", "request headers not received in time", "Timeout")

    def _refuse(self, status: int, reason: str, message: str, kind: str = "Validation") -> None:
        body = json.dumps({"error": message, "error_type": kind}).encode()
        head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
        self.transport.write(head.encode() + b"content-length: %d\r\n\r\n" % len(body) + body)
        self.transport.close()
        # counted out now: a burst of refusals would otherwise fill the cap until their closes complete
        self.connections.discard(self)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio turns on TCP_NODELAY only for sockets that say so, and without it a
    # keep-alive client waits ~40 ms per response (Nagle's algorithm meeting delayed ACKs).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(
            f"Cannot listen on {host}:{port} ({exc.strerror}); pick another --port (0 = any free)."
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
