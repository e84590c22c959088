"""Packaging tells the truth: every extra an error names exists, every import is declared, Python versions match."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> set[str]:
    names = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    for requirements in EXTRAS.values():
        names |= {_name(r) for r in requirements}
    return names - {"edgebert"}


def _sources() -> list[Path]:
    return sorted((ROOT / "edgebert").rglob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))


def test_every_require_names_an_existing_extra():
    calls = []
    for path in sorted((ROOT / "edgebert").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require":
                args = [a.value for a in node.args if isinstance(a, ast.Constant)]
                calls.append((path.name, args))
    assert calls, "require() calls were found"
    for where, args in calls:
        assert len(args) == 1 or args[1] in EXTRAS, f"{where}: require{tuple(args)} names an extra pyproject lacks"


def test_every_third_party_import_is_declared():
    mapping = importlib.metadata.packages_distributions()
    declared = _declared()
    missing = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "edgebert":
                    continue
                distributions = {d.lower().replace("_", "-") for d in mapping.get(top, [top])}
                if not distributions & declared:
                    missing.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    assert missing == {}, f"imported but declared in no dependency list: {missing}"


def test_python_requirement_matches_what_installs():
    # onnxruntime 1.32 has no CPython 3.10 wheel and the recipes use tomllib (3.11+)
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py311"


def test_no_dataset_text_ships_in_the_package():
    data_files = PYPROJECT["tool"]["setuptools"]["package-data"]["edgebert.data"]
    assert data_files == ["splits/*.json"]
    shipped = sum(p.stat().st_size for p in (ROOT / "edgebert" / "data" / "splits").glob("*.json"))
    assert shipped < 300_000, "split lists only: the text comes from registry packages"


def test_every_sub_package_is_in_the_wheel():
    """setuptools lists packages explicitly here: a new stage folder missing from the list is absent from installs."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(root).parts) for p in (root / "edgebert").rglob("__init__.py")}
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_python_dash_m_edgebert_runs_the_command():
    import subprocess

    done = subprocess.run([sys.executable, "-m", "edgebert", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: edgebert"), done.stderr


def test_makefile_installs_torch_from_the_cpu_index_and_pins_it_as_pyproject_does():
    # PyPI's Linux torch is the CUDA build (gigabytes of GPU wheels); the Makefile asks PyTorch's CPU index first
    makefile = (ROOT / "Makefile").read_text()
    assert "TORCH_INDEX ?= https://download.pytorch.org/whl/cpu" in makefile
    pinned = next(r for r in EXTRAS["train"] if _name(r) == "torch")
    assert f"TORCH := {pinned}" in makefile and "--extra-index-url $(TORCH_INDEX) $(TORCH)" in makefile


MAX_FUNCTION_LINES, MAX_MODULE_LINES = 80, 450  # past these a reader loses the thread: split into named steps


def test_no_function_or_module_in_the_package_outgrows_a_reading():
    too_long = []
    for path in sorted((ROOT / "edgebert").rglob("*.py")):
        source = path.read_text()
        where = path.relative_to(ROOT).as_posix()
        if source.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{where}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            length = node.end_lineno - node.lineno + 1 if hasattr(node, "end_lineno") else 0
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and length > MAX_FUNCTION_LINES:
                too_long.append(f"{where}: {node.name} is {length} lines")
    assert too_long == [], too_long


def test_test_modules_share_helpers_through_conftest_only():
    crossing = [
        f"{path.name}: {line.strip()}"
        for path in sorted((ROOT / "tests").glob("test_*.py"))
        for line in path.read_text().splitlines()
        if re.match(r"\s*from \.test_\w+ import", line)
    ]
    assert crossing == [], crossing
