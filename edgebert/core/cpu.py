"""What the CPU can do and how many cores this process may use, on Linux, macOS and Windows (x86 and arm64).

Instruction-set flags come from the platform's own source, normalized to Linux's flag names
(`avx2`, `avx512_vnni`, `avx512_bf16`, `asimddp`, ...):
  - Linux:   /proc/cpuinfo (`flags` on x86, `Features` on arm64)
  - macOS:   sysctl (`machdep.cpu.*features` on x86, `hw.optional.arm.FEAT_*` on Apple silicon)
  - Windows: CPUID, as read by numpy's runtime dispatcher (numpy is a base dependency and maintains it)
Each parser is a pure function, unit-tested on recorded output of each platform (tests/fixtures/cpu/).
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import InputError

NOTABLE_X86 = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
NOTABLE_ARM = ("asimddp", "i8mm", "bf16")
# numpy's CPU-dispatch feature names -> Linux flag names
NUMPY_FLAGS = {
    "AVX2": "avx2",
    "AVX512F": "avx512f",
    "AVX512VNNI": "avx512_vnni",
    "AVX512BF16": "avx512_bf16",
    "ASIMDDP": "asimddp",
}
# macOS sysctl names -> Linux flag names
SYSCTL_X86_FLAGS = {
    "AVX2": "avx2",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX512F": "avx512f",
    "AVX512BW": "avx512bw",
    "AVX512VL": "avx512vl",
    "AVX512DQ": "avx512dq",
    "AVX512CD": "avx512cd",
    "AVX512VNNI": "avx512_vnni",
    "AVX512BF16": "avx512_bf16",
    "AVX512BITALG": "avx512_bitalg",
    "GFNI": "gfni",
    "VAES": "vaes",
    "VPCLMULQDQ": "vpclmulqdq",
}
SYSCTL_ARM_FLAGS = {"FEAT_DotProd": "asimddp", "FEAT_I8MM": "i8mm", "FEAT_BF16": "bf16"}


# The one ISA vocabulary: the instruction-set families that decide which INT8 kernels ONNX Runtime uses.
# CpuInfo.isa names one; recipes, fleet preferences and manifests are keyed by these.
AVX512_VNNI, AVX_VNNI, AVX512, AVX2, ARM64, GENERIC = "avx512-vnni", "avx-vnni", "avx512", "avx2", "arm64", "generic"
ISAS = (AVX512_VNNI, AVX_VNNI, AVX512, AVX2, ARM64, GENERIC)
VNNI_ISAS = (AVX512_VNNI, AVX_VNNI)  # INT8 dot products without 16-bit saturation
SATURATING_ISAS = (AVX512, AVX2, GENERIC)  # x86 U8S8 kernels that add pairs of products in saturating 16-bit


# Microarchitecture by the features it adds, most specific first (vendor, name, flags that must all be present).
# A fallback for archspec (used where installed): named by features, never by the model number, because VMs
# report whatever family/model the hypervisor chooses and hide some features; read a name as "at least".
MICROARCHITECTURES = (
    ("GenuineIntel", "sapphirerapids", {"amx_tile", "amx_int8", "amx_bf16", "avx512_fp16"}),
    ("GenuineIntel", "cooperlake", {"avx512_bf16", "avx512_vnni", "avx512f"}),
    ("GenuineIntel", "icelake", {"avx512_vnni", "avx512_bitalg", "gfni", "vaes"}),
    ("GenuineIntel", "cascadelake", {"avx512_vnni", "avx512f"}),
    ("GenuineIntel", "skylake_avx512", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"}),
    ("GenuineIntel", "alderlake", {"avx_vnni", "avx2", "gfni"}),
    ("GenuineIntel", "haswell", {"avx2", "fma", "bmi2"}),
    ("AuthenticAMD", "zen5", {"avx_vnni", "avx512f"}),  # Zen 4 has AVX-512 VNNI but not the VEX avx_vnni
    ("AuthenticAMD", "zen4", {"avx512f", "avx512_vnni", "avx512_bf16"}),
    ("AuthenticAMD", "zen3", {"avx2", "vaes", "vpclmulqdq"}),
    ("AuthenticAMD", "zen2", {"avx2", "clwb", "clzero"}),
    ("AuthenticAMD", "zen", {"avx2", "clzero"}),
    ("", "x86_64_v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
    ("", "x86_64_v3", {"avx2", "fma", "bmi2"}),
)


def microarchitecture_from_flags(vendor: str, arch: str, flags: frozenset[str] | set[str]) -> str:
    """The most specific microarchitecture whose features are all present ('' where none matches)."""
    if normalize_arch(arch) != "x86_64":
        return ""
    for who, name, needed in MICROARCHITECTURES:
        if who in ("", vendor) and needed <= flags:
            return name
    return ""


def flags_contradict(name: str, by_flags: str) -> bool:
    """True where the flags prove a later microarchitecture than `name` (both in MICROARCHITECTURES' order, most
    specific first): archspec matches some hypervisor-reported models by number before features."""
    order = [entry[1] for entry in MICROARCHITECTURES]
    return name in order and by_flags in order and order.index(by_flags) < order.index(name)


@dataclass(frozen=True)
class CpuInfo:
    model: str
    arch: str  # "x86_64" or "arm64"
    flags: frozenset[str]
    source: str = ""  # where the flags came from
    identity: str = ""  # "GenuineIntel family 6 model 167 stepping 8": model names lie on VMs (Linux only)
    is_host: bool = False  # read from this machine (cpu_info), so archspec may name it

    @cached_property
    def _named(self) -> tuple[str, str]:
        """(microarchitecture, where the name came from), worked out only when a report asks: loading a model
        never pays for archspec."""
        by_flags = microarchitecture_from_flags(self.vendor, self.arch, self.flags)
        name, source = _archspec_name() if self.is_host else ("", "")
        if name and flags_contradict(name, by_flags):  # e.g. AMX on a CPU archspec calls Ice Lake: the flags win
            return by_flags, f"edgebert table (by flags; {source} said {name})"
        if not name:
            name, source = by_flags, "edgebert table" if by_flags else ""
        return name, source

    @property
    def microarchitecture(self) -> str:
        """By features: archspec's name for this host where installed, else MICROARCHITECTURES'."""
        return self._named[0]

    @property
    def microarchitecture_source(self) -> str:
        """ "archspec X.Y" or "edgebert table"."""
        return self._named[1]

    @property
    def vendor(self) -> str:
        return self.identity.split()[0] if " family " in self.identity else ""

    @property
    def virtualized(self) -> bool:
        return "hypervisor" in self.flags

    @property
    def isa(self) -> str:
        """The instruction-set family that decides which INT8 kernels ONNX Runtime uses.

        One of ISAS.
        """
        if normalize_arch(self.arch) == ARM64:
            return ARM64
        if "avx512_vnni" in self.flags:
            return AVX512_VNNI
        if "avx_vnni" in self.flags:
            return AVX_VNNI
        if "avx512f" in self.flags:
            return AVX512
        if "avx2" in self.flags:
            return AVX2
        return GENERIC

    @property
    def saturates_u8s8(self) -> bool:
        """True where ONNX Runtime's U8S8 kernels add pairs of products in saturating 16-bit (x86 without VNNI):
        INT8 weights must then be 7-bit (reduce_range), or some outputs are silently wrong."""
        return self.isa in SATURATING_ISAS

    @property
    def native_bf16(self) -> bool:
        return bool({"avx512_bf16", "amx_bf16"} & self.flags)

    @property
    def notable_flags(self) -> list[str]:
        wanted = NOTABLE_ARM if normalize_arch(self.arch) == "arm64" else NOTABLE_X86
        return [f for f in wanted if f in self.flags]

    def record(self) -> dict[str, object]:
        """What a results file says about the CPU a number was measured on, and the machine's state then."""
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return {
            "model_name": self.model,
            "vendor": self.vendor,
            "identity": self.identity,
            "microarchitecture": self.microarchitecture,
            "microarchitecture_source": self.microarchitecture_source,
            "microarchitecture_by_edgebert_table": microarchitecture_from_flags(self.vendor, self.arch, self.flags),
            "arch": self.arch,
            "isa": self.isa,
            "flags": self.notable_flags,
            "virtualized": self.virtualized,
            "threads": usable_cpu_count(),
            "load_1min_at_start": None if load is None else round(load, 2),
        }

    def label(self) -> str:
        """One line for tables: microarchitecture (by features), ISA, identity; the model name only without one."""
        name = self.microarchitecture or self.model
        identity = f"; {self.identity}" if self.identity else ""
        vm = ", VM" if self.virtualized else ""
        return f"{name} ({self.isa}{identity}{vm})"


def normalize_arch(machine: str) -> str:
    machine = machine.lower()
    if machine in ("arm64", "aarch64", "armv8", "armv8l"):
        return "arm64"
    if machine in ("x86_64", "amd64", "x64", "i686", "i386", "x86"):
        return "x86_64"
    return machine


def parse_proc_cpuinfo(text: str) -> tuple[str, set[str]]:
    """(model name, flags) from Linux's /proc/cpuinfo, x86 or arm64."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "Hardware") and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model, flags


def parse_cpu_identity(text: str) -> str:
    """'VENDOR family F model M stepping S' from Linux's /proc/cpuinfo (x86), or '' where it says none."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("vendor_id", "cpu family", "model", "stepping", "CPU implementer", "CPU part") and key not in fields:
            fields[key] = value.strip()
    if "cpu family" in fields:
        return (
            f"{fields.get('vendor_id', '?')} family {fields['cpu family']} model {fields.get('model', '?')} "
            f"stepping {fields.get('stepping', '?')}"
        )
    if "CPU implementer" in fields:  # arm64
        return f"implementer {fields['CPU implementer']} part {fields.get('CPU part', '?')}"
    return ""


def parse_sysctl(text: str) -> tuple[str, set[str]]:
    """(model name, flags) from macOS `sysctl machdep.cpu hw.optional` output ("key: value" lines)."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    flags = set()
    for key in ("machdep.cpu.features", "machdep.cpu.leaf7_features", "machdep.cpu.extfeatures"):
        flags |= {SYSCTL_X86_FLAGS[name] for name in values.get(key, "").split() if name in SYSCTL_X86_FLAGS}
    for name, flag in SYSCTL_ARM_FLAGS.items():
        if values.get(f"hw.optional.arm.{name}") == "1":
            flags.add(flag)
    return values.get("machdep.cpu.brand_string", ""), flags


def flags_from_numpy(features: dict[str, bool]) -> set[str]:
    """Flags from numpy's runtime CPU-dispatch table (CPUID on x86; HWCAP/sysctl/registry on ARM)."""
    return {flag for name, flag in NUMPY_FLAGS.items() if features.get(name)}


# A saved /proc/cpuinfo to read instead of this host's: every choice edgebert makes by CPU (recipe, fleet variant,
# --tune target, refusals, bf16) then follows that CPU. For tests and "what would it do on X" checks; kernels still
# run on the real CPU, so only simulate a CPU the host can stand in for (one with fewer features).
SIMULATED_CPUINFO = "EDGEBERT_CPUINFO"


def cpu_info() -> CpuInfo:
    simulated = os.environ.get(SIMULATED_CPUINFO)
    if simulated:
        return simulated_cpu_info(Path(simulated))
    system, arch = platform.system(), normalize_arch(platform.machine())
    model, flags, source, identity = "", set(), "", ""
    if system == "Linux" and Path("/proc/cpuinfo").is_file():
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        model, flags = parse_proc_cpuinfo(text)
        source, identity = "/proc/cpuinfo", parse_cpu_identity(text)
    elif system == "Darwin":
        model, flags = parse_sysctl(_run(["sysctl", "machdep.cpu", "hw.optional"]))
        source = "sysctl"
    if not flags:
        flags, source = flags_from_numpy(_numpy_features()), "numpy cpu dispatch (CPUID)"
    if system == "Windows" and not model:
        model = _windows_cpu_name()
    model = model or platform.processor() or arch
    return CpuInfo(model, arch, frozenset(flags), source, identity, is_host=True)


def simulated_cpu_info(path: Path) -> CpuInfo:
    """The CpuInfo of a saved Linux /proc/cpuinfo (x86 or arm64), never named by archspec (which reads the host)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise InputError(
            f"{SIMULATED_CPUINFO}={path} cannot be read ({exc.strerror}); unset it to use this CPU."
        ) from None
    model, flags = parse_proc_cpuinfo(text)
    if not flags:
        raise InputError(f"{SIMULATED_CPUINFO}={path} has no 'flags' or 'Features' line; give a copy of /proc/cpuinfo.")
    arch = "arm64" if "CPU implementer" in text else "x86_64"
    return CpuInfo(model or arch, arch, frozenset(flags), f"{path} ({SIMULATED_CPUINFO})", parse_cpu_identity(text))


def _archspec_name() -> tuple[str, str]:
    """archspec's name for this host's microarchitecture, where archspec is installed."""
    try:
        import archspec
        import archspec.cpu
    except ImportError:
        return "", ""
    try:
        return archspec.cpu.host().name, f"archspec {archspec.__version__}"
    except Exception:  # archspec cannot read this host: fall back to the table
        return "", ""


def usable_cpu_count() -> int:
    """CPUs this process may actually use: affinity mask, then a Linux cgroup CPU quota; never the host count."""
    try:
        count = len(os.sched_getaffinity(0))  # Linux
    except (AttributeError, OSError):
        process_count = getattr(os, "process_cpu_count", None)  # Python 3.13+: affinity on Windows too
        count = (process_count() if process_count else None) or os.cpu_count() or 1
    quota = cgroup_cpu_quota(Path("/sys/fs/cgroup"))
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return max(1, count)


def cgroup_cpu_quota(root: Path) -> float | None:
    """The CPU quota in cores from cgroup v2 (cpu.max) or v1 (cfs quota/period); None when unlimited or absent
    (no cgroups on macOS and Windows)."""
    v2 = root / "cpu.max"
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1_quota, v1_period = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
        if v1_quota.is_file() and v1_period.is_file():
            quota = int(v1_quota.read_text())
            return None if quota <= 0 else quota / int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return None


def _numpy_features() -> dict[str, bool]:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_features__  # numpy 1.x
        except ImportError:
            return {}
    return dict(__cpu_features__)


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _windows_cpu_name() -> str:
    try:
        import winreg

        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0")
        return str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip()
    except (ImportError, OSError):
        return ""
