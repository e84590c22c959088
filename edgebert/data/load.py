"""Data by name or path: the one module that knows both the bundled datasets (bundled.py) and the file readers
(text.py, tokens.py). Stages load data through here."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InputError
from .bundled import BUNDLED, TOKEN_DATASETS, bundled_name, load_bundled, load_bundled_tokens
from .text import TextDataset, load_file, stratified_split
from .tokens import TokenDataset, load_token_file


def load_dataset(
    source: str | Path,
    *,
    split: str = "train",
    text_column: str = "text",
    label_column: str | None = "label",
    text_pair_column: str = "text_pair",
) -> TextDataset:
    """Load a bundled dataset by name (`bbc_news`, `bbc_news:dev`) or a JSONL/CSV/TSV/plain-text file."""
    if name := bundled_name(source):
        return load_bundled(name, str(source).partition(":")[2] or split)
    path = Path(source)
    if path.suffix == "" and (not path.exists() or path.is_dir()):
        raise InputError(f"Data file not found: {path}. Bundled datasets: {', '.join(BUNDLED)}.")
    return load_file(path, text_column=text_column, label_column=label_column, text_pair_column=text_pair_column)


def load_token_data(source: str | Path, split: str = "train") -> TokenDataset:
    """A bundled token dataset (`msra_ner`, `msra_ner:dev`) or a JSONL file of tokens and tags.
    `name:split:N` keeps the first N sentences (a quick run; say so when reporting it)."""
    name = bundled_name(source)
    if name in TOKEN_DATASETS:
        _, _, rest = str(source).partition(":")
        chosen, _, limit = rest.partition(":")
        data = load_bundled_tokens(name, chosen or split)
        if limit:
            if not limit.isdigit() or int(limit) < 1:
                raise InputError(
                    f"{source}: the part after the split must be a sentence count, e.g. msra_ner:train:8000."
                )
            data = TokenDataset(data.words[: int(limit)], data.tags[: int(limit)], f"{data.source}[:{limit}]")
        return data
    return load_token_file(Path(source))


def training_splits(
    data: str, eval_data: str | None, *, seed: int, dev_fraction: float = 0.1, say=lambda _: None, **columns: str
) -> tuple[TextDataset, TextDataset]:
    """(train, dev) for model selection: --eval when given, else a bundled dataset's dev split, else a stratified,
    seeded `dev_fraction` of the training file (said through `say`)."""
    train_data = load_dataset(data, split="train", **columns)
    if eval_data is not None:
        return train_data, load_dataset(eval_data, split="dev", **columns)
    if name := bundled_name(data):
        return train_data, load_dataset(f"{name}:dev", split="dev", **columns)
    train_part, dev_part = stratified_split(train_data, dev_fraction, seed)
    say(f"no --eval given: holding out a stratified {dev_fraction:.0%} of {data} ({len(dev_part)} texts) as dev")
    return train_part, dev_part
