"""Multi-label classification end to end on a tiny model: lists of labels in, binary cross-entropy, thresholds
chosen on dev, sigmoid at run time, micro/macro F1 and per-label INT8 drift, and the import of a Hugging Face
multi_label_classification directory."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from edgebert.cli import main

from .conftest import FILLER, NODE_EXAMPLE, TOPICS, Server, write_jsonl


def multi_label_examples(n: int, seed: int) -> list[dict]:
    """Texts mentioning zero, one or two topics; the labels are the topics whose words appear."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        chosen = sorted(rng.sample(list(TOPICS), i % 3))  # 0, 1 or 2 topics
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 12))]
        for topic in chosen:
            words += [rng.choice(TOPICS[topic]) for _ in range(rng.randint(2, 4))]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": chosen})
    return rows


@pytest.fixture(scope="module")
def multi_label_run(tmp_path_factory, tiny_base):
    d = tmp_path_factory.mktemp("multi")
    train, dev, test = (
        write_jsonl(d / f"{s}.jsonl", multi_label_examples(n, i))
        for i, (s, n) in enumerate([("train", 240), ("dev", 60), ("test", 60)])
    )
    checkpoint = d / "ckpt"
    args = ["train", "--data", str(train), "--eval", str(dev), "--model", str(tiny_base), "--multi-label"]
    # Mean pooling: the labels are which words occur, which a mean over tokens shows at once; through [CLS] a
    # 2-layer random model learnt it or not by its initial weights (dev micro F1 0.53 to 1.0 over 8 seeds).
    args += [
        "--pooling",
        "mean",
        "--out",
        str(checkpoint),
        "--epochs",
        "8",
        "--lr",
        "5e-3",
        "--max-length",
        "32",
        "--quiet",
    ]
    assert main(args) == 0
    artifact = d / "int8"
    args = ["export", str(checkpoint), "--out", str(artifact), "--int8", "--eval", str(dev), "--test", str(test)]
    assert main([*args, "--quiet"]) == 0
    return checkpoint, artifact, dev


def test_training_learns_labels_and_chooses_thresholds_on_dev(multi_label_run):
    from edgebert.modeling.checkpoint import read_checkpoint_meta

    checkpoint, _, _ = multi_label_run
    meta = read_checkpoint_meta(checkpoint)
    assert meta.task == "multi_label" and meta.labels == sorted(TOPICS)
    assert len(meta.thresholds) == 3 and all(0 < t < 1 for t in meta.thresholds)
    assert meta.dev_metrics["micro_f1"] > 0.9  # 1.0 over 8 base seeds; a model that learnt nothing scores ~0.4
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"


def test_runtime_gives_every_label_above_its_threshold(multi_label_run):
    from edgebert import Classifier

    _, artifact, _ = multi_label_run
    clf = Classifier.load(artifact)
    assert clf.multi_label and clf.activation == "sigmoid"
    texts = ["the goal in the match and the bank shares", "the and a with", "phone chip online"]
    logits = clf.predict_logits(texts)
    thresholds = np.asarray(clf.manifest.thresholds)
    for prediction, row in zip(clf.predict(texts), logits, strict=True):
        sig = 1 / (1 + np.exp(-row))
        expected = {clf.labels[k] for k in range(3) if sig[k] >= thresholds[k]}
        assert set(prediction.labels) == expected
        assert prediction.scores == pytest.approx(dict(zip(clf.labels, sig.tolist(), strict=True)), abs=1e-6)


def test_predict_prints_every_label_over_its_threshold(multi_label_run, capsys):
    from edgebert import Classifier

    _, artifact, _ = multi_label_run
    texts = ["the goal in the match and the bank shares", "the and a with"]
    expected = [p.labels for p in Classifier.load(artifact).predict(texts)]
    assert main(["predict", str(artifact), *texts]) == 0
    printed = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert printed == [",".join(labels) or "-" for labels in expected]
    assert main(["predict", str(artifact), "--json", *texts]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [tuple(r["labels"]) for r in rows] == expected


def test_export_reports_micro_f1_per_label_drift_and_intervals_on_dev_and_test(multi_label_run):
    from edgebert.core.artifact import read_manifest

    checkpoint, artifact, _ = multi_label_run
    manifest = read_manifest(artifact)
    e, t = manifest.evaluation, manifest.test_evaluation
    assert e.metric == t.metric == "micro_f1" and (e.n, t.n) == (60, 60)
    assert e.drop_ci95[0] <= e.drop_points <= e.drop_ci95[1] and t.score_ci95[0] <= t.score <= t.score_ci95[1]
    assert set(e.metrics["per_label"]) == set(TOPICS) == set(e.metrics["per_label_changes"])
    assert manifest.thresholds == pytest.approx(
        __import__("edgebert").modeling.checkpoint.read_checkpoint_meta(checkpoint).thresholds
    )


def test_single_label_training_refuses_lists_and_multi_label_refuses_single_labels(tiny_base, tmp_path, capsys):
    lists = write_jsonl(tmp_path / "lists.jsonl", multi_label_examples(30, 1))
    singles = write_jsonl(
        tmp_path / "singles.jsonl", [{"text": r["text"], "label": "x"} for r in multi_label_examples(30, 2)]
    )
    base = ["--model", str(tiny_base), "--out", str(tmp_path / "o"), "--epochs", "1", "--quiet"]
    assert main(["train", "--data", str(lists), *base]) == 2
    assert "--multi-label" in capsys.readouterr().err
    assert main(["train", "--data", str(singles), "--multi-label", *base]) == 2
    assert "one label per text" in capsys.readouterr().err


def test_hugging_face_multi_label_directory_exports_with_sigmoid_and_half_thresholds(tmp_path, tiny_base):
    transformers = pytest.importorskip("transformers")
    from edgebert import Classifier

    config = transformers.AutoConfig.from_pretrained(tiny_base)
    config.update(
        {
            "num_labels": 3,
            "id2label": {0: "a", 1: "b", 2: "c"},
            "label2id": {"a": 0, "b": 1, "c": 2},
            "problem_type": "multi_label_classification",
            "architectures": ["BertForSequenceClassification"],
        }
    )
    model = transformers.BertForSequenceClassification(config)
    hf = tmp_path / "hf"
    model.save_pretrained(hf)
    import shutil

    shutil.copyfile(tiny_base / "tokenizer.json", hf / "tokenizer.json")
    assert main(["export", str(hf), "--out", str(tmp_path / "a"), "--int8", "--quiet"]) == 0
    clf = Classifier.load(tmp_path / "a")
    assert clf.multi_label and clf.manifest.thresholds == [0.5, 0.5, 0.5]
    import torch
    from tokenizers import Tokenizer

    texts = ["the goal in the match"]
    ids = Tokenizer.from_file(str(hf / "tokenizer.json")).encode(texts[0]).ids
    with torch.no_grad():
        reference = torch.sigmoid(model.eval()(input_ids=torch.tensor([ids])).logits).numpy()[0]
    assert np.allclose(list(clf.predict(texts[0]).scores.values()), reference, atol=0.05)


def test_serve_and_score_give_every_label_above_its_threshold(multi_label_run, tmp_path):
    pytest.importorskip("uvicorn")
    from edgebert import Classifier

    _, artifact, dev = multi_label_run
    texts = [json.loads(line)["text"] for line in dev.read_text().splitlines()[:12]]
    expected = [list(p.labels) for p in Classifier.load(artifact).predict(texts)]
    server = Server(artifact, tmp_path)
    try:
        status, body = server.json("/v1/classify", {"inputs": texts})
    finally:
        server.stop()
    assert status == 200 and [r["labels"] for r in body["results"]] == expected
    out = tmp_path / "scored.jsonl"
    assert main(["score", str(artifact), "--input", str(dev), "--output", str(out), "--workers", "1", "--quiet"]) == 0
    scored = [json.loads(line) for line in out.read_text().splitlines()[:12]]
    assert [r["labels"] for r in scored] == expected


def test_tune_scores_a_multi_label_model_in_micro_f1(multi_label_run, tmp_path, capsys):
    from edgebert.core.artifact import read_manifest

    checkpoint, _, dev = multi_label_run
    args = ["export", str(checkpoint), "--int8", "--tune", "--eval", str(dev), "--out", str(tmp_path / "t")]
    args += ["--tune-engines", "dynamic", "--max-drop", "100", "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    manifest = read_manifest(tmp_path / "t")
    chosen = next(c for c in manifest.tuning.candidates if c.name == manifest.tuning.chosen)
    assert manifest.task == "multi_label" and manifest.thresholds is not None
    # the drop the tuner measured is the export's own micro-F1 drop against the same fp32 graph
    assert chosen.drop_points == pytest.approx(manifest.evaluation.drop_points, abs=1e-6)
    assert main([*args[:-1], "--agreement", str(dev), "--force"]) == 2
    assert "--agreement" in capsys.readouterr().err


def test_bench_scores_a_multi_label_model_in_micro_f1_as_its_export_did(multi_label_run, tmp_path):
    from edgebert.core.artifact import read_manifest

    checkpoint, artifact, dev = multi_label_run
    out = tmp_path / "bench"
    args = ["bench", str(artifact), "--reference", str(checkpoint), "--data", str(dev), "--out", str(out)]
    assert main([*args, "--shapes", "1x16", "--rounds", "1", "--seconds", "0.05", "--no-cold-start", "--quiet"]) == 0
    accuracy = json.loads((out / "report.json").read_text())["accuracy"]
    drift, evaluation = accuracy["drift"][artifact.name], read_manifest(artifact).evaluation
    assert accuracy["reference_metrics"]["metric"] == drift["metric"] == "micro_f1"
    # the artifact's micro F1 on dev at its thresholds, as the export measured it on the same texts
    assert drift["candidate_score"] == pytest.approx(evaluation.score, abs=1e-9)
    assert accuracy["reference_metrics"]["score"] == pytest.approx(evaluation.reference_score, abs=0.02)
    assert drift["score_ci95"][0] <= drift["candidate_score"] <= drift["score_ci95"][1]
    assert "micro f1" in (out / "report.md").read_text()


def test_a_multi_label_model_distils_into_a_student_with_its_own_thresholds(multi_label_run, tmp_path):
    from edgebert import Classifier
    from edgebert.modeling.checkpoint import read_checkpoint_meta

    checkpoint, _, dev = multi_label_run
    train = dev.parent / "train.jsonl"
    student = tmp_path / "student"
    args = [
        "distill",
        str(checkpoint),
        "--layers",
        "1",
        "--data",
        str(train),
        "--eval",
        str(dev),
        "--out",
        str(student),
    ]
    args += ["--unlabelled", str(dev), "--epochs", "4", "--lr", "5e-3", "--quiet"]
    assert main(args) == 0
    meta = read_checkpoint_meta(student)
    assert meta.task == "multi_label" and meta.labels == sorted(TOPICS)
    assert len(meta.thresholds) == 3 and all(0 < t < 1 for t in meta.thresholds)
    assert meta.dev_metrics["micro_f1"] > 0.8  # a student that learnt nothing scores ~0.4
    assert main(["export", str(student), "--out", str(tmp_path / "a"), "--int8", "--quiet"]) == 0
    texts = [json.loads(line)["text"] for line in dev.read_text().splitlines()[:12]]
    assert any(len(p.labels) != 1 for p in Classifier.load(tmp_path / "a").predict(texts))


def test_node_gives_every_label_above_its_threshold(multi_label_run):
    import subprocess

    from edgebert import Classifier

    from .conftest import npm_example

    node = npm_example(NODE_EXAMPLE, "onnxruntime-node")
    _, artifact, dev = multi_label_run
    texts = [json.loads(line)["text"] for line in dev.read_text().splitlines()[:12]]
    done = subprocess.run(["node", "edgebert.mjs", str(artifact), *texts], cwd=node, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    expected = Classifier.load(artifact).predict(texts)
    assert [sorted(r["labels"]) for r in rows] == [sorted(p.labels) for p in expected]
    assert any(len(p.labels) != 1 for p in expected)  # sigmoid and thresholds, not one argmax per text
    for row, prediction in zip(rows, expected, strict=True):
        assert row["scores"] == pytest.approx(prediction.scores, abs=1e-5)
