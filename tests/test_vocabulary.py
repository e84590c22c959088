"""export --trim-vocab (modeling/vocabulary.py): the trimmed tokenizer gives the same ids (renumbered) as the full one
on the texts it covers, for WordPiece and SentencePiece/Unigram; the artifact answers as the untrimmed one does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from edgebert import Classifier, TokenClassifier
from edgebert.core.artifact import read_manifest
from edgebert.core.errors import InputError
from edgebert.data.text import load_file
from edgebert.export.config import ExportConfig
from edgebert.export.pipeline import export_artifact
from edgebert.export.recipes import quantization_from_recipe
from edgebert.modeling.vocabulary import plan_trim, trim_tokenizer

from .conftest import make_examples, save_tiny_bert, write_jsonl

UNCOVERED = ["zebra quokka xylophone", "完全没见过的句子", "mixed 中文 and emoji 🙂", "ＦＵＬＬ－ＷＩＤＴＨ！"]


@pytest.fixture(scope="module")
def tiny_unigram_base(tmp_path_factory) -> Path:
    """A 2-layer BERT with a SentencePiece/Unigram tokenizer (<s> … </s>, <pad>), like multilingual-e5-small."""
    from tokenizers import SentencePieceUnigramTokenizer
    from tokenizers.processors import TemplateProcessing

    out = tmp_path_factory.mktemp("unigram") / "base"
    texts = [r["text"] for r in make_examples(200, seed=5)] + ["中文混合的句子，质量很好。", "物流也快，推荐！"]
    tokenizer = SentencePieceUnigramTokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tokenizer.train_from_iterator(
        texts, vocab_size=200, special_tokens=specials, unk_token="<unk>", show_progress=False
    )
    tokenizer.post_processor = TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    save_tiny_bert(out, tokenizer.get_vocab_size(), pad_token_id=1)
    tokenizer.save(str(out / "tokenizer.json"))
    return out


@pytest.fixture(scope="module")
def unigram_checkpoint(tmp_path_factory, tiny_unigram_base, data_dir) -> Path:
    from edgebert.train.config import TrainConfig
    from edgebert.train.loop import train

    out = tmp_path_factory.mktemp("unigram-ckpt") / "ckpt"
    config = TrainConfig(
        model=str(tiny_unigram_base), pooling="mean", max_length=48, epochs=2, batch_size=16, learning_rate=5e-3
    )
    train(load_file(data_dir / "train.jsonl"), load_file(data_dir / "dev.jsonl"), config, out, progress=False)
    return out


def _covered_ids_match(tokenizer_json: str, covered: list[str]) -> tuple[int, int]:
    trim = plan_trim(tokenizer_json, covered)
    full, cut = Tokenizer.from_str(tokenizer_json), Tokenizer.from_str(trim_tokenizer(tokenizer_json, trim))
    same = sum(
        trim.new_ids(a.ids) == b.ids for a, b in zip(full.encode_batch(covered), cut.encode_batch(covered), strict=True)
    )
    return same, cut.get_vocab_size()


@pytest.mark.parametrize("base", ["tiny_base", "tiny_unigram_base"])
def test_trimmed_tokenizer_gives_the_same_ids_on_covered_texts(request, base, data_dir):
    tokenizer_json = (request.getfixturevalue(base) / "tokenizer.json").read_text(encoding="utf-8")
    covered = [json.loads(line)["text"] for line in (data_dir / "train.jsonl").read_text().splitlines()][:40]
    same, size = _covered_ids_match(tokenizer_json, covered)
    assert same == len(covered)
    assert size < Tokenizer.from_str(tokenizer_json).get_vocab_size()  # something was cut
    trim = plan_trim(tokenizer_json, covered)
    cut = Tokenizer.from_str(trim_tokenizer(tokenizer_json, trim))
    for text in UNCOVERED:  # text it never saw still tokenizes, into kept pieces
        assert all(0 <= i < cut.get_vocab_size() for i in cut.encode(text).ids)


def test_trimmed_tokenizer_keeps_special_ids_consistent(tiny_unigram_base):
    tokenizer_json = (tiny_unigram_base / "tokenizer.json").read_text(encoding="utf-8")
    trim = plan_trim(tokenizer_json, ["the market"])
    cut = Tokenizer.from_str(trim_tokenizer(tokenizer_json, trim))
    encoding = cut.encode("the market")
    assert encoding.tokens[0] == "<s>" and encoding.tokens[-1] == "</s>"
    assert cut.token_to_id("<pad>") is not None and cut.token_to_id("<unk>") is not None
    assert [cut.id_to_token(i) for i in encoding.ids] == encoding.tokens


def test_a_bpe_tokenizer_is_refused_with_the_fix():
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers.models import BPE

    with pytest.raises(InputError, match="without --trim-vocab"):
        plan_trim(RawTokenizer(BPE()).to_str(), ["a"])


def test_trim_keep_needs_trim_vocab():
    with pytest.raises(InputError, match="add --trim-vocab"):
        ExportConfig(trim_keep_scripts=("cjk",))
    with pytest.raises(InputError, match="--trim-keep knows"):
        ExportConfig(trim_vocabulary=True, trim_keep_scripts=("klingon",))


@pytest.mark.parametrize("checkpoint", ["tiny_checkpoint", "unigram_checkpoint"])
def test_trimmed_artifact_answers_as_the_untrimmed_one(request, tmp_path, checkpoint, data_dir):
    checkpoint = request.getfixturevalue(checkpoint)
    train, dev = load_file(data_dir / "train.jsonl"), load_file(data_dir / "dev.jsonl")
    full = export_artifact(checkpoint, tmp_path / "full", ExportConfig(), eval_data=dev, progress=False)
    config = ExportConfig(trim_vocabulary=True, trim_keep_scripts=("cjk",))
    trimmed = export_artifact(
        checkpoint, tmp_path / "trim", config, eval_data=dev, coverage_data=[train], progress=False
    )
    record = read_manifest(trimmed.out).optimization.vocabulary
    assert record.kept < record.original_size and record.coverage == [train.source, dev.source]
    assert record.checked_rows == min(256, len(train)) and record.max_abs_logit_diff <= 1e-3
    assert Tokenizer.from_file(str(trimmed.out / "tokenizer.json")).get_vocab_size() == record.kept
    assert trimmed.size_bytes < full.size_bytes
    a, b = Classifier.load(full.out), Classifier.load(trimmed.out)  # golden replay passes on both
    np.testing.assert_allclose(a.predict_proba(dev.texts), b.predict_proba(dev.texts), atol=1e-5)
    assert read_manifest(trimmed.out).evaluation.score == read_manifest(full.out).evaluation.score
    b.predict(UNCOVERED)  # never-seen text still classifies


def test_trimmed_int8_artifact_and_its_summary(tmp_path, tiny_checkpoint, data_dir):
    from edgebert.export.summary import format_export_summary

    train, dev = load_file(data_dir / "train.jsonl"), load_file(data_dir / "dev.jsonl")
    config = ExportConfig(quantization=quantization_from_recipe("avx2"), trim_vocabulary=True)
    report = export_artifact(tiny_checkpoint, tmp_path / "int8", config, eval_data=dev, coverage_data=[train])
    assert "vocabulary" in format_export_summary(report) and "pieces" in format_export_summary(report)
    Classifier.load(report.out)


def test_token_model_trims_from_word_lists(tmp_path, tiny_token_checkpoint, token_data_dir):
    from edgebert.data.tokens import load_token_file

    train = load_token_file(token_data_dir / "train.jsonl")
    dev = load_token_file(token_data_dir / "dev.jsonl")
    config = ExportConfig(trim_vocabulary=True)
    report = export_artifact(tiny_token_checkpoint, tmp_path / "tok", config, eval_data=dev, coverage_data=[train])
    assert report.manifest.optimization.vocabulary.kept < report.manifest.optimization.vocabulary.original_size
    TokenClassifier.load(report.out).predict(" ".join(dev.words[0]))


def test_cli_trim_vocab(tmp_path, tiny_checkpoint, data_dir):
    from edgebert.cli import main

    write_jsonl(tmp_path / "more.jsonl", make_examples(10, seed=9))
    args = ["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--trim-vocab", str(data_dir / "train.jsonl")]
    args += ["--trim-vocab", str(tmp_path / "more.jsonl"), "--quiet"]
    assert main(args) == 0
    record = read_manifest(tmp_path / "a").optimization.vocabulary
    assert record.coverage == [str(data_dir / "train.jsonl"), str(tmp_path / "more.jsonl")]
    assert main(["export", str(tiny_checkpoint), "--out", str(tmp_path / "b"), "--trim-keep", "cjk"]) == 2


@pytest.mark.parametrize("base", ["tiny_base", "tiny_unigram_base"])
def test_train_trims_the_vocabulary_before_fine_tuning_and_trains_the_rows_it_keeps(request, base, data_dir, tmp_path):
    # e5's 250k-row table is too slow to train; cut to the data's pieces first, then train every row that is left
    from edgebert.train.config import TrainConfig
    from edgebert.train.loop import train

    base_dir = request.getfixturevalue(base)
    train_data, dev = load_file(data_dir / "train.jsonl"), load_file(data_dir / "dev.jsonl")
    config = TrainConfig(
        model=str(base_dir), max_length=48, epochs=1, batch_size=16, learning_rate=5e-3, trim_vocab=True, pooling="mean"
    )
    out = tmp_path / "ckpt"
    train(train_data, dev, config, out, progress=False)
    full = json.loads((base_dir / "tokenizer.json").read_text())
    trimmed = (out / "tokenizer.json").read_text()
    kept = Tokenizer.from_str(trimmed).get_vocab_size(with_added_tokens=True)
    assert kept < Tokenizer.from_str(json.dumps(full)).get_vocab_size(with_added_tokens=True)
    assert json.loads((out / "config.json").read_text())["vocab_size"] == kept
    texts = train_data.texts[:20]  # covered texts keep their segmentation, piece for piece
    full_pieces = [e.tokens for e in Tokenizer.from_str(json.dumps(full)).encode_batch(texts)]
    assert [e.tokens for e in Tokenizer.from_str(trimmed).encode_batch(texts)] == full_pieces
    report = export_artifact(out, tmp_path / "a", ExportConfig(), eval_data=dev, progress=False)  # parity-checked
    assert report.manifest.evaluation is not None


def test_train_trim_options_that_contradict_are_refused():
    from edgebert.train.config import TrainConfig

    with pytest.raises(InputError, match="add --trim-vocab"):
        TrainConfig(trim_keep=("cjk",))
    with pytest.raises(InputError, match="does not combine with --extend-vocab"):
        TrainConfig(trim_vocab=True, extend_vocab=True)
