"""Regenerate (or --check) tokenizer.mjs's RUST_CLASS table: the code points where the WordPiece port, going by this
Node's Unicode tables, would split or drop a character differently from the Rust `tokenizers` library edgebert
trains and exports with (whose tables are older).

    python examples/node/rust_unicode_classes.py          # rewrite the table between its BEGIN/END GENERATED lines
    python examples/node/rust_unicode_classes.py --check  # exit 1 if the table is not what this machine generates

Every code point c (surrogates aside) is read as "a" + c + "b" by BERT's normalizer (clean_text, Chinese characters
spaced, accents stripped, lowercased) and pre-tokenizer, in Rust (the Python `tokenizers` package) and in the port
with its table emptied (Node, examples/node/node_modules installed). Each side's reading is one class: letter (one
word), punct (c alone between a and b, as a spaced Chinese character is too), whitespace (two words), control or
strip (c dropped, by clean_text or by accent stripping). The table keeps, for each code point whose classes differ, the Rust class; the port
applies it before its own tests. ~20 s.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PORT = HERE / "tokenizer.mjs"
BEGIN, END = "// BEGIN GENERATED", "// END GENERATED"
TABLE_KINDS = ("letter", "punct", "strip")  # the classes the port can be told (tokenizer.mjs OVERRIDES)
CODE_POINTS = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]

# The port's reading of each code point, its table emptied: the same classes as rust_classes() below.
NODE_CLASSES = """
import { OVERRIDES, WordPieceTokenizer } from "./tokenizer.mjs";
OVERRIDES.clear();
const json = {
  normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: true, lowercase: true },
  pre_tokenizer: { type: "BertPreTokenizer" },
  model: { type: "WordPiece", vocab: { "[UNK]": 0 }, unk_token: "[UNK]" },
};
const port = new WordPieceTokenizer(json, 128);
const keep = new WordPieceTokenizer({ ...json, normalizer: { ...json.normalizer, strip_accents: false, lowercase: false } }, 128);
const out = [];
for (let cp = 0; cp < 0x110000; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  const c = String.fromCodePoint(cp);
  const words = port.preTokenize(port.normalize("a" + c + "b"));
  const kept = keep.normalize("a" + c + "b");
  out.push(words.length === 1 ? (words[0] === "ab" ? (kept === "ab" ? "control" : "strip") : "letter")
    : words.length === 2 ? "whitespace" : "punct");
}
process.stdout.write(JSON.stringify(out));
"""


def rust_classes() -> list[str]:
    from tokenizers import normalizers, pre_tokenizers

    normalize = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    ).normalize_str
    keep = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    ).normalize_str
    split = pre_tokenizers.BertPreTokenizer().pre_tokenize_str
    classes = []
    for cp in CODE_POINTS:
        c = chr(cp)
        words = [w for w, _ in split(normalize("a" + c + "b"))]
        if len(words) == 1:
            kind = ("control" if keep("a" + c + "b") == "ab" else "strip") if words[0] == "ab" else "letter"
        elif len(words) == 2:
            kind = "whitespace"
        else:
            kind = "punct"  # c on its own between a and b (a Chinese character too: spaced, then split)
        classes.append(kind)
    return classes


def port_classes() -> list[str]:
    result = subprocess.run(
        ["node", "--input-type=module", "-e", NODE_CLASSES], cwd=HERE, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        sys.exit(f"node failed (is examples/node/node_modules installed? `npm ci` there): {result.stderr[-800:]}")
    return json.loads(result.stdout)


def table(rust: list[str], port: list[str]) -> str:
    """The RUST_CLASS block: per class, inclusive ranges of code points where Rust's class is that and the port's
    differs."""
    ranges: dict[str, list[list[int]]] = {kind: [] for kind in TABLE_KINDS}
    for cp, theirs, ours in zip(CODE_POINTS, rust, port, strict=True):
        if theirs == ours:
            continue
        if theirs not in TABLE_KINDS:
            sys.exit(f"U+{cp:04X}: Rust reads it as {theirs}, the port as {ours}; the port cannot be told that class")
        runs = ranges[theirs]
        if runs and runs[-1][1] == cp - 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    lines = ["const RUST_CLASS = {"]
    for i, kind in enumerate(TABLE_KINDS):
        pairs = ", ".join(f"[0x{a:x}, 0x{b:x}]" for a, b in ranges[kind])
        lines.append(f"  {kind}: [{pairs}]{',' if i < len(TABLE_KINDS) - 1 else ''}")
    return "\n".join([*lines, "};"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with tokenizer.mjs instead of rewriting it")
    args = parser.parse_args()
    source = PORT.read_text(encoding="utf-8")
    block = re.search(rf"({re.escape(BEGIN)}[^\n]*\n)(.*?)(\n{re.escape(END)})", source, re.S)
    if block is None:
        sys.exit(f"{PORT} has no {BEGIN} ... {END} block")
    generated = table(rust_classes(), port_classes())
    if args.check:
        if block.group(2) != generated:
            print(f"{PORT.name}'s RUST_CLASS table is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        print("RUST_CLASS is current")
        return 0
    PORT.write_text(source[: block.start(2)] + generated + source[block.end(2) :], encoding="utf-8")
    print(f"wrote {PORT}: {generated.count('[0x')} ranges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
