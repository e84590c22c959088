"""`edgebert serve`: a local HTTP server for apps in any language. Torch-free; needs the [serve] extra."""

from __future__ import annotations

import os
from pathlib import Path

from ..serve.config import ServeConfig
from .options import config_from_args, config_option

TOKEN_ENV = "EDGEBERT_TOKEN"


def add_serve(commands) -> None:
    p = commands.add_parser(
        "serve",
        help="serve an artifact over HTTP on this machine (no torch needed)",
        description="Serve an artifact over HTTP: POST /v1/classify or /v1/entities, /predict "
        "(text-embeddings-inference) and / (the Hugging Face Inference API); GET /health, /ready, /info, /metrics, "
        "/openapi.json. Binds 127.0.0.1 unless --host says otherwise. Concurrent requests are micro-batched.",
    )
    p.add_argument("artifact", type=Path, metavar="ARTIFACT")
    config_option(p, "--host", ServeConfig, "host", "address to bind")
    config_option(p, "--port", ServeConfig, "port", "port; 0 picks a free one (see --port-file)", type=int)
    config_option(p, "--port-file", ServeConfig, "port_file", "write the bound port here once serving")
    p.add_argument("--token", help=f"require 'Authorization: Bearer TOKEN' (or set {TOKEN_ENV})")
    p.add_argument(
        "--allow-host", action="append", dest="allowed_hosts", metavar="NAME", help="accept this Host header too"
    )
    p.add_argument(
        "--cors-allow-origin",
        action="append",
        dest="cors_allow_origins",
        metavar="ORIGIN",
        help="let web pages from ORIGIN (e.g. http://localhost:3000, or *) call the API; other origins get 403",
    )
    config_option(
        p, "--threads", ServeConfig, "threads", "inference threads (None: CPUs this process may use)", type=int
    )
    config_option(p, "--replicas", ServeConfig, "replicas", "model copies running in parallel", type=int)
    config_option(p, "--max-batch", ServeConfig, "max_batch", "rows per inference call", type=int)
    config_option(p, "--max-wait-ms", ServeConfig, "max_wait_ms", "wait for batch-mates", type=float)
    config_option(p, "--max-queue", ServeConfig, "max_queue", "rows waiting before 429", type=int)
    config_option(p, "--max-inputs", ServeConfig, "max_inputs", "texts per request before 413", type=int)
    config_option(p, "--max-body-bytes", ServeConfig, "max_body_bytes", "request size before 413", type=int)
    config_option(
        p, "--read-timeout", ServeConfig, "read_timeout_seconds", "seconds for a request body before 408", type=float
    )
    config_option(p, "--max-connections", ServeConfig, "max_connections", "open connections before 503", type=int)
    config_option(p, "--spinning", ServeConfig, "spinning", "let inference threads busy-wait", action="store_true")
    config_option(
        p,
        "--openvino-precision",
        ServeConfig,
        "openvino_precision",
        "OpenVINO artifacts: bf16 on CPUs with native bf16 (faster; the golden replay still checks)",
        choices=["f32", "bf16"],
    )
    config_option(
        p, "--public-key", ServeConfig, "public_key", "serve only an artifact signed by this key's holder (model.sig)"
    )
    p.set_defaults(run=run_serve)


def run_serve(args) -> int:
    from ..serve.run import serve

    token = args.token or os.environ.get(TOKEN_ENV) or None
    hosts = tuple(args.allowed_hosts or ())
    origins = tuple(args.cors_allow_origins or ()) or None
    config = config_from_args(ServeConfig, args, token=token, allowed_hosts=hosts or None, cors_allow_origins=origins)
    serve(args.artifact, config)
    return 0
