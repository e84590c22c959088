"""Settings of `edgebert serve`; the CLI flags map one-to-one onto these fields."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.errors import InputError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"  # loopback only, unless the user asks otherwise
    port: int = 8080  # 0 picks a free port (written to port_file)
    port_file: str | None = None
    token: str | None = None  # bearer token required on /v1/* and /info, /metrics (or EDGEBERT_TOKEN)
    allowed_hosts: tuple[str, ...] = ()  # extra Host header names accepted (DNS-rebinding guard)
    cors_allow_origins: tuple[str, ...] = ()  # web origins whose pages may call the API ("*": any); others get 403
    threads: int | None = None  # inference threads per model copy (default: usable CPUs)
    replicas: int = 1  # model copies running batches in parallel (e.g. 2 copies x 1 thread for many short texts)
    max_batch: int = 32  # rows per inference call
    max_wait_ms: float = 2.0  # how long the first request of a batch waits for company
    max_queue: int = 1024  # rows waiting; more gets 429
    max_inputs: int = 256  # texts per request; more gets 413
    max_body_bytes: int = 4 << 20  # request body; more gets 413
    spinning: bool = False  # ORT worker threads busy-wait between calls (see runtime/backends.py)
    openvino_precision: str | None = None  # None: the manifest's; "bf16" on CPUs with native bf16, "f32"
    drain_seconds: float = 30.0  # on SIGTERM, how long in-flight requests may take
    read_timeout_seconds: float = 10.0  # a request body must arrive within this; 408 beyond
    max_connections: int = 512  # open connections; more get 503 (below the usual 1,024 open-file limit)
    public_key: str | None = None  # refuse to start unless the artifact is signed by this key's holder

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port must be 0-65535 (0 picks a free port), got {self.port}.")
        for name in ("replicas", "max_batch", "max_queue", "max_inputs", "max_body_bytes", "max_connections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"--{name.replace('_', '-')} must be a whole number of at least 1, got {value!r}.")
        for name in ("max_wait_ms", "drain_seconds", "read_timeout_seconds"):
            value = getattr(self, name)
            if not math.isfinite(value) or not 0 <= value <= 60_000:
                raise InputError(f"--{name.replace('_', '-')} must be between 0 and 60000, got {value!r}.")
        for origin in self.cors_allow_origins:
            if origin != "*" and not origin.startswith(
                ("http://", "https://", "chrome-extension://", "moz-extension://")
            ):
                raise InputError(
                    f"--cors-allow-origin takes an origin such as http://localhost:3000 (scheme, host, port) or *, "
                    f"got {origin!r}."
                )
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1, got {self.threads}.")
        if self.token is not None and len(self.token) < 16:
            raise InputError(
                "--token must be at least 16 characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)."
            )

    @property
    def host_names(self) -> frozenset[str]:
        """Host header names accepted: loopback names, the bound address, and --allow-host."""
        return frozenset({*LOOPBACK_NAMES, self.host, *self.allowed_hosts})
