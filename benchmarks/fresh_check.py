"""The README's two commands on a fresh clone: what a new user's first run costs on this machine.

    python3 benchmarks/fresh_check.py [--targets demo test] [--keep]
        ->  benchmarks/results/fresh_check-<cpu>.json

Clones HEAD into a temporary folder with `../shared` beside it (a symlink to this checkout's), then runs each make
target there from nothing, in order, recording for each: wall time, exit code, the tail of its output, and the
venv's size after it. The demo's download size is the size of every wheel its venv holds, fetched again with
`pip download --no-deps` from the same indexes (a clean machine has no pip cache). Runs with the system python3:
the check must not lean on this checkout's venv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def run_target(clone: Path, target: str, log: Path) -> dict:
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(["make", target], cwd=clone, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    tail = log.read_text(errors="replace").splitlines()[-15:]
    return {"target": target, "exit_code": done.returncode, "seconds": round(seconds, 1), "output_tail": tail}


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) if path.is_dir() else 0


def download_bytes(venv: Path, scratch: Path) -> dict:
    """The wheels a clean machine downloads for this venv: each installed distribution, fetched once more."""
    pip = venv / "bin" / "pip"
    listed = subprocess.run([pip, "list", "--format", "json"], capture_output=True, text=True, check=True).stdout
    wanted = [f"{d['name']}=={d['version']}" for d in json.loads(listed) if d["name"] not in ("edgebert", "pip")]
    folder = scratch / "downloads"
    command = [pip, "download", "-q", "--no-deps", "--extra-index-url", TORCH_INDEX, "-d", folder, *wanted]
    done = subprocess.run(command, capture_output=True, text=True)
    sizes = {p.name: p.stat().st_size for p in folder.glob("*")} if folder.is_dir() else {}
    largest = dict(sorted(sizes.items(), key=lambda item: -item[1])[:8])
    return {
        "packages": len(wanted),
        "files": len(sizes),
        "bytes": sum(sizes.values()),
        "largest": largest,
        "complete": done.returncode == 0,
    }


def cpu_record(venv: Path) -> dict:
    """edgebert's own CPU record, read by the clone's venv once the first target has made it."""
    code = "import json; from edgebert.core.cpu import cpu_info; print(json.dumps(cpu_info().record()))"
    done = subprocess.run([venv / "bin" / "python", "-c", code], capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else {"model_name": platform.processor() or "?"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["demo", "test"], help="make targets, run in this order")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone (its path is printed)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="edgebert-fresh-"))
    clone = scratch / "main"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    os.symlink((ROOT.parent / "shared").resolve(), scratch / "shared")
    result = {"commit": head, "when": time.strftime("%Y-%m-%d %H:%M:%S"), "python": platform.python_version()}
    result["runs"] = []
    for target in args.targets:
        print(f"make {target} in {clone} ...", flush=True)
        step = run_target(clone, target, scratch / f"{target}.log")
        step["venv_bytes"] = directory_bytes(clone / ".venv")
        if target == "demo":
            step["download"] = download_bytes(clone / ".venv", scratch)
        result["runs"].append(step)
        print(
            f"  exit {step['exit_code']} in {step['seconds']:.0f} s; venv {step['venv_bytes'] / 1e6:.0f} MB", flush=True
        )
        if step["exit_code"] != 0:
            break
    cpu = result["cpu"] = cpu_record(clone / ".venv")
    name = cpu.get("microarchitecture") or cpu.get("isa") or "cpu"
    out = args.out or ROOT / "benchmarks" / "results" / f"fresh_check-{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    if args.keep:
        print(f"kept {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if all(r["exit_code"] == 0 for r in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
