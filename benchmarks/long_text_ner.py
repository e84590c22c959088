"""Named entities in documents longer than the model: cut, or read in windows and stitched.

    python benchmarks/long_text_ner.py --artifact DIR [--data msra_ner:test] [--per-document 10] [--out FILE]
        -> benchmarks/results/long_text_ner-<cpu>.json

Joins every run of --per-document consecutive test sentences into one document (character tokens joined without a
separator, as Chinese is written) and finds its entities three ways with the same token-classification artifact:
  sentences  each sentence alone (what the model was trained and scored on): the reference
  truncate   the whole document in one call: entities past max_length tokens are never found
  chunk      the document in windows, each token labelled from the window where it sits most centrally
Entity micro F1 over (start, end, type) character spans, with 95% bootstrap intervals over documents, and paired
differences; plus recall on the entities that lie past the first window and on those that cross a window edge.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edgebert.core.bio import bio_entities
from edgebert.core.cpu import cpu_info
from edgebert.core.metrics import bootstrap_rows, f1_interval, paired_f1_difference
from edgebert.runtime import TokenClassifier
from edgebert.runtime.windows import window_starts
from edgebert.tasks import task_class

RESULTS = Path(__file__).parent / "results"


def documents(words: list[list[str]], tags: list[list[str]], per_document: int) -> list[dict]:
    """Consecutive sentences joined: the text, its gold entity spans, and each sentence's start offset."""
    docs = []
    for first in range(0, len(words), per_document):
        text, gold, starts = "", set(), []
        chosen = slice(first, first + per_document)
        for sentence, sentence_tags in zip(words[chosen], tags[chosen], strict=True):
            starts.append(len(text))
            offsets = np.cumsum([0, *map(len, sentence)]) + len(text)
            gold |= {(kind, int(offsets[a]), int(offsets[b])) for kind, a, b in bio_entities(sentence_tags)}
            text += "".join(sentence)
        docs.append({"text": text, "gold": gold, "starts": starts})
    return docs


def found(tagger: TokenClassifier, text: str, policy: str, shift: int = 0) -> set:
    return {(e.label, e.start + shift, e.end + shift) for e in tagger.entities(text, long_text=policy)}


def counts(gold: set, predicted: set) -> list[int]:
    return [len(gold & predicted), len(predicted), len(gold)]


def edges(tagger: TokenClassifier, doc: dict) -> tuple[set, set]:
    """Gold entities past the first window, and those that cross a window edge (chunk's windows of this doc)."""
    encoding = tagger.encoder._reader(4096).encode(doc["text"])
    spans = encoding.offsets[1:-1]  # pieces' character spans
    width = tagger.encoder.max_length - 2
    policy = tagger.long_text_policy("chunk")
    stride = width // 4 if policy.stride is None else policy.stride
    starts = window_starts(len(spans), width, stride, policy.max_windows)
    first_end = spans[min(width, len(spans)) - 1][1]
    cuts = {spans[s][0] for s in starts[1:]} | {spans[min(s + width, len(spans)) - 1][1] for s in starts[:-1]}
    late = {g for g in doc["gold"] if g[1] >= first_end}
    crossing = {g for g in doc["gold"] if any(g[1] < c < g[2] for c in cuts)}
    return late, crossing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--data", default="msra_ner:test")
    parser.add_argument("--per-document", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    tagger = TokenClassifier.load(args.artifact, threads=1)
    data = task_class("token").load_data(args.data, "test")
    docs = documents(data.words, data.tags, args.per_document)
    tallies = {"sentences": [], "truncate": [], "chunk": []}
    late_recall, crossing_recall = {k: [0, 0] for k in tallies}, {k: [0, 0] for k in tallies}
    for doc in docs:
        sentences = set()
        for i, start in enumerate(doc["starts"]):
            end = doc["starts"][i + 1] if i + 1 < len(doc["starts"]) else len(doc["text"])
            sentences |= found(tagger, doc["text"][start:end], "truncate", start)
        predictions = {"sentences": sentences, "truncate": found(tagger, doc["text"], "truncate")}
        predictions["chunk"] = found(tagger, doc["text"], "chunk")
        late, crossing = edges(tagger, doc)
        for name, predicted in predictions.items():
            tallies[name].append(counts(doc["gold"], predicted))
            late_recall[name][0] += len(late & predicted)
            late_recall[name][1] += len(late)
            crossing_recall[name][0] += len(crossing & predicted)
            crossing_recall[name][1] += len(crossing)
    rows = bootstrap_rows(len(docs))
    arrays = {name: np.asarray(t) for name, t in tallies.items()}
    result = {
        "data": f"{args.data}: {len(data.words)} sentences joined {args.per_document} at a time into {len(docs)} documents "
        f"({np.mean([len(d['text']) for d in docs]):.0f} characters on average)",
        "artifact": str(args.artifact),
        "max_length": tagger.manifest.max_length,
        "cpu": cpu_info().record(),
        "readings": {},
    }
    for name, c in arrays.items():
        total = c.sum(0)
        precision, recall = total[0] / max(total[1], 1), total[0] / max(total[2], 1)
        result["readings"][name] = {
            "entity_f1": float(2 * precision * recall / max(precision + recall, 1e-12)),
            "f1_ci95": f1_interval(c, rows),
            "precision": float(precision),
            "recall": float(recall),
            "recall_past_first_window": late_recall[name][0] / max(late_recall[name][1], 1),
            "entities_past_first_window": late_recall[name][1],
            "recall_across_window_edges": crossing_recall[name][0] / max(crossing_recall[name][1], 1),
            "entities_across_window_edges": crossing_recall[name][1],
        }
    result["chunk_vs_truncate"] = paired_f1_difference(arrays["chunk"], arrays["truncate"], rows)
    result["chunk_vs_sentences"] = paired_f1_difference(arrays["chunk"], arrays["sentences"], rows)
    out = args.out or RESULTS / f"long_text_ner-{cpu_info().microarchitecture or cpu_info().isa}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["readings"], indent=1))
    print("chunk - truncate", result["chunk_vs_truncate"], "chunk - sentences", result["chunk_vs_sentences"])
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
