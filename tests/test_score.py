"""`edgebert score`: local workers and Ray give the same ordered output as in-process predict; bad rows are
rejected with their reason; a killed run resumes; the output is never partial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgebert import Classifier
from edgebert.cli import main

from .conftest import make_examples

CLI = [sys.executable, "-m", "edgebert.cli", "score"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three formats, good rows and every kind of bad row."""
    root = tmp_path_factory.mktemp("corpus")
    texts = [row["text"] for row in make_examples(90, seed=11)]
    with (root / "a.jsonl").open("wb") as f:
        for i, text in enumerate(texts[:40]):
            doc = "a2\u2028" if i == 2 else f"a{i}"  # a line separator in an id: output lines must not split there
            f.write(json.dumps({"doc": doc, "text": text}).encode() + b"\n")
        f.write(b"{not json\n")
        f.write(b'{"text": 7, "doc": "x"}\n')
        f.write(b'{"body": "no text field", "doc": "y"}\n')
        f.write(b'{"text": "caf\xe9", "doc": "z"}\n')  # latin-1 byte: not UTF-8
        f.write(b"\n")  # blank: not a row
        f.write(b"[1, 2]\n")
    with (root / "b.csv").open("w", newline="") as f:
        f.write("doc,text\n")
        for i, text in enumerate(texts[40:70]):
            f.write(f'b{i},"{text}"\n')
        f.write("only-one-field\n")
    (root / "c.txt").write_text("\n".join(texts[70:]) + "\n")
    return root


def _expected(artifact: Path) -> list[str]:
    """The corpus fixture's good rows are make_examples(90, seed=11) in order."""
    texts = [row["text"] for row in make_examples(90, seed=11)]
    return [p.label for p in Classifier.load(artifact).predict(texts)]


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_local_workers_match_in_process_predict_and_reject_bad_rows_with_reasons(tiny_int8_artifact, corpus, tmp_path):
    out = tmp_path / "out.jsonl"
    inputs = ["--input", str(corpus / "a.jsonl"), "--input", str(corpus / "*.csv"), "--input", str(corpus / "c.txt")]
    args = [str(tiny_int8_artifact), *inputs, "--output", str(out), "--workers", "2", "--shard-rows", "16", "--quiet"]
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = _read(out)
    assert [r["label"] for r in rows] == _expected(tiny_int8_artifact)
    positions = [r["position"] for r in rows]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert rows[0]["id"].endswith("a.jsonl:1") and rows[-1]["id"].endswith("c.txt:20")
    rejects = _read(out.with_name("out.jsonl.rejects.jsonl"))
    reasons = " | ".join(r["reason"] for r in rejects)
    assert len(rejects) == 6, reasons
    for expected in ("invalid JSON", "'text' is int", "no 'text' field", "not UTF-8", "a JSON list", "1 fields"):
        assert expected in reasons
    assert sorted(positions + [r["position"] for r in rejects]) == list(range(len(rows) + len(rejects)))
    assert not list(tmp_path.glob(".out.jsonl*")), "no temp files or parts left behind"

    by_id = tmp_path / "ids.jsonl"
    args = [str(tiny_int8_artifact), "--input", str(corpus / "a.jsonl"), "--output", str(by_id), "--id-column", "doc"]
    assert main(["score", *args, "--workers", "1", "--quiet"]) == 0
    assert [r["id"] for r in _read(by_id)][:3] == ["a0", "a1", "a2\u2028"]
    assert "\u2028" not in by_id.read_text(), "written escaped, as JSON Lines readers split on it"


@pytest.mark.parametrize(("resume_with", "shard_rows"), [("local", 8), ("ray", 4)])
def test_killed_run_resumes_skipping_finished_shards_with_the_same_output(
    tiny_int8_artifact, tmp_path, resume_with, shard_rows
):
    """kill -9 a local run, then finish it locally or on Ray (parts are the same in both modes; with 4-row shards
    the Ray run takes two passes of 64 shards)."""
    if resume_with == "ray":
        pytest.importorskip("ray")
    texts = [row["text"] for row in make_examples(400, seed=2)]
    (tmp_path / "big.txt").write_text("\n".join(texts) + "\n")
    args = [str(tiny_int8_artifact), "--input", str(tmp_path / "big.txt"), "--shard-rows", str(shard_rows), "--quiet"]
    n_shards = 400 // shard_rows
    reference = tmp_path / "reference.jsonl"
    assert subprocess.run([*CLI, *args, "--output", str(reference), "--workers", "1"], timeout=300).returncode == 0

    out = tmp_path / "out.jsonl"
    process = subprocess.Popen([*CLI, *args, "--output", str(out), "--workers", "1"], stderr=subprocess.DEVNULL)
    parts = tmp_path / ".out.jsonl.parts"
    deadline = time.monotonic() + 120
    while len(list(parts.glob("shard-*.seal"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(1.0)  # the workers get SIGTERM when their parent dies (PR_SET_PDEATHSIG); let them go
    assert not out.exists(), "a killed run must not leave a partial output"
    done = len(list(parts.glob("shard-*.seal")))  # sealed parts: what a resume may trust
    time.sleep(0.5)
    assert len(list(parts.glob("shard-*.seal"))) == done, "orphaned workers kept scoring after kill -9"
    assert 5 <= done < n_shards

    mode = ["--ray"] if resume_with == "ray" else ["--workers", "1"]
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    resumed = subprocess.run(
        [*CLI, *args, "--output", str(out), *mode], capture_output=True, text=True, timeout=600, env=env
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{done} of {n_shards} shards resumed" in resumed.stdout
    assert out.read_bytes() == reference.read_bytes()
    assert not parts.exists()


def test_rejects_name_a_file_with_a_line_separator_in_one_line(tiny_int8_artifact, tmp_path):
    source = tmp_path / "odd\u2028name.jsonl"
    source.write_text('{"text": "goal for the team"}\n{not json\n')
    out = tmp_path / "out.jsonl"
    args = [str(tiny_int8_artifact), "--input", str(source), "--output", str(out), "--workers", "1", "--quiet"]
    assert main(["score", *args]) == 0
    raw = out.with_name("out.jsonl.rejects.jsonl").read_text()
    assert "\u2028" not in raw, "written escaped: a JSON Lines reader would split the row there"
    (reject,) = _read(out.with_name("out.jsonl.rejects.jsonl"))
    assert reject["source"] == f"{source}:2" and "invalid JSON" in reject["reason"]


def test_unfinished_run_with_other_settings_needs_force(tiny_int8_artifact, tmp_path, capsys):
    (tmp_path / "t.txt").write_text("goal\nbank\n")
    parts = tmp_path / ".out.jsonl.parts"
    parts.mkdir()
    (parts / "plan.json").write_text('{"other": "job"}')
    args = [
        "score",
        str(tiny_int8_artifact),
        "--input",
        str(tmp_path / "t.txt"),
        "--output",
        str(tmp_path / "out.jsonl"),
    ]
    assert main([*args, "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*args, "--quiet", "--force", "--workers", "1"]) == 0
    assert len(_read(tmp_path / "out.jsonl")) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input", "/nonexistent/*.jsonl"], "matches no file"),
        (["--input", "{inp}", "--workers", "0"], "--workers"),
        (["--input", "{inp}", "--shard-rows", "0"], "--shard-rows"),
    ],
)
def test_bad_arguments_are_named(tiny_int8_artifact, tmp_path, capsys, extra, message):
    (tmp_path / "t.txt").write_text("goal\n")
    extra = [x.replace("{inp}", str(tmp_path / "t.txt")) for x in extra]
    assert main(["score", str(tiny_int8_artifact), *extra, "--output", str(tmp_path / "o.jsonl"), "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_output_may_not_replace_an_input(tiny_int8_artifact, tmp_path, capsys):
    source = tmp_path / "t.txt"
    source.write_text("goal\n")
    assert main(["score", str(tiny_int8_artifact), "--input", str(source), "--output", str(source), "--force"]) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert source.read_text() == "goal\n"


def test_ray_data_on_a_local_instance_gives_the_local_output_row_for_row(tiny_int8_artifact, corpus, tmp_path):
    pytest.importorskip("ray")
    inputs = ["--input", str(corpus / "a.jsonl"), "--input", str(corpus / "b.csv"), "--input", str(corpus / "c.txt")]
    common = [str(tiny_int8_artifact), *inputs, "--shard-rows", "16", "--quiet", "--all-scores", "--id-column", "doc"]
    local, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert subprocess.run([*CLI, *common, "--output", str(local), "--workers", "2"], timeout=300).returncode == 0
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    result = subprocess.run(
        [*CLI, *common, "--output", str(ray_out), "--ray"], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert ray_out.read_bytes() == local.read_bytes()
    assert (tmp_path / "ray.jsonl.rejects.jsonl").read_bytes() == (tmp_path / "local.jsonl.rejects.jsonl").read_bytes()


def test_score_refuses_a_token_artifact_naming_predict(tmp_path, token_int8_artifact):
    from edgebert.core.errors import InputError
    from edgebert.score.config import ScoreConfig
    from edgebert.score.local import plan_for

    with pytest.raises(InputError, match="edgebert predict --json"):
        plan_for(token_int8_artifact, [], ScoreConfig())


def test_resume_rescored_parts_that_do_not_match_their_seal(tiny_int8_artifact, tmp_path, monkeypatch, capsys):
    """Finished parts edited, truncated or copied from another shard are scored again, and the run says so; an
    input edited in place (same size and mtime) is a different plan, never answered from the old parts."""
    from edgebert.score import local
    from edgebert.score.config import ScoreConfig

    texts = [row["text"] for row in make_examples(40, seed=3)]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n")
    reference = tmp_path / "reference.jsonl"
    args = ["--input", str(source), "--shard-rows", "8", "--workers", "1", "--quiet"]
    assert main(["score", str(tiny_int8_artifact), *args, "--output", str(reference)]) == 0

    out = tmp_path / "out.jsonl"

    def crash(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(local, "finish", crash)  # every shard scored and sealed, then the run dies
    with pytest.raises(KeyboardInterrupt):
        local.score_local(tiny_int8_artifact, [str(source)], out, ScoreConfig(shard_rows=8, workers=1), progress=False)
    monkeypatch.undo()
    parts = tmp_path / ".out.jsonl.parts"
    edited = parts / "shard-000000.jsonl"
    edited.write_text(edited.read_text().replace('"label": "', '"label": "x', 1))
    truncated = parts / "shard-000001.jsonl"
    truncated.write_bytes(truncated.read_bytes()[:-20])
    for suffix in (".jsonl", ".seal"):  # a whole part, seal included, planted as another shard's
        (parts / f"shard-000003{suffix}").write_bytes((parts / f"shard-000002{suffix}").read_bytes())
    capsys.readouterr()
    assert main(["score", str(tiny_int8_artifact), *args, "--output", str(out)]) == 0
    assert "2 of 5 shards resumed, 3 saved shards did not match" in capsys.readouterr().out
    assert out.read_bytes() == reference.read_bytes()

    second = tmp_path / "second.jsonl"
    with pytest.raises(KeyboardInterrupt):  # again, then edit the input in place keeping size and mtime
        monkeypatch.setattr(local, "finish", crash)
        local.score_local(tiny_int8_artifact, [str(source)], second, ScoreConfig(shard_rows=8, workers=1))
    monkeypatch.undo()
    stat = source.stat()
    source.write_text(source.read_text().replace("a", "e", 1))
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert source.stat().st_size == stat.st_size
    capsys.readouterr()
    assert main(["score", str(tiny_int8_artifact), *args, "--output", str(second)]) == 2
    assert "other inputs or settings" in capsys.readouterr().err


def test_a_worker_killed_from_outside_is_a_one_line_error_and_the_run_resumes(tiny_int8_artifact, tmp_path):
    texts = [row["text"] for row in make_examples(400, seed=3)]
    (tmp_path / "big.txt").write_text("\n".join(texts) + "\n")
    args = [str(tiny_int8_artifact), "--input", str(tmp_path / "big.txt"), "--shard-rows", "8", "--quiet"]
    out, parts = tmp_path / "out.jsonl", tmp_path / ".out.jsonl.parts"
    process = subprocess.Popen([*CLI, *args, "--output", str(out), "--workers", "1"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(parts.glob("shard-*.seal"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    children = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and (p / "stat").is_file() and _parent(p) == process.pid and b"spawn" in _cmdline(p)
    ]
    assert children, "no worker process found"
    for pid in children:
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would
    _, err = process.communicate(timeout=120)
    assert process.returncode == 3 and "worker process died" in err and "Traceback" not in err
    resumed = subprocess.run([*CLI, *args, "--output", str(out), "--workers", "1"], capture_output=True, text=True)
    assert resumed.returncode == 0 and "shards resumed" in resumed.stdout
    assert len(out.read_text().splitlines()) == 400


def _parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("mode", ["workers", "ray"])
def test_pairs_are_scored_with_their_second_text(tiny_int8_artifact, tmp_path, mode):
    if mode == "ray":
        pytest.importorskip("ray")
    rows = [{"text": r["text"], "question": f"is it about {r['label']}?"} for r in make_examples(24, seed=5)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    where = ["--ray"] if mode == "ray" else ["--workers", "1"]
    args = [str(tiny_int8_artifact), "--input", str(data), "--output", str(out), "--pair-column", "question", *where]
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    result = subprocess.run([*CLI, *args, "--quiet", "--all-scores"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    expected = Classifier.load(tiny_int8_artifact).predict([r["text"] for r in rows], [r["question"] for r in rows])
    assert [s["label"] for s in scored] == [p.label for p in expected]
    assert [s["scores"] for s in scored] == [pytest.approx(p.scores, abs=1e-5) for p in expected]
    alone = Classifier.load(tiny_int8_artifact).predict([r["text"] for r in rows])
    assert [s["scores"] for s in scored] != [pytest.approx(p.scores, abs=1e-5) for p in alone]  # the pair mattered


def test_pair_column_needs_a_table_and_the_column(tiny_int8_artifact, tmp_path):
    plain = tmp_path / "texts.txt"
    plain.write_text("a text\n")
    table = tmp_path / "t.csv"
    table.write_text("text,other\na text,x\n")
    for source in (plain, table):
        args = [str(tiny_int8_artifact), "--input", str(source), "--output", str(tmp_path / "o.jsonl")]
        result = subprocess.run([*CLI, *args, "--pair-column", "question"], capture_output=True, text=True)
        assert result.returncode == 2 and "--pair-column" in result.stderr and "Traceback" not in result.stderr


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(tiny_int8_artifact, tmp_path):
    texts = [row["text"] for row in make_examples(4000, seed=6)]
    (tmp_path / "big.txt").write_text("\n".join(texts) + "\n")
    args = [str(tiny_int8_artifact), "--input", str(tmp_path / "big.txt"), "--output", str(tmp_path / "o.jsonl")]
    first = subprocess.Popen([*CLI, *args, "--shard-rows", "8", "--workers", "1", "--quiet"], stderr=subprocess.PIPE)
    parts = tmp_path / ".o.jsonl.parts"
    deadline = time.monotonic() + 120
    while not list(parts.glob("shard-*.seal")) and time.monotonic() < deadline:
        time.sleep(0.02)
    second = subprocess.run([*CLI, *args, "--quiet"], capture_output=True, text=True)
    assert second.returncode == 2 and "Another `edgebert score` run is writing" in second.stderr
    assert first.wait(timeout=300) == 0
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 4000
    assert not (tmp_path / ".o.jsonl.lock").exists()


def test_an_input_named_like_the_lock_file_is_refused_and_kept(tiny_int8_artifact, tmp_path):
    lock_named = tmp_path / ".o.jsonl.lock"
    lock_named.write_text("a text\n")
    args = [str(tiny_int8_artifact), "--input", str(lock_named), "--output", str(tmp_path / "o.jsonl")]
    result = subprocess.run([*CLI, *args, "--quiet"], capture_output=True, text=True)
    assert result.returncode == 2 and "never overwritten" in result.stderr
    assert lock_named.read_text() == "a text\n"
