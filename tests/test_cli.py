"""Every command's --help, and user mistakes as one-line errors with exit code 2 (never a traceback)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from edgebert.cli import build_parser, main

from .conftest import cli_error

COMMANDS = [name for name in build_parser()._subparsers._group_actions[0].choices]


def test_command_list_is_what_we_document():
    assert {"train", "export", "predict"} <= set(COMMANDS)


@pytest.mark.parametrize("command", [[]] + [[c] for c in COMMANDS])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: edgebert")


def test_console_script_entry_point():
    result = subprocess.run([sys.executable, "-m", "edgebert.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("edgebert ")


def test_train_missing_data_file(tmp_path, capsys):
    err = cli_error(
        ["train", "--data", str(tmp_path / "nope.jsonl"), "--eval", "x.jsonl", "--out", str(tmp_path / "c")], capsys
    )
    assert "Data file not found" in err


def test_train_bad_column_names_the_fix(tmp_path, data_dir, capsys):
    err = cli_error(
        [
            "train",
            "--data",
            str(data_dir / "train.jsonl"),
            "--eval",
            str(data_dir / "dev.jsonl"),
            "--out",
            str(tmp_path / "c"),
            "--text-column",
            "body",
        ],
        capsys,
    )
    assert "no column 'body'" in err and "--text-column" in err


def test_train_token_task_needs_eval(tmp_path, token_data_dir, capsys):
    err = cli_error(
        ["train", "--task", "token", "--data", str(token_data_dir / "train.jsonl"), "--out", str(tmp_path / "c")],
        capsys,
    )
    assert "--task token needs --eval" in err


def test_train_sentence_data_given_to_token_task_says_so(tmp_path, data_dir, token_data_dir, capsys):
    err = cli_error(
        [
            "train",
            "--data",
            str(token_data_dir / "train.jsonl"),
            "--eval",
            str(token_data_dir / "dev.jsonl"),
            "--out",
            str(tmp_path / "c"),
        ],
        capsys,
    )
    assert "--task token" in err


def test_train_bad_max_length(tmp_path, data_dir, capsys):
    err = cli_error(
        ["train", "--data", str(data_dir / "train.jsonl"), "--max-length", "long", "--out", str(tmp_path / "c")],
        capsys,
    )
    assert "--max-length must be 'auto'" in err


def test_train_refuses_existing_output(tiny_checkpoint, data_dir, capsys):
    err = cli_error(
        [
            "train",
            "--data",
            str(data_dir / "train.jsonl"),
            "--eval",
            str(data_dir / "dev.jsonl"),
            "--out",
            str(tiny_checkpoint),
        ],
        capsys,
    )
    assert "already exists" in err and "--force" in err


def test_train_rejects_bad_hyperparameter(tmp_path, data_dir, capsys):
    err = cli_error(
        [
            "train",
            "--data",
            str(data_dir / "train.jsonl"),
            "--eval",
            str(data_dir / "dev.jsonl"),
            "--out",
            str(tmp_path / "c"),
            "--max-length",
            "9999",
        ],
        capsys,
    )
    assert "--max-length" in err


def test_export_unknown_label_in_eval(tiny_checkpoint, tmp_path, capsys):
    bad = tmp_path / "eval.jsonl"
    bad.write_text(json.dumps({"text": "hello", "label": "weather"}) + "\n")
    err = cli_error(["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--eval", str(bad)], capsys)
    assert "'weather'" in err and "labels the model does not know" in err


def test_export_unknown_recipe(tiny_checkpoint, tmp_path, capsys):
    err = cli_error(["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--recipe", "z80"], capsys)
    assert "Unknown recipe 'z80'" in err and "avx2" in err


def test_export_not_a_checkpoint(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    err = cli_error(["export", str(tmp_path / "empty"), "--out", str(tmp_path / "a")], capsys)
    assert "neither an edgebert checkpoint" in err and "save_pretrained" in err


def test_export_existing_artifact(tiny_checkpoint, tiny_artifact, capsys):
    err = cli_error(["export", str(tiny_checkpoint), "--out", str(tiny_artifact)], capsys)
    assert "already exists" in err


def test_predict_corrupt_artifact(artifact_copy, capsys):
    (artifact_copy / "model.onnx").write_bytes(b"garbage")
    err = cli_error(["predict", str(artifact_copy), "hello"], capsys)
    assert "model.onnx" in err


def test_predict_missing_artifact(tmp_path, capsys):
    cli_error(["predict", str(tmp_path / "none"), "hello"], capsys)


def test_predict_texts_file_and_stdin(tiny_int8_artifact, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("goal for the team\nbank profit\n")
    by_file = subprocess.run(
        [sys.executable, "-m", "edgebert.cli", "predict", str(tiny_int8_artifact), "--file", str(texts), "--json"],
        capture_output=True,
        text=True,
    )
    by_stdin = subprocess.run(
        [sys.executable, "-m", "edgebert.cli", "predict", str(tiny_int8_artifact), "--json"],
        input=texts.read_text(),
        capture_output=True,
        text=True,
    )
    assert by_file.returncode == 0 and by_stdin.returncode == 0, by_file.stderr + by_stdin.stderr
    rows = [json.loads(line) for line in by_file.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["goal for the team", "bank profit"]
    assert by_file.stdout == by_stdin.stdout


def test_the_command_reference_is_the_clis_own_synopsis():
    from pathlib import Path

    from edgebert.cli import synopsis

    page = (Path(__file__).parent.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    block = page.split("<!-- usage:start")[1].split("<!-- usage:end -->")[0]
    assert synopsis() in block, "docs/cli.md's synopsis is stale: run `make docs`"


def test_result_tables_in_readme_and_docs_are_rendered_from_the_results_files():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parent.parent
    result = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "docs_tables.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pictures = [sys.executable, str(root / "benchmarks" / "docs_pictures.py"), "--check"]
    result = subprocess.run(pictures, capture_output=True, text=True)  # each picture drawn from today's results
    assert result.returncode == 0, result.stdout + result.stderr
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "<!-- table:zh-reviews -->" in readme and "<!-- table:msra-ner -->" in readme
    assert len(readme.splitlines()) <= 300, "README.md is a map: move detail to docs/"
    for page in (root / "docs").glob("*.md"):  # every table marker names a table the script knows
        for name in re.findall(r"<!-- table:([a-z0-9-]+)", page.read_text(encoding="utf-8")):
            assert name in TABLE_NAMES, f"{page.name}: unknown table {name}"


def _table_names() -> set[str]:
    """The tables benchmarks/docs_tables.py can render (a marker naming anything else is a typo)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "benchmarks" / "docs_tables.py"
    spec = importlib.util.spec_from_file_location("docs_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return set(module.TABLES) | set(module.FILE_TABLES)


TABLE_NAMES = _table_names()
