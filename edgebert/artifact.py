"""The artifact bundle: the only thing the runtime reads, and the only contract between build and run time.

Layout of a bundle directory:
    edgebert.json    manifest (see `Manifest`)
    model.onnx       (ORT backend) or model.xml + model.bin (OpenVINO backend)
    tokenizer.json   the exact tokenizer used in training

Torch-free: imported by the runtime.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArtifactError, ArtifactExistsError

MANIFEST = "edgebert.json"
FORMAT_VERSION = 1


@dataclass
class GoldenSample:
    """Texts with the token ids and logits the artifact produced at export; replayed at load."""

    texts: list[str]
    input_ids: list[list[int]]
    logits: list  # per text: [num_labels] floats, or [tokens][num_labels] for token classification
    atol: float  # allowed max |Δlogit| on another machine (INT8 kernels differ slightly by CPU)


@dataclass
class Manifest:
    task: str  # "text-classification"
    labels: list[str]
    max_length: int
    backend: str  # "onnxruntime" | "openvino"
    precision: str  # "fp32" | "int8"
    model_files: list[str]  # e.g. ["model.onnx"]
    files: dict[str, str]  # file name -> sha256, for every file but the manifest
    quantization: dict[str, Any] | None = None
    optimization: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    golden: GoldenSample | None = None
    evaluation: dict[str, Any] | None = None  # accuracy/drift measured at export, when an eval set was given
    source: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: Path) -> Manifest:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"{where} has format version {version}; this edgebert reads version {FORMAT_VERSION}. "
                "Re-export the artifact with this edgebert version."
            )
        try:
            golden = data.pop("golden", None)
            manifest = cls(**data)
        except TypeError as exc:
            raise ArtifactError(f"{where} is not a valid edgebert manifest ({exc}). Re-export the artifact.") from exc
        manifest.golden = GoldenSample(**golden) if golden else None
        return manifest


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(bundle: Path) -> Manifest:
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise ArtifactError(f"Artifact not found: {bundle} is not a directory. Create one with `edgebert export`.")
    path = bundle / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{bundle} is not an edgebert artifact: {MANIFEST} is missing. Run `edgebert export`.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is corrupt ({exc}). Re-export the artifact.") from exc
    return Manifest.from_dict(data, path)


def verify_files(bundle: Path, manifest: Manifest) -> None:
    """Refuse a bundle whose files are missing, truncated or altered, naming the file."""
    for name, expected in manifest.files.items():
        path = Path(bundle) / name
        if not path.is_file():
            raise ArtifactError(f"Artifact {bundle} is missing {name}. Re-export it or copy the whole directory.")
        if sha256_file(path) != expected:
            raise ArtifactError(
                f"Artifact file {path} does not match its checksum in {MANIFEST}: it was truncated or altered. "
                "Re-export or re-copy the artifact."
            )


def write_manifest(bundle: Path, manifest: Manifest) -> None:
    """Checksum every file in the bundle and write the manifest last."""
    bundle = Path(bundle)
    manifest.files = {p.name: sha256_file(p) for p in sorted(bundle.iterdir()) if p.is_file() and p.name != MANIFEST}
    (bundle / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")


def check_writable(out: Path, force: bool) -> None:
    """Fail early, before any slow work, when `out` exists and --force was not given."""
    if Path(out).exists() and not force:
        raise ArtifactExistsError(f"{out} already exists; pass --force to overwrite it, or choose another --out.")


@contextlib.contextmanager
def atomic_directory(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield an empty staging directory next to `out`; on success, move it into place.

    On any error the staging directory is removed and `out` is untouched. With `force`, an existing
    `out` is replaced only after the new one is complete.
    """
    out = Path(out)
    check_writable(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield staging
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
