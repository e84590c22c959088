"""Start the server: load and verify the artifact, bind, announce the port, serve until SIGTERM/Ctrl-C, drain."""

from __future__ import annotations

import contextlib
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
    models = [front_door.load(bundle, **options)]  # checksums and golden logits checked once
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
