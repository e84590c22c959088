"""Domain-adaptive pre-training (`edgebert adapt`): BERT's masking recipe, real MLM learning on a tiny
encoder, and an output directory that `edgebert train --model DIR` fine-tunes without re-extending."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from safetensors.torch import load_file

from edgebert.cli import main
from edgebert.core.errors import ArtifactExistsError, InputError
from edgebert.data.tokens import IGNORE
from edgebert.modeling.checkpoint import ADAPT_META
from edgebert.train.adapt import Masker, adapt
from edgebert.train.config import AdaptConfig, TrainConfig
from edgebert.train.vocab import plain_tokenizer

from .conftest import make_examples, write_jsonl

CHINESE = "质量很好物流推荐服务差失望"


SENTENCES = [
    "the coach said the team will win the cup",
    "shares in the bank rose after the profit report",
    "the new phone has a faster chip and more data",
    "质量很好物流很快推荐",
    "服务太差非常失望",
]


def _texts(n: int, seed: int) -> list[str]:
    """Fixed sentences (so a masked word is predictable from its context), some with Chinese characters
    the tiny base's vocabulary lacks."""
    rng = random.Random(seed)
    return [rng.choice(SENTENCES) for _ in range(n)]


def test_masker_follows_berts_recipe():
    rng = np.random.default_rng(0)
    special = np.asarray([0, 1, 2, 3], dtype=np.int64)  # e.g. [PAD] [CLS] [SEP] [MASK]
    masker = Masker(mask_id=3, special_ids=special, probability=0.15, replacements=np.arange(10, 20))
    ids = rng.integers(100, 200, size=(400, 64))
    ids[:, 0], ids[:, -1] = 1, 2
    attention = np.ones_like(ids)
    attention[:, 50:] = 0
    ids[:, 50:] = 0
    inputs, labels = masker.mask(ids, attention, rng)

    chosen = labels != IGNORE
    assert not chosen[:, 0].any() and not chosen[:, 50:].any(), "special and pad positions are never targets"
    assert (labels[chosen] == ids[chosen]).all()
    assert (inputs[~chosen] == ids[~chosen]).all(), "unchosen tokens are left alone"
    share = chosen[:, 1:50].mean()
    assert 0.13 < share < 0.17
    masked = (inputs[chosen] == 3).mean()
    swapped = np.isin(inputs[chosen], masker.replacements).mean()
    kept = (inputs[chosen] == ids[chosen]).mean()
    assert 0.77 < masked < 0.83 and 0.08 < swapped < 0.12 and 0.08 < kept < 0.12


def test_masker_needs_a_mask_token(tiny_base):
    tokenizer = plain_tokenizer((tiny_base / "tokenizer.json").read_text())
    masker = Masker.for_tokenizer(tokenizer, 0.15, [[1, 2, 40, 41], [41, 42]])
    assert masker.mask_id == tokenizer.token_to_id("[MASK]")
    assert set(masker.replacements) == {40, 41, 42} - set(masker.special_ids), "random swaps use the data's tokens"
    vocab_without_mask = json.loads((tiny_base / "tokenizer.json").read_text())
    vocab_without_mask["model"]["vocab"].pop("[MASK]")
    vocab_without_mask["added_tokens"] = [t for t in vocab_without_mask["added_tokens"] if t["content"] != "[MASK]"]
    with pytest.raises(InputError, match=r"\[MASK\]"):
        Masker.for_tokenizer(plain_tokenizer(json.dumps(vocab_without_mask)), 0.15, [])


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, tiny_base):
    out = tmp_path_factory.mktemp("adapt") / "encoder"
    config = AdaptConfig(
        model=str(tiny_base), epochs=10, batch_size=16, learning_rate=1e-2, max_length=64, extend_vocab=True, seed=3
    )
    report = adapt(_texts(160, 1), _texts(40, 2), config, out, progress=False, source="generated")
    return out, report


def test_adapt_learns_the_masked_tokens(adapted):
    _, report = adapted
    before, after = report["history"][0], report["history"][-1]
    assert after["mlm_loss"] < before["mlm_loss"] - 1.0, report["history"]
    assert after["mlm_accuracy"] > before["mlm_accuracy"] + 0.3
    assert before["masked_tokens"] == after["masked_tokens"] > 0, "dev masks are the same every evaluation"
    assert report["added_tokens"] > 0


def test_adapted_encoder_keeps_the_pooler_and_grows_the_vocabulary(adapted, tiny_base):
    out, report = adapted
    base, new = load_file(str(tiny_base / "model.safetensors")), load_file(str(out / "model.safetensors"))
    for key in ("pooler.dense.weight", "pooler.dense.bias"):
        assert np.array_equal(base[key].numpy(), new[key].numpy()), f"{key} must come from the base model"
    old_rows = base["embeddings.word_embeddings.weight"].shape[0]
    embeddings = new["embeddings.word_embeddings.weight"]
    assert embeddings.shape[0] == report["vocab_size"] == old_rows + report["added_tokens"]
    assert not np.allclose(
        base["encoder.layer.0.attention.self.query.weight"], new["encoder.layer.0.attention.self.query.weight"]
    )
    config = json.loads((out / "config.json").read_text())
    tokenizer = plain_tokenizer((out / "tokenizer.json").read_text())
    assert config["vocab_size"] == tokenizer.get_vocab_size(with_added_tokens=True)
    assert tokenizer.token_to_id("质") is not None
    assert len((out / "vocab.txt").read_text(encoding="utf-8").splitlines()) == config["vocab_size"]
    assert json.loads((out / ADAPT_META).read_text())["train_source"] == "generated"


def test_train_fine_tunes_the_adapted_encoder(adapted, tmp_path):
    from edgebert.data.text import load_file
    from edgebert.train.loop import train

    out, report = adapted
    rows = make_examples(60, 5)
    for i, row in enumerate(rows):
        row["text"] += CHINESE[i % len(CHINESE)]
    data = load_file(write_jsonl(tmp_path / "train.jsonl", rows))
    config = TrainConfig(model=str(out), max_length=64, epochs=1, batch_size=16, learning_rate=1e-3, pooling="cls")
    train(data, data, config, tmp_path / "ckpt", progress=False)
    tokenizer = plain_tokenizer((tmp_path / "ckpt" / "tokenizer.json").read_text())
    assert tokenizer.get_vocab_size(with_added_tokens=True) == report["vocab_size"], "no second extension"


def test_adapt_refuses_to_overwrite_before_loading_anything(adapted, tiny_base):
    out, _ = adapted
    with pytest.raises(ArtifactExistsError, match="--force"):
        adapt(["text"], ["text"], AdaptConfig(model=str(tiny_base)), out, progress=False)


def test_adapt_cli_holds_out_dev_texts_from_a_file(tmp_path, tiny_base, capsys):
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(_texts(60, 7)) + "\n", encoding="utf-8")
    out = tmp_path / "enc"
    code = main(
        ["adapt", "--data", str(data), "--model", str(tiny_base), "--out", str(out), "--epochs", "1", "--quiet"]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / ADAPT_META).read_text())
    assert (report["train_texts"], report["eval_texts"]) == (57, 3)
    assert "edgebert train --model" in capsys.readouterr().out


def test_adapt_config_validates():
    with pytest.raises(InputError, match="mask-probability"):
        AdaptConfig(mask_probability=1.5)
    with pytest.raises(InputError, match="max-length"):
        AdaptConfig(max_length=1000)


def test_export_refuses_an_adapted_encoder_with_the_next_step(adapted, tmp_path, capsys):
    out, _ = adapted
    code = main(["export", str(out), "--out", str(tmp_path / "artifact")])
    err = capsys.readouterr().err
    assert code != 0 and "edgebert train --model" in err


def test_batches_are_padded_to_a_length_block_within_the_limit():
    from types import SimpleNamespace

    from edgebert.train.adapt import _pad_length

    def batch(t):
        return SimpleNamespace(
            input_ids=np.full((2, t), 7),
            attention_mask=np.ones((2, t), dtype=np.int64),
            token_type_ids=np.zeros((2, t)),
        )

    padded = _pad_length(batch(5), 16, pad_id=0, limit=128)
    assert padded.input_ids.shape == (2, 16)
    assert (padded.input_ids[:, 5:] == 0).all() and (padded.attention_mask[:, 5:] == 0).all()
    assert (padded.input_ids[:, :5] == 7).all() and (padded.attention_mask[:, :5] == 1).all()
    assert _pad_length(batch(20), 16, pad_id=0, limit=24).input_ids.shape == (2, 24), "never beyond max_length"
    assert _pad_length(batch(32), 16, pad_id=0, limit=128).input_ids.shape == (2, 32)


def test_adapt_refuses_a_length_beyond_the_encoders_positions(tiny_base, tmp_path):
    with pytest.raises(InputError, match="128 positions"):
        adapt(["text"], ["text"], AdaptConfig(model=str(tiny_base), max_length=256), tmp_path / "x", progress=False)
