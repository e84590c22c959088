"""Chinese: vocabulary extension, and runtime tokenization == training tokenization on every zh_reviews dev text.

The reference is transformers' pure-Python BertTokenizer (BasicTokenizer + WordpieceTokenizer) reading the
extended vocab.txt: an implementation independent of the `tokenizers` library the runtime uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebert.data.load import load_dataset
from edgebert.modeling.pretrained import resolve_model
from edgebert.runtime.tokenization import TextEncoder
from edgebert.train.vocab import extend_vocabulary, unk_share

EDGE_CASES = [
    "质量很好，物流也快！！推荐～（五星）",  # full-width punctuation
    "iPhone15 Pro的电池续航只有8小时，比Android差",  # mixed Chinese / English / digits
    "太棒了😀👍，下次还来🙂",  # emoji
    "ＡＢＣ１２３　全角字母和数字",  # full-width Latin letters, digits and the ideographic space
    "“引号”《书名》【括号】、顿号；分号：冒号……省略号——破折号",
    "",
]


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    base = resolve_model("minilm-l6")
    train = load_dataset("zh_reviews:train")
    extension = extend_vocabulary(base / "tokenizer.json", train.texts)
    out = tmp_path_factory.mktemp("zh-tokenizer")
    (out / "tokenizer.json").write_text(extension.tokenizer_json, encoding="utf-8")
    (out / "vocab.txt").write_text("\n".join(extension.vocab) + "\n", encoding="utf-8")
    return out, extension


def test_extension_covers_chinese(extended):
    _, extension = extended
    assert extension.unk_share_before > 0.5  # MiniLM alone: most Chinese characters are [UNK]
    assert extension.unk_share_after < 0.005
    assert "好" in extension.vocab and "##好" not in extension.vocab  # CJK characters are always single words
    assert extension.vocab[:30522] == (resolve_model("minilm-l6") / "vocab.txt").read_text().split("\n")[:30522]


def test_runtime_ids_equal_reference_tokenizer_on_every_dev_text(extended):
    from transformers import BertTokenizer

    out, _ = extended
    reference = BertTokenizer(vocab_file=str(out / "vocab.txt"), do_lower_case=True)
    encoder = TextEncoder.from_file(out / "tokenizer.json", max_length=512)
    texts = load_dataset("zh_reviews:dev").texts + EDGE_CASES
    ours, _ = encoder.encode(texts)
    mismatches = []
    for text, ids in zip(texts, ours, strict=True):
        expected = reference(text, truncation=True, max_length=512)["input_ids"]
        if ids != expected:
            mismatches.append(text)
    assert not mismatches, f"{len(mismatches)} of {len(texts)} texts tokenize differently, e.g. {mismatches[:3]}"


def test_dev_set_is_covered_by_the_training_characters(extended):
    from tokenizers import Tokenizer

    out, _ = extended
    tokenizer = Tokenizer.from_file(str(Path(out) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    assert unk_share(tokenizer, load_dataset("zh_reviews:dev").texts) < 0.005
