"""What the CPU can do and how many cores this process may use. Pure stdlib: used at export and run time."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuInfo:
    model: str
    arch: str
    flags: frozenset[str]

    @property
    def isa(self) -> str:
        """The instruction-set family that decides which INT8 kernels ONNX Runtime uses.

        One of: avx512-vnni, avx-vnni, avx512, avx2, arm64, generic.
        """
        if self.arch in ("arm64", "aarch64"):
            return "arm64"
        if "avx512_vnni" in self.flags or "avx512vnni" in self.flags:
            return "avx512-vnni"
        if "avx_vnni" in self.flags:
            return "avx-vnni"
        if "avx512f" in self.flags:
            return "avx512"
        if "avx2" in self.flags:
            return "avx2"
        return "generic"

    @property
    def notable_flags(self) -> list[str]:
        wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
        found = [f for f in wanted if f in self.flags]
        if self.arch in ("arm64", "aarch64"):
            found += [f for f in ("asimddp", "i8mm", "bf16") if f in self.flags]
        return found


def cpu_info() -> CpuInfo:
    arch = platform.machine().lower()
    model, flags = platform.processor() or arch, set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("", arch):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    elif arch in ("arm64", "aarch64"):
        flags = {"asimddp"}  # every Apple-silicon and most ARMv8.2+ server cores have the dot product
    return CpuInfo(model=model, arch=arch, flags=frozenset(flags))


def usable_cpu_count() -> int:
    """CPUs this process may actually use: affinity mask, then the cgroup CPU quota; never the host count."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return max(1, count)


def _cgroup_cpu_quota() -> float | None:
    v2 = Path("/sys/fs/cgroup/cpu.max")
    try:
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1_quota = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        v1_period = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
        if v1_quota.exists() and v1_period.exists():
            quota = int(v1_quota.read_text())
            return None if quota <= 0 else quota / int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return None
