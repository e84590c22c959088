"""Training features on tiny models: pooling, pairs, resume after Ctrl-C, accumulation, class weights,
--max-length auto, stratified split, reports, and a 2-process data-parallel run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgebert.core.errors import ArtifactExistsError, InputError
from edgebert.data.text import load_file, stratified_split
from edgebert.train.config import TrainConfig
from edgebert.train.loop import train

from .conftest import make_examples, write_jsonl


@pytest.fixture(scope="module")
def tiny_base_with_dropout(tmp_path_factory, tiny_base) -> Path:
    """Dropout on: resume must restore the RNG to reproduce the uninterrupted run exactly."""
    out = tmp_path_factory.mktemp("tiny-dropout") / "base"
    shutil.copytree(tiny_base, out)
    config = json.loads((out / "config.json").read_text())
    config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    (out / "config.json").write_text(json.dumps(config))
    return out


def _config(base: Path, **changes) -> TrainConfig:
    # fp32: bf16 kernels (AMX) may pick paths by buffer alignment, so bf16 runs are not bit-reproducible
    values = dict(model=str(base), max_length=48, epochs=2, batch_size=16, learning_rate=5e-3, warmup_ratio=0.0)
    values["precision"] = "fp32"
    return TrainConfig(**{**values, **changes})


def _weights(checkpoint: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file as load_tensors

    return load_tensors(str(checkpoint / "model.safetensors"))


def _interrupt_a_real_run(tmp_path, base, data_dir, signal_name: str):
    """A real `edgebert train` process that gets a real signal in its 4th optimizer step (mid epoch 2: 3 steps
    per epoch), as from Ctrl-C in a terminal (SIGINT) or `kill`/docker stop (SIGTERM)."""
    script = tmp_path / "interrupted.py"
    script.write_text(
        "import os, signal, sys, torch\n"
        "from edgebert.cli import main\n"
        "real, calls = torch.nn.utils.clip_grad_norm_, []\n"
        "def clip(*a, **k):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 4:\n"
        f"        os.kill(os.getpid(), signal.{signal_name})\n"
        "    return real(*a, **k)\n"
        "torch.nn.utils.clip_grad_norm_ = clip\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["train", "--data", str(data_dir / "train.jsonl"), "--eval", str(data_dir / "dev.jsonl")]
    args += ["--model", str(base), "--out", str(tmp_path / "resumed"), "--max-length", "48"]
    args += ["--epochs", "2", "--batch-size", "16", "--lr", "5e-3", "--warmup-ratio", "0", "--grad-accum", "2"]
    args += ["--precision", "fp32"]  # bf16 kernels (AMX) may pick paths by buffer alignment: not bit-reproducible
    return subprocess.run([sys.executable, str(script), *args, "--quiet"], capture_output=True, text=True, timeout=300)


def test_sigterm_saves_the_epoch_in_progress_like_ctrl_c(tmp_path, tiny_base, data_dir):
    result = _interrupt_a_real_run(tmp_path, tiny_base, data_dir, "SIGTERM")
    assert result.returncode == 130, result.stderr[-2000:]
    assert "--resume" in result.stderr and "step 1/" in result.stderr  # stopped mid epoch 2, not lost
    assert (tmp_path / ".resumed.partial" / "state.pt").is_file() and not (tmp_path / "resumed").exists()


def test_ctrl_c_leaves_a_resumable_state_and_resume_matches_an_uninterrupted_run(
    tmp_path, tiny_base_with_dropout, data_dir
):
    train_data, dev = load_file(data_dir / "train.jsonl"), load_file(data_dir / "dev.jsonl")
    config = _config(tiny_base_with_dropout, grad_accum=2)
    train(train_data, dev, config, tmp_path / "straight", progress=False)

    result = _interrupt_a_real_run(tmp_path, tiny_base_with_dropout, data_dir, "SIGINT")
    assert result.returncode == 130, result.stderr[-2000:]
    assert "--resume" in result.stderr
    assert not (tmp_path / "resumed").exists(), "an interrupted run must not leave a half-written checkpoint"
    assert (tmp_path / ".resumed.partial" / "state.pt").is_file()

    with pytest.raises(ArtifactExistsError, match="--resume to continue it"):  # a restart would lose the state
        train(train_data, dev, config, tmp_path / "resumed", progress=False)
    with pytest.raises(InputError, match="settings of the interrupted run"):
        train(train_data, dev, _config(tiny_base_with_dropout, grad_accum=1), tmp_path / "resumed", resume=True)
    train(train_data, dev, config, tmp_path / "resumed", resume=True, progress=False)

    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    for name in straight:
        np.testing.assert_array_equal(straight[name], resumed[name], err_msg=name)
    history = [json.loads((tmp_path / d / "metrics.json").read_text())["history"] for d in ("straight", "resumed")]
    assert history[0] == history[1]
    assert not (tmp_path / ".resumed.partial").exists()


def test_resume_without_state_is_refused(tmp_path, tiny_base, data_dir):
    with pytest.raises(InputError, match="Nothing to resume"):
        train(
            load_file(data_dir / "train.jsonl"),
            load_file(data_dir / "dev.jsonl"),
            _config(tiny_base),
            tmp_path / "never",
            resume=True,
            progress=False,
        )


def test_resume_refuses_a_planted_pickle_instead_of_running_it(tmp_path, tiny_base, data_dir):
    import torch

    class Payload:  # unpickling this with weights_only=False would run os.system
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    partial = tmp_path / ".victim.partial"
    partial.mkdir()
    torch.save({"model": Payload()}, partial / "state.pt")
    with pytest.raises(InputError, match="not a training state this edgebert wrote"):
        train(
            load_file(data_dir / "train.jsonl"),
            load_file(data_dir / "dev.jsonl"),
            _config(tiny_base),
            tmp_path / "victim",
            resume=True,
            progress=False,
        )
    assert not (tmp_path / "pwned").exists()


def test_mean_pooling_trains_exports_fused_and_quantizes(tmp_path, tiny_base, data_dir):
    from edgebert.export.config import ExportConfig
    from edgebert.export.pipeline import export_artifact
    from edgebert.export.recipes import quantization_from_recipe
    from edgebert.runtime import Classifier

    dev = load_file(data_dir / "dev.jsonl")
    checkpoint = tmp_path / "mean"
    best = train(
        load_file(data_dir / "train.jsonl"),
        dev,
        _config(tiny_base, pooling="mean", epochs=4),
        checkpoint,
        progress=False,
    )
    assert best["accuracy"] > 0.6  # 3 balanced classes: chance is 0.33
    assert json.loads((checkpoint / "edgebert_checkpoint.json").read_text())["pooling"] == "mean"
    report = export_artifact(
        checkpoint,
        tmp_path / "art",
        ExportConfig(quantization=quantization_from_recipe("avx2")),
        eval_data=dev,
        progress=False,
    )  # raises unless attention fused on every layer and ONNX matches torch
    assert report.manifest.optimization.fusions["Attention"] == 2
    assert report.manifest.source.pooling == "mean"
    assert report.manifest.evaluation.drift.agreement >= 0.9
    Classifier.load(tmp_path / "art").predict("the match ended with a goal")


def test_mean_pooling_ignores_padding(tiny_base):
    import torch

    from edgebert.modeling.models import new_model

    model = new_model(tiny_base, "sequence", "mean", ["a", "b"]).eval()
    ids = torch.tensor([[2, 40, 41, 3]])
    one = model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids)).logits
    padded = torch.tensor([[2, 40, 41, 3, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0]])
    two = model(input_ids=padded, attention_mask=mask, token_type_ids=torch.zeros_like(padded)).logits
    torch.testing.assert_close(one, two, rtol=1e-5, atol=1e-5)


def test_sentence_pairs_use_segment_ids_end_to_end(tmp_path, tiny_base, tiny_artifact):
    rows = make_examples(60, seed=7)
    pairs = []
    for i, row in enumerate(rows[:-3]):
        other = rows[i + 3] if i % 2 else rows[i + 1]  # same topic 3 rows on, another topic 1 row on
        label = "same" if other["label"] == row["label"] else "different"
        pairs.append({"text": row["text"], "text_pair": other["text"], "label": label})
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    data = load_file(tmp_path / "pairs.jsonl")
    assert data.pairs is not None and len(data.pairs) == 57
    from edgebert.runtime.tokenization import TextEncoder

    encoder = TextEncoder.from_file(tiny_base / "tokenizer.json", 64)
    _, types = encoder.encode(data.texts[:1], data.pairs[:1])
    assert 1 in types[0], "the second text must get token type 1"
    train(data, data, _config(tiny_base, epochs=1), tmp_path / "pair-ckpt", progress=False)
    meta = json.loads((tmp_path / "pair-ckpt" / "edgebert_checkpoint.json").read_text())
    assert sorted(meta["labels"]) == ["different", "same"]

    from edgebert.runtime import Classifier

    clf = Classifier.load(tiny_artifact)
    with_pair = clf.predict_logits(["the match"], ["a goal"])
    alone = clf.predict_logits(["the match"])
    assert not np.allclose(with_pair, alone)
    with pytest.raises(ValueError, match="pairs"):
        clf.predict_logits(["a", "b"], ["c"])


def test_class_weights_auto_and_max_length_auto(tmp_path, tiny_base, data_dir, capsys):
    rows = make_examples(90, seed=5)
    skewed = [r for r in rows if r["label"] == "sports"] + [r for r in rows if r["label"] != "sports"][:12]
    write_jsonl(tmp_path / "skewed.jsonl", skewed)
    config = _config(tiny_base, epochs=1, class_weights="auto", max_length="auto")
    train(load_file(tmp_path / "skewed.jsonl"), load_file(data_dir / "dev.jsonl"), config, tmp_path / "c")
    err = capsys.readouterr().err
    assert "class weights: business" in err and "sports 0.4" in err  # 30 sports of 42: weight 42/(3*30)=0.47
    meta = json.loads((tmp_path / "c" / "edgebert_checkpoint.json").read_text())
    assert meta["max_length"] % 8 == 0 and 8 <= meta["max_length"] <= 64
    assert f"-> {meta['max_length']}" in err and "truncated at" in err


def test_stratified_split_keeps_every_label(data_dir):
    data = load_file(data_dir / "train.jsonl")
    train_part, dev_part = stratified_split(data, 0.1, seed=1)
    assert len(train_part) + len(dev_part) == len(data)
    assert set(dev_part.labels) == set(data.labels)
    assert not set(train_part.texts) & set(dev_part.texts) or len(set(data.texts)) < len(data.texts)
    assert stratified_split(data, 0.1, seed=1)[1].texts == dev_part.texts  # deterministic


def test_training_report_files(tiny_checkpoint):
    report = json.loads((tiny_checkpoint / "metrics.json").read_text())
    best = report["best"]
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= best.keys()
    assert sum(map(sum, best["confusion_matrix"])) == best["n"]
    assert len(report["losses"]) == report["history"][-1]["step"]
    assert (tiny_checkpoint / "training_curve.png").stat().st_size > 1000
    assert (tiny_checkpoint / "confusion_matrix.png").stat().st_size > 1000


def test_early_stopping_stops(tmp_path, tiny_base, data_dir):
    # lr so small nothing improves after epoch 1 at the 4th decimal: patience 1 stops at epoch 2
    config = _config(tiny_base, epochs=5, patience=1, learning_rate=1e-9)
    train(
        load_file(data_dir / "train.jsonl"), load_file(data_dir / "dev.jsonl"), config, tmp_path / "e", progress=False
    )
    history = json.loads((tmp_path / "e" / "metrics.json").read_text())["history"]
    assert len(history) == 2


def test_two_process_data_parallel_run(tmp_path, tiny_base, data_dir):
    """torchrun starts 2 gloo workers; each trains on half the batches; rank 0 evaluates and saves."""
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        "-m",
        "edgebert.cli",
        "train",
        "--data",
        str(data_dir / "train.jsonl"),
        "--eval",
        str(data_dir / "dev.jsonl"),
        "--model",
        str(tiny_base),
        "--out",
        str(out),
        "--max-length",
        "48",
        "--epochs",
        "5",
        "--lr",
        "5e-3",
        "--batch-size",
        "8",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "metrics.json").read_text())
    assert report["processes"] == 2
    # 96 texts in batches of 8 -> 12 batches, 6 per rank -> 6 synchronized steps per epoch
    assert report["history"][-1]["step"] == 6 * 5
    assert report["best"]["accuracy"] > 0.5


def test_embedding_rows_learn_at_their_own_rate(tiny_base):
    import torch
    from transformers import BertForMaskedLM

    from edgebert.train.optimizer import adamw_with_linear_schedule

    model = BertForMaskedLM.from_pretrained(tiny_base)  # its decoder shares the embedding matrix
    config = TrainConfig(learning_rate=1e-3, embedding_lr_scale=10.0)
    optimizer, _ = adamw_with_linear_schedule(torch, model, config, total_steps=10)
    embeddings = model.get_input_embeddings().weight
    (group,) = [g for g in optimizer.param_groups if any(p is embeddings for p in g["params"])]
    assert group["initial_lr"] == pytest.approx(1e-2) and len(group["params"]) == 1
    assert all(g["initial_lr"] == pytest.approx(1e-3) for g in optimizer.param_groups if g is not group)
    counted = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
    assert counted == sum(p.numel() for p in model.parameters())  # every parameter once, the tied one too
    with pytest.raises(InputError, match="--embedding-lr-scale"):
        TrainConfig(embedding_lr_scale=0.0)
