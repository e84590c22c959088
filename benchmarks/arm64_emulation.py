"""ARM64 correctness under emulation: the `arm64` recipe's artifact and a fleet bundle, run by aarch64 Python with
aarch64 wheels of numpy, tokenizers and onnxruntime under Debian's qemu-user, against the x86 answers.

    python benchmarks/arm64_emulation.py --artifact runs/bbc/arm64 --fleet runs/bbc/fleet \\
        --data bbc_news:dev --texts 64 --out benchmarks/results/arm64_emulation.json

Set-up (cached in --work; needs root, apt-get and qemu-user, i.e. `make arm64-check`): Debian's arm64 packages of
Python 3.11 and its libraries unpacked into a sysroot, the aarch64 manylinux wheels from PyPI unpacked beside
edgebert itself. qemu-user shows the host's /proc/cpuinfo to the emulated program, where onnxruntime's CPU probe
crashes and edgebert would read x86 flags; so each run gets the /proc/cpuinfo of the CPU qemu emulates (PROFILES:
the Graviton 3 fixture in tests/fixtures/cpu, with its Features line cut down for the older cores) bound over the
host's in a private mount namespace.

Checked on the main profile (Neoverse N1: Graviton 2, Ampere Altra; ARMv8.2 with dot product): the artifact loads
(checksums, golden replay), its conformance kit gives the recorded ids, its labels on --texts dev texts equal the
x86 runtime's and the logits agree within the golden tolerance, and the fleet bundle picks its `arm64` variant.
On every profile: the golden texts' largest |logit difference| against what x86 recorded. ARM speed is not
measured here (emulation is not a speed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEBS = [
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "libexpat1",
    "zlib1g",
    "libssl3",
    "libffi8",
    "libgcc-s1",
    "libstdc++6",
    "libbz2-1.0",
    "liblzma5",
    "libsqlite3-0",
    "libuuid1",
    "libncursesw6",
    "libtinfo6",
    "libreadline8",
    "libdb5.3",
    "libgdbm6",
    "libcrypt1",
    "libnsl2",
    "libtirpc3",
]
WHEELS = ["numpy<2.4", "tokenizers==0.22.2", "onnxruntime==1.32.0"]
PLATFORMS = ["manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_27_aarch64", "manylinux_2_28_aarch64"]
ARM_CPUINFO = ROOT / "tests" / "fixtures" / "cpu" / "linux-arm64-graviton3.txt"
# name -> (QEMU_CPU, the Features line its /proc/cpuinfo shows, CPU part); ARMv8.0 up to SVE
PROFILES = {
    "cortex-a72 (ARMv8.0: Raspberry Pi 4)": ("cortex-a72", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid", "0xd08"),
    "neoverse-n1 (ARMv8.2 + dot product: Graviton 2)": (
        "neoverse-n1",
        "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs",
        "0xd0c",
    ),
    "i8mm without SVE (as Apple M2 exposes)": ("max,sve=off", None, "0xd40"),  # the fixture's flags less SVE
    "neoverse-v1 (SVE, i8mm: Graviton 3)": ("max", "", "0xd40"),  # the fixture as captured
}
MAIN_PROFILE = "neoverse-n1 (ARMv8.2 + dot product: Graviton 2)"

GOLDEN = """
import json, sys
import numpy as np
from edgebert import Classifier
clf = Classifier.load(sys.argv[1], check_golden=False)  # replayed here, to measure rather than refuse
ids, types = clf.encoder.encode(clf.manifest.golden.texts)
worst = 0.0
for i, t, recorded in zip(ids, types, clf.manifest.golden.logits):
    out = clf.backend.run(np.array([i]), np.ones((1, len(i)), np.int64), np.array([t]))
    worst = max(worst, float(np.max(np.abs(out[0] - np.asarray(recorded)))))
print(json.dumps(worst))
"""

EMULATED = """
import json, platform, sys
from edgebert import Classifier
from edgebert.core.cpu import cpu_info
artifact, fleet, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
clf = Classifier.load(artifact)  # checksums and the golden replay, on the emulated CPU
chosen = Classifier.load(fleet)
print(json.dumps({
    "machine": platform.machine(), "isa": cpu_info().isa,
    "logits": clf.predict_logits(texts).tolist(), "fleet_variant": chosen.variant,
}))
"""


def prepare(work: Path) -> tuple[Path, str]:
    """(the aarch64 python, its PYTHONPATH), set up once in `work`."""
    sysroot, site, package = work / "sysroot", work / "site", work / "edgebert-site"
    python = sysroot / "usr" / "bin" / "python3.11"
    if not python.is_file():
        debs = work / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "--add-architecture", "arm64"], check=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "download", *(f"{d}:arm64" for d in DEBS)], cwd=debs, check=True)
        for deb in debs.glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(sysroot)], check=True)
    if not (site / "onnxruntime").is_dir():
        wheels = work / "wheels"
        platforms = [x for p in PLATFORMS for x in ("--platform", p)]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--only-binary=:all:",
                *platforms,
                "--python-version",
                "311",
            ]
            + ["--implementation", "cp", "--no-deps", "-d", str(wheels), *WHEELS],
            check=True,
        )
        for wheel in wheels.glob("*.whl"):
            subprocess.run([sys.executable, "-m", "zipfile", "-e", str(wheel), str(site)], check=True)
    shutil.rmtree(package, ignore_errors=True)  # edgebert itself, pure Python: always this checkout's
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(package), str(ROOT)],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return python, f"{package}:{site}"


def cpuinfo_for(profile: str, work: Path) -> tuple[Path, str]:
    """(a /proc/cpuinfo file for the profile, its QEMU_CPU)."""
    qemu_cpu, features, part = PROFILES[profile]
    text = ARM_CPUINFO.read_text()
    lines = []
    for line in text.splitlines():
        if line.startswith("Features") and features is None:  # the captured flags without SVE
            kept = [f for f in line.split(":", 1)[1].split() if not f.startswith("sve")]
            line = "Features\t: " + " ".join(kept)
        elif line.startswith("Features") and features:
            line = "Features\t: " + features
        elif line.startswith("CPU part"):
            line = f"CPU part\t: {part}"
        lines.append(line)
    path = work / f"cpuinfo-{qemu_cpu.replace(',', '_').replace('=', '-')}"
    path.write_text("\n".join(lines) + "\n")
    return path, qemu_cpu


def emulated_command(
    python: Path, pythonpath: str, work: Path, args: list[str], profile: str = MAIN_PROFILE
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) that run `python args` under qemu-aarch64 with the profile's /proc/cpuinfo bound over
    the host's. Every path is absolute: the command runs after `cd /` (so no edgebert is imported from the cwd)."""
    work = work.resolve()
    cpuinfo, qemu_cpu = cpuinfo_for(profile, work)
    paths = ":".join(str(Path(p).resolve()) for p in pythonpath.split(":"))
    env = {**os.environ, "QEMU_LD_PREFIX": str(work / "sysroot"), "PYTHONPATH": paths, "HF_HUB_OFFLINE": "1"}
    env["QEMU_CPU"] = qemu_cpu
    command = " ".join(["qemu-aarch64", _quote(str(python.resolve())), *(_quote(a) for a in args)])
    script = f"mount --bind {_quote(str(cpuinfo))} /proc/cpuinfo && cd / && exec {command}"
    return ["unshare", "-m", "sh", "-c", script], env


def run_emulated(python: Path, pythonpath: str, work: Path, args: list[str], profile: str = MAIN_PROFILE) -> str:
    argv, env = emulated_command(python, pythonpath, work, args, profile)
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        said = (out.stderr or out.stdout or "(no output)")[-3000:]
        raise SystemExit(f"emulated run failed (exit {out.returncode}; {argv[-1][:300]}):\n{said}")
    return out.stdout


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True, help="exported with --target arm64")
    parser.add_argument("--fleet", type=Path, required=True, help="a bundle with an `arm64` variant and others")
    parser.add_argument("--data", default="bbc_news:dev")
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--work", type=Path, default=Path("runs/arm64-emulation"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.work = args.work.resolve()
    for tool in ("qemu-aarch64", "unshare", "dpkg", "apt-get"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: run on Debian as root with qemu-user installed (`make arm64-check`)")
    from edgebert import Classifier
    from edgebert.core.cpu import cpu_info
    from edgebert.data.load import load_dataset

    texts = load_dataset(args.data).texts[: args.texts]
    host = Classifier.load(args.artifact, allow_saturation=True)  # full-range weights: exact on VNNI hosts
    host_logits = np.concatenate([host.predict_logits([t]) for t in texts])
    python, pythonpath = prepare(args.work)
    started = time.perf_counter()
    artifact, fleet = str(args.artifact.resolve()), str(args.fleet.resolve())
    golden_by_profile = {
        name: json.loads(run_emulated(python, pythonpath, args.work, ["-c", GOLDEN, artifact], name))
        for name in PROFILES
    }
    emulated = json.loads(
        run_emulated(python, pythonpath, args.work, ["-c", EMULATED, artifact, fleet, json.dumps(texts)])
    )
    verify = json.loads(
        run_emulated(python, pythonpath, args.work, ["-m", "edgebert.cli", "verify", artifact, "--json"])
    )
    arm_logits = np.asarray(emulated["logits"])
    atol = host.manifest.golden.atol
    labels_equal = int((arm_logits.argmax(1) == host_logits.argmax(1)).sum())
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "host_cpu": cpu_info().record(),
        "emulated": {
            "machine": emulated["machine"],
            "isa": emulated["isa"],
            "main_profile": MAIN_PROFILE,
            "how": "qemu-user (Debian) running Debian's arm64 Python 3.11 with PyPI's aarch64 wheels; each profile's "
            "/proc/cpuinfo (from tests/fixtures/cpu/linux-arm64-graviton3.txt) bound over the host's",
            "wheels": WHEELS,
        },
        "golden_max_abs_diff_by_profile": golden_by_profile,
        "artifact": str(args.artifact),
        "verify": verify,
        "data": f"{args.data}, first {len(texts)} texts, one text per call on both",
        "labels_equal": f"{labels_equal} of {len(texts)}",
        "max_abs_logit_diff": float(np.max(np.abs(arm_logits - host_logits))),
        "golden_atol": atol,
        "fleet": {"bundle": str(args.fleet), "variant_chosen_under_emulation": emulated["fleet_variant"]},
        "seconds_emulated": round(time.perf_counter() - started, 1),
        "speed": "not measured: emulation says nothing about ARM speed",
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("host_cpu",)}, indent=2)[:3000])
    ok = labels_equal == len(texts) and result["max_abs_logit_diff"] <= atol
    ok = ok and emulated["fleet_variant"] == "arm64" and emulated["machine"] == "aarch64"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
