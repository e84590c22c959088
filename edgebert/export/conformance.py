"""The conformance kit every artifact carries: at least 1,000 strings with the token ids edgebert gives them.

A port of the runtime to another language (a JavaScript or C# tokenizer reading tokenizer.json) passes when it
gives the same ids for every line, and the golden logits in edgebert.json for the golden texts. The strings are
the ones ports get wrong: Chinese and other CJK, full-width punctuation, accents and combining marks, emoji with
modifiers and joiners, control and zero-width characters, right-to-left scripts, very long words and texts, and
empty or blank strings; plus the export's own --eval texts when given.

An artifact that reads long texts in windows (`long_text` "chunk") also carries long texts with the windows it cuts
them into ("windows": ids per window, "truncated") and, for text classifiers, the text's logits (the windows' logits
aggregated, one window per call): a port reproduces both, the logits within the golden tolerance.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..core.artifact import CONFORMANCE, LongText
from ..runtime.tokenization import TextEncoder
from ..runtime.windows import Windows

MIN_STRINGS = 1000

SEGMENTS = {
    "english": ["The match ended 2-1 after extra time.", "Shares of ACME Corp. rose 3.5% on Monday", "don't STOP!"],
    "accents": ["café naïve résumé", "Ångström Øre œuvre", "straße İstanbul ǅemal", "e\u0301le\u0300ve", "São Paulo"],
    "chinese": [
        "今天股市大幅下跌，投资者担忧经济前景。",
        "这家酒店的服务很好",
        "繁體中文與简体中文",
        "中文English混合123",
    ],
    "cjk_other": ["東京は晴れです", "カタカナ ﾊﾝｶｸ", "한국어 문장입니다", "𠀀𠀁 (CJK Extension B)"],
    "fullwidth": ["，。！？：；", "「引号」『书名』（括号）", "ＡＢＣ１２３％＆", "　全角空格　"],
    "emoji": ["😀", "👍🏽 great", "👨\u200d👩\u200d👧 family", "🇫🇷🇨🇳", "❤️🔥", "a😀b"],
    "control": [
        "tab\there",
        "nul\x00byte",
        "bell\x07",
        "zero\u200bwidth",
        "\ufeffBOM",
        "soft\u00adhyphen",
        "line\u2028sep",
        "\r\n",
    ],
    "rtl": ["مرحبا بالعالم", "שלום עולם", "mixed עברית and English"],
    "symbols": [
        "x² + y² = z²",
        "€100 ≈ $108",
        "https://example.com/a?b=c&d=e",
        "user@example.org",
        "#hashtag @mention",
    ],
    "long_word": ["a" * 150, "supercalifragilisticexpialidocious" * 4, "中" * 300],
    "blank": ["", " ", "\t\n", "\u3000"],
    # classed differently by Unicode versions (the Rust tokenizers' tables are older than most JavaScript engines'):
    # letters to Rust, punctuation or marks elsewhere; and the other way round
    "unicode_versions": ["a\u061db", "x\u0897y \u2e43 z", "a\U00011f00b", "n\u166do", "k\u1734m", "p\U000111c9q"],
}


def conformance_texts(extra: Sequence[str] = (), *, seed: int = 0) -> list[str]:
    """Every segment alone, pairs of segments from different categories, long texts, and `extra` (eval texts)."""
    rng = random.Random(seed)
    singles = [text for texts in SEGMENTS.values() for text in texts]
    texts = dict.fromkeys([*singles, *extra[:500]])  # an ordered set
    texts.update(dict.fromkeys([" ".join(rng.choice(singles) for _ in range(400)), "word " * 3000]))  # > max_length
    categories = list(SEGMENTS)
    while len(texts) < MIN_STRINGS:
        a, b = rng.sample(categories, 2)
        joiner = rng.choice([" ", "", "\n", "，"])
        texts[joiner.join([rng.choice(SEGMENTS[a]), rng.choice(SEGMENTS[b])])] = None
    return list(texts)


LONG_KIT_TEXTS = 6  # long texts with their windows, for artifacts that chunk


def long_kit_texts(extra: Sequence[str] = (), *, seed: int = 0) -> list[str]:
    """Texts longer than any window: the longest --eval texts, and mixed-script ones of a few hundred pieces (some
    past every window cap, so `truncated` is exercised too)."""
    rng = random.Random(seed)
    singles = [text for texts in SEGMENTS.values() for text in texts]
    made = [" ".join(rng.choice(singles) for _ in range(n)) for n in (30, 90, 400)]
    longest = sorted(dict.fromkeys(extra), key=len, reverse=True)[: LONG_KIT_TEXTS - len(made)]
    return [*longest, *made]


def write_conformance(
    bundle: Path,
    encoder: TextEncoder,
    extra: Sequence[str] = (),
    long_text: LongText | None = None,
    text_logits: Callable[[Windows], np.ndarray] | None = None,
) -> int:
    """Write CONFORMANCE into the bundle (before the manifest, so its checksum is recorded). Returns the count.
    long_text: the artifact's policy (chunk adds long texts and their windows); text_logits(windows): logits per
    text, for the kit's long texts' expected logits."""
    texts = conformance_texts(extra)
    ids, type_ids = encoder.encode(texts)
    rows = [{"text": text, "ids": row} for text, row in zip(texts, ids, strict=True)]
    if long_text is not None and long_text.policy == "chunk":
        rows += _window_rows(encoder, long_kit_texts(extra), long_text, text_logits)
    with (Path(bundle) / CONFORMANCE).open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=True) + "\n" for row in rows)
    return len(rows)


def _window_rows(encoder: TextEncoder, texts: list[str], long_text: LongText, text_logits) -> list[dict]:
    windows = encoder.encode_windows(texts, None, long_text)
    logits = text_logits(windows) if text_logits else None
    rows = []
    for i, (text, mine) in enumerate(zip(texts, windows.per_text(), strict=True)):
        row = {"text": text, "ids": encoder.encode([text])[0][0], "windows": windows.ids[mine.start : mine.stop]}
        row["truncated"] = bool(windows.truncated[i])
        if logits is not None:
            row["logits"] = [float(x) for x in logits[i]]
        rows.append(row)
    return rows
