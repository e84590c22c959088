"""Reading a request: its JSON body (bounded in size and time, only the fields its route declares) and the
fields the routes share, each refused with a 4xx that says what to send instead."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..core.artifact import LONG_TEXT_POLICIES
from ..core.unicode_text import valid_unicode
from .asgi import CLOSE, ClientGone, HttpError
from .config import ServeConfig
from .openapi import request_fields


async def json_body(scope, receive, config: ServeConfig, path: str) -> dict:
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


def strings(body: dict, key: str, limit: int) -> list[str]:
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


def tei_sequences(inputs: Any, limit: int) -> tuple[list[str | tuple[str, str]], bool]:
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


def refuse_too_long(
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


def long_text_of(model, body: dict) -> str:
    """The request's "long_text" ("truncate" or "chunk"), else the artifact's policy."""
    value = body.get("long_text", model.long_text_policy().policy)
    if value not in LONG_TEXT_POLICIES:
        raise HttpError(422, f"'long_text' is one of {list(LONG_TEXT_POLICIES)} (default: the artifact's).")
    return value


def top_k_of(value: Any, labels: int, *, clamp: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (value > labels and not clamp):
        raise HttpError(422, f"'top_k' must be a whole number from 1 to {labels}.")
    return min(value, labels)


def flag(body: dict, key: str, *, default: bool = False) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise HttpError(422, f"'{key}' must be true or false.")
    return value
