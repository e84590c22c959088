"""The stages `train` and `adapt` are made of, each on its own, on a tiny random-weight BERT."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest

from edgebert.core.errors import ArtifactExistsError, InputError
from edgebert.data.text import load_file
from edgebert.modeling.checkpoint import read_checkpoint_meta
from edgebert.train import adapt as adapt_stages
from edgebert.train import loop
from edgebert.train.config import AdaptConfig, TrainConfig


def _config(base: Path, **changes) -> TrainConfig:
    values = dict(model=str(base), max_length=48, epochs=1, batch_size=16, learning_rate=5e-3, warmup_ratio=0.0)
    return TrainConfig(**{**values, **changes})


@pytest.fixture()
def splits(data_dir):
    return load_file(data_dir / "train.jsonl"), load_file(data_dir / "dev.jsonl")


def _start(tmp_path, config, splits, **flags):
    options = {"force": False, "resume": False, "progress": False, **flags}
    return loop.start_run(tmp_path / "ckpt", config, *splits, **options)


def _text(run, config, splits):
    task, config, teacher_meta = loop.choose_task(config, splits[0])
    return task, loop.prepare_text(run, config, Path(config.model), task, teacher_meta, *splits)


def test_start_run_refuses_an_interrupted_run_unless_resumed_or_forced(tmp_path, tiny_base, splits):
    config = _config(tiny_base)
    (tmp_path / ".ckpt.partial").mkdir()
    with pytest.raises(ArtifactExistsError, match="--resume"):
        _start(tmp_path, config, splits)
    assert _start(tmp_path, config, splits, resume=True).partial.is_dir()  # kept for the resume
    run = _start(tmp_path, config, splits, force=True)
    assert not run.partial.exists()  # --force starts over


def test_choose_task_reads_labels_from_data_and_refuses_a_teacher_of_another_task(tiny_base, tiny_checkpoint, splits):
    task, config, teacher_meta = loop.choose_task(_config(tiny_base), splits[0])
    assert sorted(task.labels.names) == sorted(set(splits[0].labels)) and teacher_meta is None
    with pytest.raises(InputError, match="is a 'sequence' model, not 'token'"):
        loop.choose_task(_config(tiny_base, task="token", teacher=str(tiny_checkpoint), student_layers=1), splits[0])
    _, student_config, meta = loop.choose_task(
        _config(tiny_base, teacher=str(tiny_checkpoint), student_layers=1, max_length=20), splits[0]
    )
    assert student_config.max_length == meta.max_length != 20  # a student reads text exactly as its teacher


def test_prepare_text_encodes_both_splits_and_saves_the_tokenizer_for_a_resume(tmp_path, tiny_base, splits):
    config = _config(tiny_base)
    run = _start(tmp_path, config, splits)
    task, text = _text(run, config, splits)
    assert len(text.train_set.ids) == len(splits[0]) and len(text.eval_set.ids) == len(splits[1])
    assert max(len(ids) for ids in text.train_set.ids) <= 48
    assert (run.partial / "tokenizer.json").read_text(encoding="utf-8") == text.tokenizer_json


def test_build_schedule_refuses_too_few_examples_for_the_processes(tmp_path, tiny_base, splits):
    config = _config(tiny_base, batch_size=128, grad_accum=1)
    run = _start(tmp_path, config, splits)
    task, text = _text(run, config, splits)
    trainee = loop.build_model(run, config, Path(config.model), task, text)
    run.world.size = 2  # 96 examples at batch 128 are one batch: nothing for the second process
    with pytest.raises(InputError, match="too few for 2 processes"):
        loop.build_schedule(run, config, task, text, trainee)


def test_one_train_step_lowers_the_loss_on_its_batch(tmp_path, tiny_base, splits):
    import torch

    config = _config(tiny_base, learning_rate=1e-2)
    run = _start(tmp_path, config, splits)
    task, text = _text(run, config, splits)
    trainee = loop.build_model(run, config, Path(config.model), task, text)
    schedule = loop.build_schedule(run, config, task, text, trainee)
    batch = loop.train_batches(text.encoder, text.train_set, 32, random.Random(0))[0]
    with torch.no_grad():
        before = loop.batch_loss(torch, config, task, text.train_set, trainee, schedule, batch).item()
    for _ in range(3):
        loop.train_step(config, task, text.train_set, trainee, schedule, [batch])
    with torch.no_grad():
        after = loop.batch_loss(torch, config, task, text.train_set, trainee, schedule, batch).item()
    assert after < before


def test_end_epoch_keeps_the_best_and_stops_after_patience(tmp_path, tiny_base, splits):
    from edgebert.train.state import Progress

    config = _config(tiny_base, patience=1)
    run = _start(tmp_path, config, splits)
    task, text = _text(run, config, splits)
    trainee = loop.build_model(run, config, Path(config.model), task, text)
    schedule = loop.build_schedule(run, config, task, text, trainee)
    state, bar = Progress(), type("Bar", (), {"write": staticmethod(lambda _: None)})()
    assert loop.end_epoch(run, config, task, text, trainee, schedule, state, 1, bar) is False  # first: the best
    assert state.best["epoch"] == 1 and (run.partial / "best" / "config.json").is_file()
    assert loop.end_epoch(run, config, task, text, trainee, schedule, state, 2, bar) is True  # no better: stop
    assert state.best["epoch"] == 1 and state.epochs_without_improvement == 1
    assert (run.partial / "state.pt").is_file()


def test_save_checkpoint_writes_a_meta_the_reader_accepts(tmp_path, tiny_base, splits):
    import shutil

    from edgebert.train.state import Progress

    base = tmp_path / "base"
    shutil.copytree(tiny_base, base)
    (base / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizerFast"}')
    config = _config(base, max_length="auto")
    run = _start(tmp_path, config, splits)
    task, text = _text(run, config, splits)
    config = dataclasses.replace(config, max_length=text.max_length)
    trainee = loop.build_model(run, config, Path(config.model), task, text)
    schedule = loop.build_schedule(run, config, task, text, trainee)
    state, bar = Progress(), type("Bar", (), {"write": staticmethod(lambda _: None)})()
    loop.end_epoch(run, config, task, text, trainee, schedule, state, 1, bar)
    loop.save_checkpoint(run, config, task, text, state, None, ("train.jsonl", "dev.jsonl"))
    meta = read_checkpoint_meta(run.out)
    assert meta.max_length == text.max_length == meta.train_config["max_length"]  # 'auto' resolved
    assert meta.labels == list(task.labels.names) and meta.best_epoch == 1
    assert not run.partial.exists()
    assert (run.out / "tokenizer_config.json").read_text() == (base / "tokenizer_config.json").read_text()


def test_adapt_stages_mask_and_evaluate_reproducibly_then_save_an_encoder(tmp_path, tiny_base, splits):
    import torch

    config = AdaptConfig(model=str(tiny_base), max_length=32, epochs=1, batch_size=16)
    with pytest.raises(InputError, match="exceeds the encoder's"):
        adapt_stages.prepare_ids(dataclasses.replace(config, max_length=256), Path(tiny_base), ["a"], ["b"], print)
    ids = adapt_stages.prepare_ids(config, Path(tiny_base), splits[0].texts, splits[1].texts, lambda _: None)
    assert max(len(row) for row in ids.train_set.ids) <= 32 and ids.vocab is None
    torch.manual_seed(0)
    mlm = adapt_stages.build_mlm(config, Path(tiny_base), ids.vocab_size, lambda _: None)
    first, second = mlm.evaluate(ids), mlm.evaluate(ids)
    assert first == second and first["masked_tokens"] > 0  # the dev masks are the same every time
    adapt_stages.save_encoder(tmp_path / "enc", False, Path(tiny_base), mlm, ids, 0, {"history": [first]})
    saved = json.loads((tmp_path / "enc" / "edgebert_adapt.json").read_text())
    assert saved["history"][0] == first and (tmp_path / "enc" / "tokenizer.json").is_file()
    from safetensors.numpy import load_file as load_tensors

    stored = load_tensors(str(tmp_path / "enc" / "model.safetensors"))
    key = "embeddings.word_embeddings.weight"
    np.testing.assert_array_equal(stored[key], mlm.model.bert.state_dict()[key].numpy())  # the trained encoder
    with pytest.raises(ArtifactExistsError):
        adapt_stages.save_encoder(tmp_path / "enc", False, Path(tiny_base), mlm, ids, 0, {})
