"""benchmarks/arm64_emulation.py builds its qemu command with absolute paths: it runs after `cd /`, so a relative
--work (the default, runs/arm64-emulation) once made `make arm64-check` fail from a fresh clone."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("arm64_emulation", ROOT / "benchmarks" / "arm64_emulation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_path_in_the_emulated_command_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = _script()
    work = Path("runs/arm64-emulation")  # relative, as the default
    work.mkdir(parents=True)
    python = work / "sysroot" / "usr" / "bin" / "python3.11"
    argv, env = script.emulated_command(python, f"{work}/edgebert-site:{work}/site", work, ["-c", "print(1)"])
    assert argv[:3] == ["unshare", "-m", "sh"]
    words = shlex.split(argv[-1])
    bound, qemu_python = words[words.index("--bind") + 1], words[words.index("qemu-aarch64") + 1]
    assert words[words.index("&&") + 1 : words.index("&&") + 3] == ["cd", "/"]  # it does leave the cwd
    for path in (bound, qemu_python, env["QEMU_LD_PREFIX"], *env["PYTHONPATH"].split(":")):
        assert Path(path).is_absolute() and Path(path).is_relative_to(tmp_path), path
    assert Path(bound).is_file()  # the profile's /proc/cpuinfo was written where the command looks
