"""Token classification: alignment, BIO decoding, entity metrics, and train -> INT8 export -> runtime."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from edgebert.core.bio import bio_entities, decode_bio, first_subtokens
from edgebert.core.errors import ArtifactError, InputError
from edgebert.core.metrics import entity_metrics
from edgebert.data.tokens import IGNORE, align_tags, load_token_file
from edgebert.runtime.tokenization import TextEncoder


def test_first_subtoken_carries_the_tag_and_the_rest_are_ignored():
    #          [CLS]  w0  w0  w1  w1  w1  w2  [SEP]
    word_ids = [None, 0, 0, 1, 1, 1, 2, None]
    assert first_subtokens(word_ids) == [1, 3, 6]
    assert align_tags(word_ids, [5, 6, 7]) == [IGNORE, 5, IGNORE, 6, IGNORE, IGNORE, 7, IGNORE]


def test_alignment_on_a_real_tokenizer_splits_unknown_words(tiny_base):
    encoder = TextEncoder.from_file(tiny_base / "tokenizer.json", max_length=64)
    words = ["the", "dmitri", "ivanov", "match"]
    ids, _, word_ids = encoder.encode_words([words])
    pieces = [encoder.tokenizer.id_to_token(i) for i in ids[0]]
    assert word_ids[0].count(1) > 1, "an out-of-vocabulary word should split into several pieces"
    firsts = first_subtokens(word_ids[0])
    assert len(firsts) == len(words)
    for word_index, position in enumerate(firsts):
        piece = pieces[position]
        if piece == "[UNK]":  # WordPiece gives up on the whole word: one piece
            assert word_ids[0].count(word_index) == 1
        else:
            assert words[word_index].startswith(piece) and not piece.startswith("##"), (piece, words[word_index])


def test_bio_entities():
    assert bio_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]
    assert bio_entities(["I-ORG", "I-ORG", "B-ORG"]) == [("ORG", 0, 2), ("ORG", 2, 3)]  # lenient I- start
    assert bio_entities(["B-PER", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 2)]  # type change ends the entity
    assert bio_entities(["O", "O"]) == []


LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _valid_bio(tags: list[str]) -> bool:
    before = "O"
    for tag in tags:
        if tag.startswith("I-") and before[2:] != tag[2:]:
            return False
        before = tag
    return True


def test_bio_decoding_mends_a_span_with_no_beginning():
    #        word:    O     I-PER favoured, B-PER close behind      I-PER
    logits = np.array([[3.0, 0, 0, 0, 0], [0, 2.0, 2.5, 0, 0], [0, 0, 3.0, 0, 0]])
    assert [LABELS[i] for i in logits.argmax(-1)] == ["O", "I-PER", "I-PER"]  # argmax: no B-PER
    assert [LABELS[i] for i in decode_bio(logits, LABELS)] == ["O", "B-PER", "I-PER"]
    assert decode_bio(np.zeros((0, 5)), LABELS) == []


def test_bio_decoding_is_the_most_probable_valid_sequence():
    rng = np.random.default_rng(0)
    for _ in range(30):
        logits = rng.normal(size=(4, len(LABELS))) * 3
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        decoded = decode_bio(logits, LABELS)
        assert _valid_bio([LABELS[i] for i in decoded])
        best = max(
            (seq for seq in itertools.product(range(len(LABELS)), repeat=4) if _valid_bio([LABELS[i] for i in seq])),
            key=lambda seq: sum(log_probs[w, t] for w, t in enumerate(seq)),
        )
        assert decoded == list(best)
        if _valid_bio([LABELS[i] for i in logits.argmax(-1)]):  # nothing to mend: the argmax itself
            assert decoded == list(logits.argmax(-1))


def test_entity_metrics_count_exact_spans_only():
    truth = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG"]]  # PER span cut short: wrong
    m = entity_metrics(truth, pred)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["per_type"]["PER"]["f1"] == 0.0 and m["per_type"]["LOC"]["f1"] == 1.0
    assert m["tag_accuracy"] == pytest.approx(4 / 5)


def test_bad_token_file_names_the_problem(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"tokens": ["a", "b"], "tags": ["O"]}) + "\n")
    with pytest.raises(InputError, match="one tag per token"):
        load_token_file(path)


def test_token_training_learns_entities(tiny_token_checkpoint):
    metrics = json.loads((tiny_token_checkpoint / "metrics.json").read_text())
    assert metrics["score_name"] == "f1"
    assert metrics["best"]["f1"] > 0.6, metrics["best"]  # untrained: ~0; some entity words are [UNK] in the tiny vocab


def test_int8_token_artifact_reports_entity_drift(token_int8_artifact):
    manifest = json.loads((token_int8_artifact / "edgebert.json").read_text())
    assert manifest["task"] == "token" and manifest["precision"] == "int8"
    evaluation = manifest["evaluation"]
    assert evaluation["metric"] == "entity_f1" and {"reference_score", "drop_points"} <= evaluation.keys()
    assert evaluation["score"] > 0.7


def test_token_runtime_returns_words_with_offsets(token_int8_artifact):
    from edgebert.runtime import Classifier, TokenClassifier

    ner = TokenClassifier.load(token_int8_artifact)
    text = "the  Dmitri Ivanov, in Paris"
    words = ner.predict(text)
    assert [w.word for w in words] == ["the", "Dmitri", "Ivanov", ",", "in", "Paris"]
    for w in words:
        assert text[w.start : w.end] == w.word and w.label in ner.labels and 0 < w.score <= 1
    for entity in ner.entities(text):
        assert text[entity.start : entity.end] == entity.text
    assert ner.predict([text, "oslo"])[1][0].word == "oslo"
    with pytest.raises(ArtifactError, match="load it with TokenClassifier"):
        Classifier.load(token_int8_artifact)
