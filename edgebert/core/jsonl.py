"""JSON Lines output that every line-oriented reader splits where we do."""

from __future__ import annotations

import json

LINE_BREAKING = ("\u2028", "\u2029", "\x85")  # JSON allows them raw, but splitlines() and JS parsers break on them


def json_line(row: dict) -> str:
    """One JSON Lines row, without its newline: never NaN (allow_nan=False; the runtime refuses non-finite logits
    before this), and never a raw character that a line-oriented reader would take as a line end."""
    line = json.dumps(row, ensure_ascii=False, allow_nan=False)
    for char in LINE_BREAKING:
        line = line.replace(char, f"\\u{ord(char):04x}")
    return line
