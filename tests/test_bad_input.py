"""The project's own bad-input suite (issue: same answer whatever the batch, bounded inputs, nothing destroyed,
CLI input handling). Each case once gave a silent wrong answer, a lost file or a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgebert import Classifier
from edgebert.cli import main
from edgebert.core.artifact import Quantization, quantizes_per_call
from edgebert.core.errors import ArtifactError
from edgebert.core.files import atomic_directory, sweep_stale
from edgebert.runtime.backends import RowByRow
from edgebert.runtime.model import run_checked
from edgebert.runtime.tokenization import TextEncoder

from .conftest import cli_error, make_examples

CLI = [sys.executable, "-m", "edgebert.cli"]
MIXED = [row["text"] for row in make_examples(30, seed=4)] + [
    "进球 得分 银行",  # Chinese (unknown to the tiny vocabulary: [UNK]s)
    "ＡＢＣ，全角！",
    "café naïve résumé",
    "goal " * 200,  # longer than max_length
    "",
]


# ---- same answer whatever the batch ---------------------------------------------------------------------------


def test_dynamic_int8_gives_bit_identical_logits_alone_batched_and_reordered(tiny_int8_artifact):
    clf = Classifier.load(tiny_int8_artifact, batch_size=8, threads=2)
    # a lone text runs on the 2-thread session, a batch's rows side by side on 1-thread sessions: same bits
    assert isinstance(clf.backend, RowByRow) and clf.backend.side_by_side
    batched = clf.predict_logits(MIXED)
    assert clf.backend.parallel is not None, "the one-thread session opens on the first call with several rows"
    alone = np.concatenate([clf.predict_logits([t]) for t in MIXED])
    reordered = clf.predict_logits(MIXED[::-1])[::-1]
    np.testing.assert_array_equal(batched, alone)
    np.testing.assert_array_equal(reordered, alone)
    # a text's answer with other texts vs with copies of a very different one
    crowd = Classifier.load(tiny_int8_artifact, batch_size=64).predict_logits([MIXED[0]] + [MIXED[-2]] * 40)[0]
    np.testing.assert_array_equal(crowd, alone[0])


def test_fp32_is_batched_and_stays_within_float_noise(tiny_artifact):
    clf = Classifier.load(tiny_artifact, batch_size=8)
    assert not isinstance(clf.backend, RowByRow)
    alone = np.concatenate([clf.predict_logits([t]) for t in MIXED])
    np.testing.assert_allclose(clf.predict_logits(MIXED), alone, atol=1e-5)


def _quantization(mode: str, op_types: list[str]) -> Quantization:
    return Quantization("", mode, "qint8", True, False, op_types, [], "minmax", 100, "avx2")


@pytest.mark.parametrize(
    ("backend", "mode", "op_types", "per_call"),
    [
        ("onnxruntime", "dynamic", ["MatMul"], True),
        ("onnxruntime", "static", ["MatMul", "Attention"], True),  # Attention stays dynamic in static mode
        ("onnxruntime", "static", ["MatMul"], False),
        ("openvino", "static", ["MatMul"], False),
    ],
)
def test_which_artifacts_pick_activation_scales_per_call(backend, mode, op_types, per_call):
    assert quantizes_per_call(backend, _quantization(mode, op_types)) is per_call
    assert quantizes_per_call(backend, None) is False


@pytest.mark.parametrize("side_by_side", [False, True])
def test_row_by_row_keeps_token_outputs_padded_in_place(side_by_side):
    class Echo:  # (B, T) -> (B, T, 2): the input id and the row's length, to see where each row lands
        calls = 0

        def run(self, ids, mask, types):
            Echo.calls += 1
            return np.stack([ids.astype(np.float32), np.full(ids.shape, ids.shape[1], np.float32)], axis=-1)

    ids = np.array([[5, 6, 7], [8, 9, 0], [4, 0, 0]])
    mask = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]])
    backend = RowByRow(Echo(), Echo, workers=2) if side_by_side else RowByRow(Echo())
    out = backend.run(ids, mask, np.zeros_like(ids))
    assert out.shape == (3, 3, 2) and Echo.calls == 3
    np.testing.assert_array_equal(out[1, :, 0], [8, 9, 0])
    np.testing.assert_array_equal(out[1, :2, 1], [2, 2])  # row 1 ran unpadded (length 2)
    np.testing.assert_array_equal(out[2, :, 0], [4, 0, 0])  # rows come back in their places, however they ran


# ---- outputs that are numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_logits_are_refused(tiny_artifact, bad):
    clf = Classifier.load(tiny_artifact)

    class Broken:
        def run(self, ids, mask, types):
            logits = np.zeros((ids.shape[0], len(clf.labels)), np.float32)
            logits[0, 0] = bad
            return logits

    batch = next(clf.encoder.batches(*clf.encoder.encode(["a text"]), 4))
    with pytest.raises(ArtifactError, match="NaN or infinite"):
        run_checked(Broken(), batch, len(clf.labels))


@pytest.mark.parametrize("kwargs", [{"batch_size": -1}, {"batch_size": 0}, {"threads": 0}, {"threads": -1}])
def test_load_refuses_nonsense_batch_size_and_threads(tiny_artifact, kwargs):
    from edgebert.core.errors import InputError

    with pytest.raises(InputError, match="at least 1"):
        Classifier.load(tiny_artifact, **kwargs)


# ---- bounded inputs --------------------------------------------------------------------------------------------


def test_huge_text_is_cut_before_tokenizing_and_gives_the_full_texts_ids(tiny_artifact):
    from tokenizers import Tokenizer

    encoder = TextEncoder.from_file(tiny_artifact / "tokenizer.json", 64)
    reference = Tokenizer.from_file(str(tiny_artifact / "tokenizer.json"))
    reference.no_padding()
    reference.enable_truncation(64)
    seen: list[int] = []
    real = encoder.tokenizer.encode_batch
    encoder.tokenizer = type("Spy", (), {})()
    encoder.tokenizer.encode_batch = lambda inputs: seen.extend(len(x) for x in inputs) or real(inputs)
    huge = "the team scored a late goal " * 200_000  # 5.6 MB
    words_too_long = ("x" * 150 + " ") * 20_000  # every word becomes [UNK]: the cut must widen
    for text in (huge, words_too_long, "进球" * 100_000):
        assert encoder.encode([text])[0][0] == reference.encode(text).ids
    assert max(seen) < 1_000_000, "the tokenizer was given a whole multi-megabyte text"


def test_bench_refuses_unbounded_numbers(tiny_artifact, capsys):
    for args in (["--seconds", "nan"], ["--seconds", "inf"], ["--shapes", "100000x512"], ["--threads", "0"]):
        assert main(["bench", str(tiny_artifact), *args]) == 2, args
        assert "error" in capsys.readouterr().err


# ---- never destroy inputs --------------------------------------------------------------------------------------


def test_export_refuses_out_equal_to_or_containing_its_checkpoint_even_with_force(tmp_path, tiny_checkpoint, capsys):
    import shutil

    ckpt = tmp_path / "runs" / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    before = sorted(p.name for p in ckpt.iterdir())
    for out in (ckpt, ckpt.parent, Path(str(ckpt) + "/.")):
        assert main(["export", str(ckpt), "--out", str(out), "--force"]) == 2
        assert "never overwritten" in capsys.readouterr().err
    assert sorted(p.name for p in ckpt.iterdir()) == before


def test_force_replaces_in_one_step_and_sweeps_staging_left_by_killed_runs(tmp_path):
    out = tmp_path / "artifact"
    out.mkdir()
    (out / "old.txt").write_text("old")
    dead = tmp_path / ".artifact.tmp-999999999-x"  # no such pid
    dead.mkdir()
    alive = tmp_path / f".artifact.tmp-{os.getppid()}-y"  # a live process's staging dir is left alone
    alive.mkdir()
    with atomic_directory(out, force=True) as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert not dead.exists() and alive.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "artifact"]
    assert sweep_stale(tmp_path, ".artifact.tmp-") == []


def test_sigterm_during_export_leaves_no_temp_or_staging_directories(tmp_path, tiny_checkpoint):
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "out"
    process = subprocess.Popen(
        [*CLI, "export", str(tiny_checkpoint), "--int8", "--out", str(out)], env=env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not list((tmp_path / "tmp").glob("edgebert-export-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=120)[1].decode()
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert not out.exists()
    assert [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("edgebert")] == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


# ---- CLI input handling ----------------------------------------------------------------------------------------


def _predict(artifact: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "predict", str(artifact), *args], input=stdin, capture_output=True, timeout=120)


def test_plain_text_file_splits_on_line_ends_only(tiny_int8_artifact, tmp_path):
    lines = ["goal\u2028for the team", "bank\x0cprofit", "match\x85report", "market\x1cshares"]
    path = tmp_path / "texts.txt"
    path.write_bytes(("\r\n".join(lines) + "\n").encode())
    result = _predict(tiny_int8_artifact, "--file", str(path), "--json")
    assert result.returncode == 0, result.stderr.decode()
    assert [json.loads(r)["text"] for r in result.stdout.decode().splitlines()] == lines


def test_file_dev_stdin_reads_stdin(tiny_int8_artifact):
    result = _predict(tiny_int8_artifact, "--file", "/dev/stdin", "--json", stdin=b"goal for the team\nbank profit\n")
    assert result.returncode == 0, result.stderr.decode()
    assert len(result.stdout.decode().splitlines()) == 2


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_unclosed_quote_is_an_error_with_its_line(tiny_int8_artifact, tmp_path, suffix):
    sep = "," if suffix == ".csv" else "\t"
    path = tmp_path / f"texts{suffix}"
    path.write_text(f'text{sep}id\nfine{sep}1\n"never closed{sep}2\nlost{sep}3\n')
    result = _predict(tiny_int8_artifact, "--file", str(path))
    err = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in err
    assert f"texts{suffix}:3" in err and "quot" in err


def test_fields_longer_than_the_csv_default_limit_work(tiny_int8_artifact, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("text\n" + "goal " * 40_000 + "\nbank profit\n")  # 200,000 characters in one field
    result = _predict(tiny_int8_artifact, "--file", str(path))
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert len(result.stdout.decode().splitlines()) == 2


def test_invalid_utf8_is_a_clear_error_from_a_file_and_from_stdin(tiny_int8_artifact, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    for result in (_predict(tiny_int8_artifact, "--file", str(path)), _predict(tiny_int8_artifact, stdin=b"\xff\xfe")):
        err = result.stderr.decode()
        assert result.returncode == 2 and "UTF-8" in err and "Traceback" not in err


def test_empty_eval_file_fails_at_once(tiny_checkpoint, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert main(["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--eval", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "holds no rows" in err and "exporting" not in err  # refused before any export work
    assert not (tmp_path / "a").exists()


def test_options_may_follow_texts_and_double_dash_ends_them(tiny_int8_artifact):
    result = _predict(tiny_int8_artifact, "goal for the team", "--json", "--", "-not an option")
    assert result.returncode == 0, result.stderr.decode()
    assert [json.loads(r)["text"] for r in result.stdout.decode().splitlines()] == [
        "goal for the team",
        "-not an option",
    ]


def _digests(directory: Path) -> dict[str, str]:
    from edgebert.core.files import sha256_file

    return {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.mark.parametrize(
    "command",
    [
        ["bench", "{art}", "--history", "{art}/edgebert.json", "--shapes", "1x8", "--rounds", "1"],
        ["bench", "{art}", "--out", "{art}/report", "--force", "--shapes", "1x8", "--rounds", "1"],
        ["score", "{art}", "--input", "{texts}", "--output", "{art}/model.onnx", "--force"],
        ["export", "{ckpt}", "--out", "{ckpt}/model.safetensors", "--force"],
        ["export", "{ckpt}", "--out", "{ckpt}/int8", "--int8"],
        ["bundle", "{art}", "--out", "{art}/model.onnx", "--force"],
    ],
)
def test_no_output_inside_an_input_even_with_force(tmp_path, artifact_copy, tiny_checkpoint, command, capsys):
    import shutil

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, checkpoint)
    texts = tmp_path / "texts.txt"
    texts.write_text("goal for the team\n")
    before = (_digests(artifact_copy), _digests(checkpoint))
    args = [a.format(art=artifact_copy, ckpt=checkpoint, texts=texts) for a in command]
    assert main(args) == 2
    assert "input" in capsys.readouterr().err
    assert (_digests(artifact_copy), _digests(checkpoint)) == before
    assert sorted(p.name for p in artifact_copy.iterdir()) == sorted(before[0])  # nothing added either


def test_score_never_writes_its_rejects_over_its_input(tmp_path, tiny_int8_artifact, capsys):
    source = tmp_path / "o.jsonl.rejects.jsonl"
    source.write_text('{"text": "goal for the team"}\n')
    args = ["score", str(tiny_int8_artifact), "--input", str(source), "--output", str(tmp_path / "o.jsonl")]
    assert main([*args, "--force"]) == 2
    assert source.read_text() == '{"text": "goal for the team"}\n'


@pytest.mark.parametrize("text", ["x" * 3_000_000, "中" * 3_000_000, "\n" * 3_000_000, "QUJD" * 750_000])
def test_tokenization_reads_a_bounded_prefix_of_any_text_shape(tiny_int8_artifact, text):
    """No whitespace, one huge token, newlines only, base64: the tokenizer never sees more than
    max_length * 16 * 8**2 characters of a text, whatever its pre-tokenizer makes of it (issue 26 item 7)."""
    from edgebert.runtime.tokenization import CHARS_PER_TOKEN, MAX_WIDENINGS

    encoder = Classifier.load(tiny_int8_artifact).encoder
    seen = []
    real = encoder.tokenizer.encode_batch
    encoder.tokenizer = type("Spy", (), {})()  # record what reaches the Rust tokenizer
    encoder.tokenizer.encode_batch = lambda inputs, **k: seen.extend(len(x) for x in inputs) or real(inputs, **k)
    ids, _ = encoder.encode([text])
    assert 2 <= len(ids[0]) <= encoder.max_length
    assert max(seen) <= encoder.max_length * CHARS_PER_TOKEN * 8**MAX_WIDENINGS


def test_a_json_integer_over_4300_digits_is_a_one_line_error(tmp_path, tiny_int8_artifact, capsys):
    huge = '{"text": "goal", "label": ' + "9" * 5000 + "}\n"
    (tmp_path / "train.jsonl").write_text(huge)
    assert main(["predict", str(tiny_int8_artifact), "--file", str(tmp_path / "train.jsonl")]) in (0, 2)
    (tmp_path / "h.jsonl").write_text('{"p50": ' + "9" * 5000 + "}\n")
    assert main(["bench", "--compare", str(tmp_path / "h.jsonl")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    from edgebert.data.text import load_file

    with pytest.raises(Exception, match="not valid JSON") as caught:
        load_file(tmp_path / "train.jsonl")
    assert type(caught.value).__name__ == "InputError"


def test_file_system_refusals_and_undecodable_arguments_are_one_line_errors(tiny_int8_artifact, tmp_path, capsys):

    history_dir = tmp_path / "history"
    history_dir.mkdir()
    bench = ["bench", str(tiny_int8_artifact), "--shapes", "1x8", "--rounds", "1", "--seconds", "0.01"]
    assert "Is a directory" in cli_error([*bench, "--no-cold-start", "--quiet", "--history", str(history_dir)], capsys)
    long_name = tmp_path / ("a" * 300 + ".jsonl")
    assert "File name too long" in cli_error(["predict", str(tiny_int8_artifact), "--file", str(long_name)], capsys)
    undecodable = b"caf\xe9".decode("utf-8", "surrogateescape")  # what Python makes of Latin-1 bytes in argv
    assert "not valid text in this locale" in cli_error(["predict", str(tiny_int8_artifact), undecodable], capsys)


def test_score_where_no_row_can_be_read_is_an_error_naming_the_first_reason(tiny_int8_artifact, tmp_path, capsys):

    data = tmp_path / "rows.jsonl"
    data.write_text('{"body": "a"}\n{"body": "b"}\n')
    args = ["score", str(tiny_int8_artifact), "--input", str(data), "--output", str(tmp_path / "o.jsonl"), "--quiet"]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and "No row could be read (first reason: no 'text' field (pass --text-column NAME))" in err
