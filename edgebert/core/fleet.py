"""A fleet bundle: one directory holding several variants of the same model, the runtime picking one per CPU.

    fleet.json        the index below (validated at load like a manifest)
    <variant>/        a complete artifact (core/artifact.py) per variant: its own manifest, files, golden sample

Apps ship one bundle to laptops with AVX2, desktops with VNNI and ARM machines. At load, `choose_variant`
walks the bundle's preference list for this CPU's instruction-set family and takes the first variant that is
safe here (a full-range u8xs8 INT8 variant saturates on x86 without VNNI) and whose engine is installed. The
index pins each variant's manifest by sha256, so a swapped variant directory is refused; the variant's own
manifest pins its files. Torch-free, numpy-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .artifact import MANIFEST, Manifest, is_full_range_u8s8, is_plain_name, read_manifest
from .cpu import ISAS, CpuInfo
from .errors import ArtifactError
from .files import sha256_file

FLEET = "fleet.json"
FLEET_FORMAT_VERSION = 1
MAX_FLEET_BYTES = 1 << 20


@dataclass
class Fleet:
    task: str
    variants: dict[str, str]  # variant directory name -> sha256 of its edgebert.json
    preference: dict[str, list[str]]  # ISA family -> variant names, best first
    format_version: int = FLEET_FORMAT_VERSION
    notes: dict[str, str] = field(default_factory=dict)  # ISA family -> why this order (e.g. a measurement)


@dataclass
class Choice:
    name: str | None  # None: a plain artifact, not a bundle's variant
    path: Path
    skipped: dict[str, str]  # variant -> why it was not taken (only variants ranked above the choice)
    manifest: Manifest | None = None  # the chosen variant's, read and pinned-checked once


def is_fleet(path: str | Path) -> bool:
    return (Path(path) / FLEET).is_file() and not (Path(path) / MANIFEST).exists()


def artifact_task(path: str | Path) -> str:
    """The task of an artifact or a fleet bundle (callers that pick the front door before loading)."""
    return read_fleet(path).task if is_fleet(path) else read_manifest(Path(path)).task


def artifact_fingerprint(path: str | Path) -> dict[str, str]:
    """Checksums that change when the artifact (or any variant of a bundle) changes."""
    return read_fleet(path).variants if is_fleet(path) else read_manifest(Path(path)).files


def read_fleet(bundle: str | Path) -> Fleet:
    bundle = Path(bundle)
    path = bundle / FLEET
    try:
        if path.stat().st_size > MAX_FLEET_BYTES:
            raise ArtifactError(f"{path} is over 1 MB; no real fleet index is. Rebuild it with `edgebert bundle`.")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ArtifactError(f"Cannot read {path} ({exc.strerror}); check its permissions.") from exc
    except (ValueError, RecursionError) as exc:
        raise ArtifactError(f"{path} is corrupt ({exc}). Rebuild it with `edgebert bundle`.") from exc
    return _validate(data, path)


def _validate(data: object, where: Path) -> Fleet:
    def bad(problem: str) -> ArtifactError:
        return ArtifactError(f"{where}: {problem}. Rebuild the bundle with `edgebert bundle`.")

    if not isinstance(data, dict) or data.get("format_version") != FLEET_FORMAT_VERSION:
        raise bad(f"not a fleet index of format version {FLEET_FORMAT_VERSION}")
    variants, preference, task = data.get("variants"), data.get("preference"), data.get("task")
    if not isinstance(task, str):
        raise bad("field 'task' must be a string")
    _check_variants(variants, bad)
    _check_preference(preference, variants, bad)
    notes = data.get("notes", {})
    if not isinstance(notes, dict) or not all(isinstance(v, str) for v in notes.values()):
        raise bad("field 'notes' must map ISA families to strings")
    return Fleet(task=task, variants=variants, preference=preference, notes=notes)


def _check_variants(variants: object, bad) -> None:
    if not isinstance(variants, dict) or not variants:
        raise bad("field 'variants' must map at least one variant directory to its manifest's sha256")
    for name, digest in variants.items():
        if not is_plain_name(name):
            raise bad(f"variant {name!r} is not a plain directory name inside the bundle")
        if not isinstance(digest, str) or len(digest) != 64:
            raise bad(f"variant {name!r} has no sha256 of its manifest")


def _check_preference(preference: object, variants: dict, bad) -> None:
    if not isinstance(preference, dict) or set(preference) - set(ISAS):
        raise bad(f"field 'preference' must map ISA families ({', '.join(ISAS)}) to variant lists")
    for isa, names in preference.items():
        if not isinstance(names, list) or not names or any(n not in variants for n in names):
            raise bad(f"preference for {isa} must list variants of this bundle")


def variant_manifest(bundle: Path, fleet: Fleet, name: str) -> Manifest:
    """A variant's manifest, refused if it is not the one the index pinned."""
    path = Path(bundle) / name
    if path.is_symlink() or not path.is_dir():
        raise ArtifactError(f"Bundle {bundle} is missing variant directory {name}. Copy the whole bundle.")
    if sha256_file(path / MANIFEST) != fleet.variants[name]:
        raise ArtifactError(f"Variant {name} in {bundle} is not the one {FLEET} pinned (its manifest changed).")
    manifest = read_manifest(path)
    if manifest.task != fleet.task:
        raise ArtifactError(f"Variant {name} in {bundle} is a {manifest.task} model; the bundle says {fleet.task}.")
    return manifest


def unsafe_reason(manifest: Manifest, cpu: CpuInfo, installed_backends: set[str]) -> str | None:
    """Why this variant must not run here, or None."""
    if manifest.backend not in installed_backends:
        return f"its engine ({manifest.backend}) is not installed"
    if is_full_range_u8s8(manifest.backend, manifest.quantization) and cpu.saturates_u8s8:
        return f"full-range u8xs8 INT8 saturates on {cpu.isa} without VNNI (wrong outputs)"
    return None


def choose_variant(
    bundle: str | Path, cpu: CpuInfo, installed_backends: set[str], *, name: str | None = None
) -> Choice:
    """The variant to run on `cpu`: `name` if given (refused when unsafe), else the first safe one in the
    bundle's preference for this CPU's ISA family (or for 'generic' when the bundle has no entry for it)."""
    bundle = Path(bundle)
    fleet = read_fleet(bundle)
    if name is not None:
        if name not in fleet.variants:
            raise ArtifactError(f"Bundle {bundle} has no variant {name!r}; it has {sorted(fleet.variants)}.")
        manifest = variant_manifest(bundle, fleet, name)
        reason = unsafe_reason(manifest, cpu, installed_backends)
        if reason:
            raise ArtifactError(f"Variant {name} of {bundle} cannot run on this CPU ({cpu.model}): {reason}.")
        return Choice(name, bundle / name, {}, manifest)
    order = fleet.preference.get(cpu.isa) or fleet.preference.get("generic") or list(fleet.variants)
    skipped: dict[str, str] = {}
    for candidate in order:
        manifest = variant_manifest(bundle, fleet, candidate)
        reason = unsafe_reason(manifest, cpu, installed_backends)
        if reason is None:
            return Choice(candidate, bundle / candidate, skipped, manifest)
        skipped[candidate] = reason
    reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
    raise ArtifactError(
        f"No variant of {bundle} can run on this CPU ({cpu.model}, {cpu.isa}): {reasons}. "
        "Add a variant exported with `--target avx2` (safe on every x86 CPU) or install the missing engine."
    )
