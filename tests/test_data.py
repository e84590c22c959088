"""Data loading: formats, columns, int labels, and the bundled datasets rebuilt from their packages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebert.core.errors import InputError
from edgebert.data.load import load_dataset
from edgebert.data.text import LabelSet, load_file

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_jsonl_csv_tsv_give_the_same_dataset(tmp_path):
    rows = [{"body": 'good, really "good"', "y": 1}, {"body": "bad", "y": 0}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "d.csv").write_text('body,y\n"good, really ""good""",1\nbad,0\n')
    (tmp_path / "d.tsv").write_text('body\ty\n"good, really ""good"""\t1\nbad\t0\n')
    loaded = [load_file(tmp_path / f"d.{ext}", text_column="body", label_column="y") for ext in ("jsonl", "csv", "tsv")]
    for dataset in loaded:
        assert dataset.texts == ['good, really "good"', "bad"]
        assert dataset.labels == ["1", "0"]  # int labels become label names


def test_plain_text_file_is_unlabelled(tmp_path):
    (tmp_path / "t.txt").write_text("one\n\n two \n")
    dataset = load_file(tmp_path / "t.txt")
    assert dataset.texts == ["one", "two"] and dataset.labels is None


@pytest.mark.parametrize(
    "content, suffix, message",
    [
        ('{"text": "a", "label": "x"}\nnot json\n', ".jsonl", r"d\.jsonl:2 is not valid JSON"),
        ('{"text": 5, "label": "x"}\n', ".jsonl", "must be a string"),
        ('{"text": "a", "label": ""}\n', ".jsonl", "empty label"),
        ("", ".jsonl", "holds no rows"),
        ("a,b\n", ".xlsx", "Unsupported data file type"),
    ],
)
def test_malformed_files_are_refused_with_location(tmp_path, content, suffix, message):
    path = tmp_path / f"d{suffix}"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_file(path)


def test_label_set_is_sorted_and_refuses_unknown_labels():
    labels = LabelSet.from_labels(["b", "a", "b"])
    assert labels.names == ("a", "b")
    assert labels.encode(["b", "a"]) == [1, 0]
    with pytest.raises(InputError, match=r"\['c'\]"):
        labels.encode(["c"], "dev.jsonl")
    with pytest.raises(InputError, match="at least 2"):
        LabelSet.from_labels(["a", "a"])


def _pairs(dataset) -> set:
    return set(zip(dataset.texts, dataset.labels, strict=True))


@pytest.mark.parametrize("split, size", [("train", 1154), ("dev", 323), ("test", 323)])
def test_bbc_news_rebuilt_from_package_matches_published_split(split, size):
    dataset = load_dataset(f"bbc_news:{split}")
    assert len(dataset) == size
    assert set(dataset.labels) == {"business", "entertainment", "politics", "sports", "tech"}
    published = {"train": "train", "test": "train", "dev": "dev"}[split]  # test is carved from published train
    shared = SHARED / "bbc_news" / f"{published}.jsonl"
    if not shared.exists():
        pytest.skip("../shared is not beside this checkout")
    rows = [json.loads(line) for line in shared.read_text().splitlines()]
    assert _pairs(dataset) <= {(r["text"], r["label"]) for r in rows}


def test_carved_test_splits_are_disjoint_from_train_and_dev():
    for name in ("bbc_news", "zh_reviews"):
        train, dev, test = (set(load_dataset(f"{name}:{split}").texts) for split in ("train", "dev", "test"))
        assert test and not test & train and not test & dev


def test_zh_reviews_bundled_copy_matches_published_split():
    dataset = load_dataset("zh_reviews", split="dev")
    assert len(dataset) == 1736 and set(dataset.labels) == {"positive", "negative"}
    shared = SHARED / "zh_reviews" / "dev.jsonl"
    if shared.exists():
        rows = [json.loads(line) for line in shared.read_text().splitlines()]
        assert dataset.texts == [r["text"] for r in rows]


def test_unknown_bundled_split():
    with pytest.raises(InputError, match="splits train, dev, test"):
        load_dataset("bbc_news:validation")
