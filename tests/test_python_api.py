"""The Python front door's conveniences: errors from the package root, top_k, activations, streaming, async."""

from __future__ import annotations

import asyncio
import warnings

import numpy as np
import pytest

TEXTS = ["the team won the match", "shares fell on the market", "new phone chip", "the striker scored twice"]


def test_errors_import_from_the_package_root_and_the_old_path_warns():
    import edgebert
    from edgebert import ArtifactError, EdgebertError, InputError
    from edgebert.core import errors

    assert (ArtifactError, EdgebertError, InputError) == (errors.ArtifactError, errors.EdgebertError, errors.InputError)
    assert {"ArtifactError", "EdgebertError", "InputError"} <= set(edgebert.__all__)
    import sys

    sys.modules.pop("edgebert.errors", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from edgebert.errors import ArtifactError as old
    assert old is ArtifactError and any("from edgebert import" in str(w.message) for w in caught)


def test_top_k_ranks_labels_and_none_means_all(tiny_artifact):
    from edgebert import Classifier

    clf = Classifier.load(tiny_artifact)
    full = clf.predict(TEXTS[0])
    assert [s.label for s in full.top] == sorted(clf.labels, key=lambda label: -full.scores[label])
    assert full.top[0].label == full.label and full.top[0].score == full.score
    two = clf.predict(TEXTS, top_k=2)
    assert all(len(p.top) == 2 and p.top[0].score >= p.top[1].score for p in two)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="top_k"):
            clf.predict(TEXTS[0], top_k=bad)


def test_activation_is_the_tasks_unless_overridden(tiny_artifact):
    from edgebert import Classifier

    clf = Classifier.load(tiny_artifact)
    logits = clf.predict_logits(TEXTS)
    softmax = np.array([list(p.scores.values()) for p in clf.predict(TEXTS)])
    assert clf.activation == "softmax" and np.allclose(softmax.sum(1), 1.0, atol=1e-5)
    raw = np.array([list(p.scores.values()) for p in clf.predict(TEXTS, activation="none")])
    sigmoid = np.array([list(p.scores.values()) for p in clf.predict(TEXTS, activation="sigmoid")])
    assert np.allclose(raw, logits, atol=1e-6) and np.allclose(sigmoid, 1 / (1 + np.exp(-logits)), atol=1e-6)
    with pytest.raises(ValueError, match="activation"):
        clf.predict(TEXTS, activation="relu")


def test_predict_iter_streams_in_order_and_reads_lazily(tiny_artifact):
    from edgebert import Classifier

    clf = Classifier.load(tiny_artifact)
    read = []

    def stream():
        for i in range(10):
            read.append(i)
            yield TEXTS[i % len(TEXTS)]

    results = clf.predict_iter(stream(), batch_size=3)
    first = next(results)
    assert len(read) == 3  # one batch read, not the whole stream
    rest = list(results)
    expected = clf.predict([TEXTS[i % len(TEXTS)] for i in range(10)])
    assert [first, *rest] == expected


def test_apredict_answers_as_predict_without_blocking_the_loop(tiny_artifact):
    from edgebert import Classifier

    clf = Classifier.load(tiny_artifact)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        answers = await asyncio.gather(*(clf.apredict(TEXTS) for _ in range(4)))
        task.cancel()
        return answers, ticks

    answers, ticks = asyncio.run(main())
    assert all(a == clf.predict(TEXTS) for a in answers) and ticks > 0


def test_predict_cli_reads_pairs_and_ranks_top_k(tiny_artifact, tmp_path, capsys):
    import json

    from edgebert import Classifier
    from edgebert.cli import main

    rows = [{"text": "the team won", "question": "who won?"}, {"text": "shares fell", "question": "what fell?"}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    capsys.readouterr()
    args = ["predict", str(tiny_artifact), "--file", str(path), "--pair-column", "question", "--json", "--top-k", "2"]
    assert main(args) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = Classifier.load(tiny_artifact).predict([r["text"] for r in rows], [r["question"] for r in rows])
    assert [p["label"] for p in printed] == [e.label for e in expected]
    assert [p["scores"] for p in printed] == [pytest.approx(e.scores) for e in expected]
    assert all(len(p["top"]) == 2 for p in printed)
    assert main(["predict", str(tiny_artifact), "--file", str(path), "--pair-column", "nope"]) == 2
    assert "no 'nope' column" in capsys.readouterr().err
