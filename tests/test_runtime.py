"""The Classifier: input handling, order under length bucketing, thread safety, thread defaults."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgebert import Classifier, Prediction
from edgebert.core.cpu import usable_cpu_count
from edgebert.runtime.tokenization import TextEncoder

from .conftest import make_examples


@pytest.fixture(scope="module")
def classifier(tiny_int8_artifact) -> Classifier:
    return Classifier.load(tiny_int8_artifact, batch_size=4)


def test_bucketing_preserves_input_order(tiny_artifact):
    """fp32: a text's logits must not depend on which bucket or position it lands in."""
    fp32 = Classifier.load(tiny_artifact, batch_size=4)
    texts = [row["text"] for row in make_examples(23, seed=9)]
    batched = fp32.predict_logits(texts)
    one_by_one = np.concatenate([fp32.predict_logits([t]) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert [p.label for p in fp32.predict(texts)] == [fp32.labels[i] for i in batched.argmax(1)]


def test_single_string_gives_single_prediction(classifier):
    prediction = classifier.predict("goal for the team")
    assert isinstance(prediction, Prediction)
    assert prediction.label in classifier.labels
    assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.score == max(prediction.scores.values())


def test_predict_proba_rows_sum_to_one(classifier):
    proba = classifier.predict_proba(["a", "b c", "market"])
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)


def test_empty_list_gives_empty_result(classifier):
    assert classifier.predict([]) == []
    assert classifier.predict_proba([]).shape == (0, 3)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "🙂🙃🔥" * 50,
        "\x00\x07\x1b[31m control \u200b\ufeff",
        "x" * 100_000,
        "word " * 20_000,
        "苹果公司发布了新的iPhone 15，价格是5999元！",
        "\ud800 lone surrogate",
    ],
    ids=["empty", "spaces", "emoji", "control", "100k-chars", "100k-words", "mixed-zh-en", "surrogate"],
)
def test_odd_texts_get_an_answer(classifier, text):
    prediction = classifier.predict(text)
    assert prediction.label in classifier.labels
    assert np.isfinite(prediction.score)


@pytest.mark.parametrize("bad, index", [([None], 0), (["ok", 3], 1), (["ok", "ok", b"bytes"], 2)])
def test_non_string_items_raise_type_error_naming_index(classifier, bad, index):
    with pytest.raises(TypeError, match=rf"texts\[{index}\]"):
        classifier.predict(bad)


@pytest.mark.parametrize("bad", [None, 42, {"text": "x"}])
def test_non_sequence_input_raises_type_error(classifier, bad):
    with pytest.raises(TypeError, match="str or a sequence of str"):
        classifier.predict(bad)


def test_concurrent_calls_match_serial(classifier):
    texts = [row["text"] for row in make_examples(40, seed=3)]
    chunks = [texts[i : i + 5] for i in range(0, len(texts), 5)]
    serial = [classifier.predict_logits(chunk) for chunk in chunks]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(classifier.predict_logits, chunks * 3))
    for got, want in zip(concurrent, serial * 3, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_length_bucketing_pads_each_batch_only_to_its_longest(tiny_base):
    encoder = TextEncoder.from_file(tiny_base / "tokenizer.json", max_length=32)
    texts = ["a", "a b c d e f g h", "a b", "a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h"]
    ids, types = encoder.encode(texts)
    batches = list(encoder.batches(ids, types, batch_size=2))
    assert [b.input_ids.shape[1] for b in batches] == [4, 32]  # short pair, then long pair (truncated to 32)
    assert sorted(np.concatenate([b.indices for b in batches]).tolist()) == [0, 1, 2, 3]
    for batch in batches:
        assert (batch.attention_mask.sum(1) == [len(ids[i]) for i in batch.indices]).all()


def test_fixed_padding_in_tokenizer_json_is_overridden(tmp_path):
    """The bundled MiniLM tokenizer.json pads every text to 128; edgebert must not."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[PAD]": 0, "[UNK]": 1, "hi": 2}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.enable_padding(length=128, pad_id=0)
    tokenizer.enable_truncation(max_length=128)
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    encoder = TextEncoder.from_file(path, max_length=4)
    assert encoder.encode_ids(["hi hi", "hi hi hi hi hi hi"]) == [[2, 2], [2, 2, 2, 2]]


def test_threads_default_to_usable_cpus(tiny_int8_artifact, monkeypatch):
    import edgebert.runtime.model as module

    seen = {}
    real_open = module.open_backend

    def spy(backend, path, threads, **options):
        seen["threads"] = threads
        return real_open(backend, path, threads, **options)

    monkeypatch.setattr(module, "open_backend", spy)
    Classifier.load(tiny_int8_artifact)
    assert seen["threads"] == usable_cpu_count()
    Classifier.load(tiny_int8_artifact, threads=1)
    assert seen["threads"] == 1


def test_a_model_answers_with_the_bytes_it_verified_even_if_the_file_is_replaced(tmp_path, tiny_int8_artifact):
    """Dynamic INT8 runs lists row by row on a second, one-thread session opened at the first multi-row call: it
    must open from the verified bytes, not from a path a re-export may have replaced meanwhile."""
    import shutil

    import onnx

    from edgebert import Classifier

    artifact = tmp_path / "artifact"
    shutil.copytree(tiny_int8_artifact, artifact)
    model = Classifier.load(artifact, threads=2)
    texts = ["goal for the team", "bank profit rises", "the match ended", "shares fell"]
    expected = model.predict_logits(texts[:1])
    graph = onnx.load(str(artifact / "model.onnx"))
    for init in graph.graph.initializer:  # another model with the same inputs and outputs: every weight zeroed
        init.CopyFrom(onnx.numpy_helper.from_array(np.zeros_like(onnx.numpy_helper.to_array(init)), init.name))
    onnx.save(graph, str(artifact / "model.onnx"))
    swapped = model.predict_logits(texts)  # opens the side-by-side session now
    np.testing.assert_array_equal(swapped[:1], expected)
    np.testing.assert_array_equal(swapped, Classifier.load(tiny_int8_artifact, threads=2).predict_logits(texts))
