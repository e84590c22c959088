"""The HTTP API's routes and what each answers (asgi.py carries every request to them; bodies.py reads bodies).
Every response is JSON (or Prometheus text); every failure is a status code with a message.

POST /v1/classify  {"inputs": [str, ...], "pairs"?, "top_k"?, "truncate"?}  -> {"results": [...]} in input order
POST /v1/entities  {"inputs": [str, ...]}                                   -> {"results": [[entity, ...]]}
POST /predict      text-embeddings-inference's: {"inputs": text | [text] | [text, text] | [[text], [text, text], ...],
                   "raw_scores"?, "truncate"?} -> [{"label", "score"}] by score, one list per sequence of a batch
POST /             the Hugging Face Inference API's: {"inputs", "parameters"?: {"top_k", "function_to_apply"}}
GET  /health (alive) · /ready (model loaded, not draining) · /info (the artifact) · /metrics (Prometheus)
GET  /openapi.json (serve/openapi.py: the document a test checks against these routes)

Answers that ran the model carry x-compute-time, x-tokenization-time, x-queue-time and x-inference-time (ms).
Browsers: a request with an Origin header is refused (403) unless --cors-allow-origin lists it; listed origins get
CORS headers and their preflight (OPTIONS) answered.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from .. import __version__
from ..runtime.backends import RowByRow
from ..runtime.classifier import ACTIVATIONS
from .asgi import TIMING, HttpError, ServeApp
from .batcher import MicroBatcher, QueueFull
from .bodies import flag, json_body, long_text_of, refuse_too_long, strings, tei_sequences, top_k_of
from .config import ServeConfig
from .metrics import Metrics
from .openapi import ROUTES, openapi_document

INFERENCE_API_PARAMETERS = tuple(ROUTES["/"][2]["parameters"]["properties"])  # the fields of its "parameters"


def build_app(models: list, bundle, config: ServeConfig) -> ServeApp:
    """models: loaded copies of one Classifier or TokenClassifier (run in parallel); bundle: their directory."""
    metrics = Metrics()
    batcher = MicroBatcher(
        [m.run_batch for m in models],
        max_batch=config.max_batch,
        max_wait_ms=config.max_wait_ms,
        max_queue=config.max_queue,
        metrics=metrics,
    )
    state = {"ready": False}
    h = Handlers(models[0], batcher, config, metrics, state, bundle)
    routes = {
        "/v1/classify": ("POST", h.classify),
        "/predict": ("POST", h.predict),
        "/": ("POST", h.inference_api),
        "/v1/entities": ("POST", h.entities),
        "/health": ("GET", h.health),
        "/ready": ("GET", h.ready),
        "/info": ("GET", h.info),
        "/metrics": ("GET", h.metrics_text),
        "/openapi.json": ("GET", h.openapi),
    }
    return ServeApp(routes, batcher, config, metrics, state)


class Handlers:
    """Each route's answer: (status, payload) from the request's scope and body."""

    def __init__(self, model, batcher: MicroBatcher, config: ServeConfig, metrics: Metrics, state: dict, bundle):
        self.model, self.batcher, self.config, self.metrics, self.state = model, batcher, config, metrics, state
        self.classifies_texts = not model.LABELS_TOKENS  # else /v1/entities is its route
        self.info_document = _info(model, bundle)
        self.openapi_document = openapi_document(f"edgebert serve: {bundle}", __version__)

    def _texts_only(self) -> None:
        if not self.classifies_texts:
            raise HttpError(404, "This artifact labels tokens: POST /v1/entities instead.")

    async def classify(self, scope, receive) -> tuple[int, Any]:
        self._texts_only()
        model, config = self.model, self.config
        body = await json_body(scope, receive, config, "/v1/classify")
        texts = strings(body, "inputs", config.max_inputs)
        pairs = strings(body, "pairs", config.max_inputs) if "pairs" in body else None
        if pairs is not None and len(pairs) != len(texts):
            raise HttpError(422, f"'pairs' has {len(pairs)} items but 'inputs' has {len(texts)}; give one per input.")
        top_k = top_k_of(body.get("top_k", len(model.labels)), len(model.labels))
        policy = long_text_of(model, body)
        if not flag(body, "truncate", default=True):  # edgebert's own route cuts long texts, and says so
            refuse_too_long(model, texts, pairs, policy, 'drop "truncate": false')
        rows = list(zip(texts, pairs, strict=True)) if pairs is not None else texts
        answers = await _submit(self.batcher, rows, scope, group=(pairs is not None, policy))
        matrix = np.asarray([row for row, _, _ in answers]).reshape(len(answers), len(model.labels))
        scores, given = model.activate(matrix), model.decide(matrix)
        results = [_top(model.labels, row, top_k) for row in scores]
        return 200, {
            "results": [
                {**r, "labels": list(labels), "truncated": cut, "windows": windows}
                for r, labels, (_, cut, windows) in zip(results, given, answers, strict=True)
            ]
        }

    async def predict(self, scope, receive) -> tuple[int, Any]:
        """text-embeddings-inference's /predict: {"inputs", "raw_scores"?, "truncate"?} -> [{"label", "score"}] sorted
        by score. `inputs` as TEI reads it: a text, [text] or [text, text] (one text, or one pair) gets one such
        list; a batch [[text], [text, text], ...] gets one per sequence."""
        self._texts_only()
        model = self.model
        body = await json_body(scope, receive, self.config, "/predict")
        sequences, batch = tei_sequences(body.get("inputs"), self.config.max_inputs)
        raw = flag(body, "raw_scores")
        if body.get("truncation_direction", "Right") not in ("Right", "right"):  # TEI's spelling, and lower case
            raise HttpError(
                422, "'truncation_direction': edgebert keeps the start of a long text (\"Right\"); drop the field."
            )
        policy = model.long_text_policy().policy  # the artifact's: chunked texts are read whole, up to max_windows
        singles = [i for i, s in enumerate(sequences) if isinstance(s, str)]
        pairs = [i for i, s in enumerate(sequences) if not isinstance(s, str)]
        if not flag(body, "truncate"):  # TEI's default: an input longer than the model reads is an error, not cut
            fix = 'send "truncate": true to cut it'
            refuse_too_long(model, [sequences[i] for i in singles], None, policy, fix, rows=singles)
            texts, seconds = zip(*(sequences[i] for i in pairs), strict=True) if pairs else ((), ())
            refuse_too_long(model, list(texts), list(seconds), policy, fix, rows=pairs)
        answers: list = [None] * len(sequences)
        for rows, with_pairs in ((singles, False), (pairs, True)):  # a pair and a text never share a model call
            done = await _submit(self.batcher, [sequences[i] for i in rows], scope, group=(with_pairs, policy))
            for i, answer in zip(rows, done, strict=True):
                answers[i] = answer
        scored = [_ranked(model.labels, row if raw else model.activate(row[None])[0]) for row, _, _ in answers]
        return 200, scored if batch else scored[0]

    async def inference_api(self, scope, receive) -> tuple[int, Any]:
        """The Hugging Face Inference API's text classification, as huggingface_hub's InferenceClient calls it:
        {"inputs": str | [str], "parameters"?: {"top_k", "function_to_apply"}} -> [[{"label", "score"}, ...]] (one
        ranked list per input, a list of one for a str). Long inputs are cut, as that API does."""
        self._texts_only()
        model = self.model
        body = await json_body(scope, receive, self.config, "/")
        texts = strings(body, "inputs", self.config.max_inputs)
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict) or set(parameters) - set(INFERENCE_API_PARAMETERS):
            raise HttpError(422, f"'parameters' takes {list(INFERENCE_API_PARAMETERS)} only.")
        asked = parameters.get("top_k")  # absent or null: every label; 0 is refused like any other bad number
        top_k = len(model.labels) if asked is None else top_k_of(asked, len(model.labels), clamp=True)
        function = parameters.get("function_to_apply") or model.activation
        if function not in ACTIVATIONS:
            raise HttpError(422, f"'function_to_apply' is one of {list(ACTIVATIONS)}.")
        answers = await _submit(self.batcher, texts, scope, group=(False, model.long_text_policy().policy))
        return 200, [_ranked(model.labels, model.activate(row[None], function)[0])[:top_k] for row, _, _ in answers]

    async def entities(self, scope, receive) -> tuple[int, Any]:
        if self.classifies_texts:
            raise HttpError(404, "This artifact classifies whole texts: POST /v1/classify instead.")
        body = await json_body(scope, receive, self.config, "/v1/entities")
        found = await _submit(self.batcher, strings(body, "inputs", self.config.max_inputs), scope)
        return 200, {"results": [[asdict(e) for e in row] for row in found]}

    async def openapi(self, scope, receive) -> tuple[int, Any]:
        return 200, self.openapi_document

    async def health(self, scope, receive) -> tuple[int, Any]:
        return 200, {"status": "ok"}

    async def ready(self, scope, receive) -> tuple[int, Any]:
        return (200 if self.state["ready"] else 503), {"ready": self.state["ready"]}

    async def info(self, scope, receive) -> tuple[int, Any]:
        return 200, self.info_document

    async def metrics_text(self, scope, receive) -> tuple[int, Any]:
        return 200, self.metrics.render(self.batcher.queued_rows)  # text: Prometheus exposition format


async def _submit(batcher: MicroBatcher, rows: list, scope, group: Any = None) -> list:
    """The rows' results; their timings go to the scope, for the response headers."""
    if not rows:
        return []
    if len(rows) > batcher.max_queue:  # could never be admitted, so a retry (what 429 asks for) cannot help
        raise HttpError(413, f"{len(rows)} rows in one request; the queue holds {batcher.max_queue} (--max-queue).")
    try:
        results, scope[TIMING] = await batcher.submit(rows, group)
    except QueueFull:
        raise HttpError(429, "Too many rows waiting; retry shortly (or raise --max-queue).") from None
    return results


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
        "long_text": asdict(manifest.long_text),  # what a longer input gets (a request's "long_text" can override it)
        "backend": manifest.backend,
        "precision": manifest.precision,
        "recipe": quantization.recipe if quantization else None,
        # checked against the files at load (a fleet bundle's variant: inside its own directory)
        "model_sha256": {name: manifest.files[name] for name in manifest.model_files},
        "variant": model.variant,
        "row_by_row": isinstance(model.backend, RowByRow),
    }
