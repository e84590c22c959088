"""`edgebert publish`: an artifact laid out as the Hugging Face Hub's ONNX and OpenVINO readers expect, beside its own
files, so one folder opens in edgebert, in transformers.js with its default options and in optimum-intel.

transformers.js opens `onnx/model.onnx` (Node's default dtype) or `onnx/model_quantized.onnx` (the browser's);
optimum-intel's OVModel classes open `openvino_model.xml` and `.bin`. The artifact's own files are copied unchanged
(edgebert.json, the model files, tokenizer.json, the README.md model card, config.json), so its checksums and
signature-free load still hold; the Hub-named files are extra copies of checksummed model files, checked
byte-identical on the way. Load -> validate -> transform -> save, into a new directory (`--force` to replace one).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..core.artifact import read_manifest, verify_files
from ..core.errors import InputError
from ..core.files import atomic_directory, check_writable, sha256_file
from ..core.fleet import is_fleet


def hub_names(backend: str, precision: str) -> dict[str, list[str]]:
    """artifact file -> the names Hub readers look for."""
    if backend == "openvino":
        return {"model.xml": ["openvino_model.xml"], "model.bin": ["openvino_model.bin"]}
    names = ["onnx/model.onnx"] + (["onnx/model_quantized.onnx"] if precision == "int8" else [])
    return {"model.onnx": names}


def publish(artifact: Path, out: Path, *, force: bool = False) -> list[str]:
    """Write the published folder; returns the Hub-named files added."""
    artifact, out = Path(artifact), Path(out)
    if is_fleet(artifact):
        raise InputError(f"{artifact} is a fleet bundle: publish one of its variants (a folder inside it).")
    check_writable(out, force, inputs=(artifact,))
    manifest = read_manifest(artifact)  # load and validate: what is published is what verifies
    verify_files(artifact, manifest)
    added = []
    with atomic_directory(out, force) as staging:
        for name in [*manifest.files, "edgebert.json"]:
            shutil.copyfile(artifact / name, staging / name)
        if read_manifest(staging) != manifest:  # the copies, not only the originals: nothing changed in between
            raise InputError(f"{artifact} changed while it was published; publish it again.")
        verify_files(staging, manifest)
        for source, names in hub_names(manifest.backend, manifest.precision).items():
            for name in names:
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(staging / source, staging / name)
                if sha256_file(staging / name) != manifest.files[source]:
                    raise InputError(f"{artifact / source} changed while it was published; publish it again.")
                added.append(name)
    return added


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows it (no second copy on disk), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
