"""The conformance kit every artifact carries: at least 1,000 strings with the token ids edgebert gives them.

A port of the runtime to another language (a JavaScript or C# tokenizer reading tokenizer.json) passes when it
gives the same ids for every line, and the golden logits in edgebert.json for the golden texts. The strings are
the ones ports get wrong: Chinese and other CJK, full-width punctuation, accents and combining marks, emoji with
modifiers and joiners, control and zero-width characters, right-to-left scripts, very long words and texts, and
empty or blank strings; plus the export's own --eval texts when given.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

from ..core.artifact import CONFORMANCE
from ..runtime.tokenization import TextEncoder

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


def write_conformance(bundle: Path, encoder: TextEncoder, extra: Sequence[str] = ()) -> int:
    """Write CONFORMANCE into the bundle (before the manifest, so its checksum is recorded). Returns the count."""
    texts = conformance_texts(extra)
    ids, type_ids = encoder.encode(texts)
    with (Path(bundle) / CONFORMANCE).open("w", encoding="utf-8") as f:
        for text, row in zip(texts, ids, strict=True):
            f.write(json.dumps({"text": text, "ids": row}, ensure_ascii=True) + "\n")
    return len(texts)
