"""`edgebert distill`: student initialisation from the teacher's layers, the loss, and a student that trains
(falling loss), exports and runs like any checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgebert.cli import main
from edgebert.core.errors import InputError
from edgebert.data.text import LabelSet, load_file
from edgebert.data.tokens import IGNORE, UNLABELLED
from edgebert.tasks.multilabel import MultiLabelTask
from edgebert.tasks.sequence import SequenceTask
from edgebert.tasks.token import TokenTask
from edgebert.train.config import TrainConfig
from edgebert.train.distill import hidden_state_loss, kept_layers, student_from_teacher

LABELS = LabelSet(("a", "b", "c"))


def distillation_loss(student, teacher, targets, *, task=SequenceTask, **knobs):
    return task(LABELS).distillation_loss(torch, student, teacher, targets, **knobs)


def test_kept_layers_are_evenly_spaced_and_end_on_the_last():
    assert kept_layers(6, 3) == [1, 3, 5]
    assert kept_layers(6, 4) == [1, 2, 3, 5]
    assert kept_layers(2, 1) == [1]
    for bad in (0, 6, 7):
        with pytest.raises(InputError, match="--layers"):
            kept_layers(6, bad)


def test_student_copies_the_kept_layers_and_leaves_the_teacher_alone(tiny_checkpoint):
    from edgebert.modeling.models import load_checkpoint_model

    teacher = load_checkpoint_model(tiny_checkpoint)
    student, kept = student_from_teacher(teacher, 1)
    assert kept == [1] and student.config.num_hidden_layers == 1 and teacher.config.num_hidden_layers == 2
    assert len(student.bert.encoder.layer) == 1 and len(teacher.bert.encoder.layer) == 2
    for a, b in zip(
        student.bert.encoder.layer[0].parameters(), teacher.bert.encoder.layer[1].parameters(), strict=True
    ):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    ids = torch.tensor([[2, 10, 11, 3]])
    out = student(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))
    assert out.logits.shape == (1, teacher.config.num_labels)


def test_distillation_loss_is_the_hard_loss_when_student_equals_teacher_and_skips_unlabelled():
    logits = torch.randn(2, 5, 3, requires_grad=True)
    targets = torch.tensor([[0, 1, IGNORE, 2, IGNORE], [1, IGNORE, IGNORE, 0, 2]])
    same = distillation_loss(logits, logits.detach(), targets, task=TokenTask, temperature=2.0, alpha=0.5)
    hard = torch.nn.functional.cross_entropy(logits.reshape(-1, 3), targets.reshape(-1), ignore_index=IGNORE)
    assert same.item() == pytest.approx(0.5 * hard.item(), abs=1e-6)
    other = distillation_loss(logits, torch.randn(2, 5, 3), targets, task=TokenTask, temperature=2.0, alpha=1.0)
    other.backward()
    assert other.item() > 0 and logits.grad[0, 2].abs().sum() == 0  # an unlabelled position gets no gradient


def test_unlabelled_rows_learn_the_teacher_alone_and_a_batch_of_them_has_a_finite_loss():
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3)
    targets = torch.tensor([0, UNLABELLED, 2, UNLABELLED])
    mixed = distillation_loss(student, teacher, targets, temperature=2.0, alpha=0.5)
    labelled = torch.tensor([True, False, True, False])
    hard = torch.nn.functional.cross_entropy(student[labelled], targets[labelled])
    soft = distillation_loss(student, teacher, targets, temperature=2.0, alpha=1.0)  # every row's teacher term
    assert mixed.item() == pytest.approx(0.5 * soft.item() + 0.5 * hard.item(), rel=1e-5)
    only = distillation_loss(student, teacher, torch.full((4,), UNLABELLED), temperature=2.0, alpha=0.5)
    only.backward()
    assert torch.isfinite(only) and only.item() == pytest.approx(0.5 * soft.item(), rel=1e-5)
    assert (student.grad.abs().sum(dim=1) > 0).all()  # unlabelled rows still learn from the teacher


def test_a_multi_label_student_learns_each_labels_sigmoid_and_unlabelled_rows_only_from_the_teacher():
    torch.manual_seed(0)
    teacher = torch.randn(4, 3)
    targets = torch.tensor([[1.0, 0, 1], [UNLABELLED] * 3, [0, 0, 1], [UNLABELLED] * 3])
    student = teacher.clone().requires_grad_(True)
    soft_only = distillation_loss(student, teacher, targets, task=MultiLabelTask, temperature=2.0, alpha=1.0)
    soft_only.backward()
    assert student.grad.abs().max() < 1e-6  # matching the teacher's probabilities is the soft term's minimum
    student = torch.randn(4, 3, requires_grad=True)
    mixed = distillation_loss(student, teacher, targets, task=MultiLabelTask, temperature=2.0, alpha=0.5)
    labelled = targets[:, 0] != UNLABELLED
    hard = torch.nn.functional.binary_cross_entropy_with_logits(student[labelled], targets[labelled])
    soft = distillation_loss(student, teacher, targets, task=MultiLabelTask, temperature=2.0, alpha=1.0)
    assert mixed.item() == pytest.approx(0.5 * soft.item() + 0.5 * hard.item(), rel=1e-5)
    unlabelled = torch.full((4, 3), float(UNLABELLED))
    only = distillation_loss(student, teacher, unlabelled, task=MultiLabelTask, temperature=2.0, alpha=0.5)
    assert torch.isfinite(only) and only.item() == pytest.approx(0.5 * soft.item(), rel=1e-5)


def test_distill_learns_unlabelled_texts_in_windows_and_the_student_reads_long_texts_so(
    tiny_checkpoint, data_dir, tmp_path, capsys
):
    from edgebert import Classifier

    rows = [json.loads(line) for line in (data_dir / "train.jsonl").read_text().splitlines()]
    long_texts = [{"text": " ".join(r["text"] for r in rows[i : i + 6])} for i in range(0, 48, 6)]  # no labels
    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text("".join(json.dumps(r) + "\n" for r in long_texts), encoding="utf-8")
    out = tmp_path / "student"
    args = ["distill", str(tiny_checkpoint), "--layers", "1", "--data", str(data_dir / "train.jsonl")]
    args += ["--eval", str(data_dir / "dev.jsonl"), "--unlabelled", str(unlabelled), "--long-text", "chunk"]
    args += ["--out", str(out), "--epochs", "3", "--lr", "5e-3", "--hidden-weight", "1"]
    assert main(args) == 0, capsys.readouterr().err
    said = capsys.readouterr().err
    windows = int(said.split(" unlabelled rows")[0].rsplit(" ", 1)[1])
    assert windows > len(long_texts)  # each long text became several windows
    meta = json.loads((out / "edgebert_checkpoint.json").read_text())
    assert meta["train_config"]["distill_unlabelled"] == [str(unlabelled)]
    assert meta["train_config"]["long_text"] == "chunk"
    assert main(["export", str(out), "--out", str(tmp_path / "fp32"), "--quiet"]) == 0
    student = Classifier.load(tmp_path / "fp32")
    assert student.manifest.long_text.policy == "chunk"  # the policy it was distilled with is the default
    assert student.predict(long_texts[0]["text"]).windows > 1


def test_unlabelled_texts_need_a_teacher_and_a_text_classifier(tiny_token_checkpoint, token_data_dir, tmp_path, capsys):
    with pytest.raises(InputError, match="edgebert distill"):
        TrainConfig(distill_unlabelled=("more.jsonl",))
    args = ["distill", str(tiny_token_checkpoint), "--layers", "1", "--data", str(token_data_dir / "train.jsonl")]
    args += ["--eval", str(token_data_dir / "dev.jsonl"), "--unlabelled", str(token_data_dir / "dev.jsonl")]
    args += ["--out", str(tmp_path / "s"), "--quiet"]
    assert main(args) == 2
    assert "needs labels" in capsys.readouterr().err


def test_distilled_student_trains_exports_and_runs(tiny_checkpoint, data_dir, tmp_path, capsys):
    from edgebert import Classifier

    out = tmp_path / "student"
    args = ["distill", str(tiny_checkpoint), "--layers", "1", "--data", str(data_dir / "train.jsonl")]
    args += ["--eval", str(data_dir / "dev.jsonl"), "--out", str(out), "--epochs", "4", "--lr", "5e-3", "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    assert "1-layer student" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 1
    assert (out / "tokenizer.json").read_text() == (tiny_checkpoint / "tokenizer.json").read_text()
    losses = json.loads((out / "metrics.json").read_text())["losses"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), "the distillation loss did not fall"
    assert main(["export", str(out), "--int8", "--out", str(tmp_path / "int8"), "--quiet"]) == 0
    manifest = json.loads((tmp_path / "int8" / "edgebert.json").read_text())
    assert manifest["optimization"]["fusions"].get("Attention") == 1
    assert Classifier.load(tmp_path / "int8").predict("goal for the team").label


def test_hidden_state_loss_compares_each_student_layer_with_its_teacher_layer_on_real_tokens_only():
    torch.manual_seed(0)
    teacher = tuple(torch.randn(2, 4, 8) for _ in range(7))  # embeddings + 6 layers
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    student = (teacher[0], teacher[2], teacher[4], teacher[6])  # a 3-layer student equal to layers 2, 4, 6
    assert hidden_state_loss(student, teacher, [1, 3, 5], mask).item() == 0.0
    shifted = tuple(h + 0.5 for h in student)
    assert hidden_state_loss(shifted, teacher, [1, 3, 5], mask).item() == pytest.approx(0.25)
    padded_noise = tuple(h.clone() for h in shifted)
    for h in padded_noise:
        h[mask == 0] = 1e6  # padding positions are never compared
    assert hidden_state_loss(padded_noise, teacher, [1, 3, 5], mask).item() == pytest.approx(0.25)


def test_token_teacher_distils_with_hidden_state_matching_and_exports(
    tiny_token_checkpoint, token_data_dir, tmp_path, capsys
):
    from edgebert import TokenClassifier

    out = tmp_path / "student"
    args = ["distill", str(tiny_token_checkpoint), "--layers", "1", "--hidden-weight", "1.0"]
    args += ["--data", str(token_data_dir / "train.jsonl"), "--eval", str(token_data_dir / "dev.jsonl")]
    args += ["--out", str(out), "--epochs", "4", "--lr", "5e-3", "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    assert "1-layer student" in capsys.readouterr().out
    losses = json.loads((out / "metrics.json").read_text())["losses"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), "the distillation loss did not fall"
    meta = json.loads((out / "edgebert_checkpoint.json").read_text())
    assert meta["task"] == "token" and meta["train_config"]["distill_hidden_weight"] == 1.0
    assert main(["export", str(out), "--int8", "--out", str(tmp_path / "int8"), "--quiet"]) == 0
    words = TokenClassifier.load(tmp_path / "int8").predict("goal for the team")
    assert [w.word for w in words] == ["goal", "for", "the", "team"]


@pytest.mark.parametrize("bad", ["-1", "nan", "101"])
def test_distill_refuses_a_bad_hidden_weight(tiny_checkpoint, data_dir, tmp_path, capsys, bad):
    args = ["distill", str(tiny_checkpoint), "--layers", "1", "--hidden-weight", bad]
    args += ["--data", str(data_dir / "train.jsonl"), "--out", str(tmp_path / "s")]
    assert main(args) == 2
    assert "--hidden-weight" in capsys.readouterr().err


def test_distill_refuses_a_non_checkpoint_teacher(tmp_path, data_dir, capsys):
    args = [
        "distill",
        str(tmp_path),
        "--layers",
        "1",
        "--data",
        str(data_dir / "train.jsonl"),
        "--out",
        str(tmp_path / "s"),
    ]
    assert main(args) == 2
    assert "neither an edgebert checkpoint" in capsys.readouterr().err


def test_an_ensemble_of_artifacts_is_distilled_into_a_fresh_model(
    tiny_base, tiny_int8_artifact, tiny_artifact, data_dir, tmp_path
):
    from edgebert.train.distill import ensemble_targets

    train_data = load_file(data_dir / "train.jsonl")
    labels = sorted(set(train_data.labels))
    targets = ensemble_targets((str(tiny_artifact), str(tiny_int8_artifact)), labels, train_data.texts, None, print)
    assert targets.shape == (len(train_data), len(labels))
    assert np.allclose(np.exp(targets).sum(1), 1, atol=0.05)  # a geometric mean of two close distributions
    out = tmp_path / "student"
    code = main(
        ["train", "--data", str(data_dir / "train.jsonl"), "--eval", str(data_dir / "dev.jsonl"), "--model",
         str(tiny_base), "--out", str(out), "--epochs", "1", "--lr", "5e-3", "--max-length", "48", "--quiet",
         "--ensemble", str(tiny_artifact), "--ensemble", str(tiny_int8_artifact)]
    )  # fmt: skip
    assert code == 0
    assert json.loads((out / "edgebert_checkpoint.json").read_text())["train_config"]["ensemble"] == [
        str(tiny_artifact),
        str(tiny_int8_artifact),
    ]


def test_ensemble_is_refused_where_it_does_not_apply():
    with pytest.raises(InputError, match="single-label sequence"):
        TrainConfig(ensemble=("a",), task="token")
