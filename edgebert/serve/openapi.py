"""The static OpenAPI 3.1 document served at GET /openapi.json. A test checks it against the real routes and
their accepted fields, so it cannot drift from what the server does."""

from __future__ import annotations

from typing import Any

TEXTS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
SEQUENCE = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}  # [text] or [text, text]
TEI_INPUTS = {  # text-embeddings-inference's: a text, one sequence, or a batch of sequences
    "oneOf": [{"type": "string"}, SEQUENCE, {"type": "array", "items": SEQUENCE}],
}
LABEL_SCORE = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "score": {"type": "number"}},
    "required": ["label", "score"],
}
ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "error_type": {"type": "string"}},
    "required": ["error"],
}
TIMING_HEADERS = ("x-compute-time", "x-tokenization-time", "x-queue-time", "x-inference-time")

# path -> (method, summary, request body properties or None, response schema)
ROUTES: dict[str, tuple[str, str, dict | None, dict]] = {
    "/v1/classify": (
        "post",
        "Classify texts (or text pairs); results in input order, each with every label above top_k",
        {
            "inputs": {"type": "array", "items": {"type": "string"}},
            "pairs": {"type": "array", "items": {"type": "string"}},
            "top_k": {"type": "integer", "minimum": 1},
            "truncate": {"type": "boolean", "default": True},
            "long_text": {"type": "string", "enum": ["truncate", "chunk"]},
        },
        {
            "type": "object",
            "properties": {
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "label": {"type": "string"},
                            "score": {"type": "number"},
                            "scores": {"type": "object", "additionalProperties": {"type": "number"}},
                            "labels": {"type": "array", "items": {"type": "string"}},
                            "truncated": {"type": "boolean"},
                            "windows": {"type": "integer", "minimum": 1},
                        },
                    },
                }
            },
        },
    ),
    "/v1/entities": (
        "post",
        "Named entities of each text (token-classification artifacts), with character offsets",
        {"inputs": {"type": "array", "items": {"type": "string"}}},
        {"type": "object", "properties": {"results": {"type": "array", "items": {"type": "array"}}}},
    ),
    "/predict": (
        "post",
        "text-embeddings-inference's classifier route: labels sorted by score",
        {
            "inputs": TEI_INPUTS,
            "raw_scores": {"type": "boolean", "default": False},
            "truncate": {"type": "boolean", "default": False},
            "truncation_direction": {"type": "string", "enum": ["right"]},
        },
        {"oneOf": [{"type": "array", "items": LABEL_SCORE}, {"type": "array", "items": {"type": "array"}}]},
    ),
    "/": (
        "post",
        "The Hugging Face Inference API's text-classification shape (what huggingface_hub's InferenceClient sends)",
        {
            "inputs": TEXTS,
            "parameters": {
                "type": "object",
                "properties": {
                    "top_k": {"type": "integer", "minimum": 1},
                    "function_to_apply": {"type": "string", "enum": ["softmax", "sigmoid", "none"]},
                },
            },
        },
        {"type": "array", "items": {"type": "array", "items": LABEL_SCORE}},
    ),
    "/health": ("get", "Alive", None, {"type": "object"}),
    "/ready": ("get", "Model loaded and not draining (503 otherwise)", None, {"type": "object"}),
    "/info": (
        "get",
        "The artifact: labels, max length, long-text policy, backend, precision, recipe, model digest",
        None,
        {"type": "object"},
    ),
    "/metrics": ("get", "Prometheus metrics (text)", None, {"type": "string"}),
    "/openapi.json": ("get", "This document", None, {"type": "object"}),
}


def request_fields(path: str) -> set[str]:
    """The body fields the document says `path` accepts."""
    body = ROUTES[path][2]
    return set(body or ())


def openapi_document(title: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, (method, summary, body, response) in ROUTES.items():
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {
                    "description": "OK",
                    "headers": {name: {"schema": {"type": "string"}} for name in TIMING_HEADERS}
                    if body is not None
                    else {},
                    "content": {"application/json": {"schema": response}},
                },
                "default": {"description": "An error", "content": {"application/json": {"schema": ERROR}}},
            },
        }
        if body is not None:
            schema = {"type": "object", "properties": body, "required": ["inputs"], "additionalProperties": False}
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        paths[path] = {method: operation}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
