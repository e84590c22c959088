"""`edgebert serve`: a local HTTP server for apps in any language. Torch-free; needs the [serve] extra."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..core.artifact import OPENVINO_PRECISIONS
from ..core.errors import InputError
from ..serve.config import ServeConfig
from .options import config_from_args, config_option

TOKEN_ENV = "EDGEBERT_TOKEN"
ENV_PREFIX = "EDGEBERT_"  # EDGEBERT_PORT=9000 stands in for --port 9000 (a flag given wins)
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def add_serve(commands) -> None:
    p = commands.add_parser(
        "serve",
        help="serve an artifact over HTTP on this machine (no torch needed)",
        description="Serve an artifact over HTTP: POST /v1/classify or /v1/entities, /predict "
        "(text-embeddings-inference) and / (the Hugging Face Inference API); GET /health, /ready, /info, /metrics, "
        "/openapi.json. Binds 127.0.0.1 unless --host says otherwise. Concurrent requests are micro-batched. "
        "Every flag left out can come from the environment: EDGEBERT_PORT=9000, EDGEBERT_MAX_BATCH=64, ...",
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
        "OpenVINO artifacts: the precision of their float layers; default: the manifest's (bf16 where the export "
        "chose it and this CPU has native bf16, else f32)",
        choices=list(OPENVINO_PRECISIONS),
    )
    config_option(
        p, "--public-key", ServeConfig, "public_key", "serve only an artifact signed by this key's holder (model.sig)"
    )
    p.set_defaults(run=run_serve, serve_parser=p)


def run_serve(args) -> int:
    from ..serve.run import serve

    flags_from_environment(args, args.serve_parser)
    token = args.token or None
    hosts = tuple(args.allowed_hosts or ())
    origins = tuple(args.cors_allow_origins or ()) or None
    config = config_from_args(ServeConfig, args, token=token, allowed_hosts=hosts or None, cors_allow_origins=origins)
    serve(args.artifact, config)
    return 0


def flags_from_environment(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Each flag left out takes EDGEBERT_<FLAG> from the environment (--max-batch: EDGEBERT_MAX_BATCH; a list flag:
    comma-separated; a switch: 1/0, true/false), as a container configures a server: text-embeddings-inference
    reads its flags the same way. A bad value is an error naming the variable."""
    for action in parser._actions:
        if not action.option_strings or action.dest == "help" or getattr(args, action.dest) not in (None, False):
            continue
        name = ENV_PREFIX + action.option_strings[0].lstrip("-").replace("-", "_").upper()
        if (raw := os.environ.get(name)) is not None:
            setattr(args, action.dest, _environment_value(action, name, raw.strip()))


def _environment_value(action: argparse.Action, name: str, raw: str):
    flag = action.option_strings[0]
    if isinstance(action, argparse._StoreTrueAction):
        if raw.lower() not in TRUE + FALSE:
            raise InputError(f"{name}={raw!r}: {flag} is a switch; set it to 1 or 0.")
        return raw.lower() in TRUE
    if isinstance(action, argparse._AppendAction):
        return [part.strip() for part in raw.split(",") if part.strip()]
    try:
        value = action.type(raw) if action.type else raw
    except ValueError:
        raise InputError(f"{name}={raw!r} is not a valid {flag} (see `edgebert serve --help`).") from None
    if action.choices and value not in action.choices:
        raise InputError(f"{name}={raw!r}: {flag} is one of {list(action.choices)}.")
    return value
