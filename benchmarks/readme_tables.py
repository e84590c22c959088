"""The README's result tables, rendered from the results files (never typed by hand).

    python benchmarks/readme_tables.py          # rewrite the tables between <!-- table:NAME --> markers
    python benchmarks/readme_tables.py --check  # exit 1 if README.md differs (a test runs this)

Each table is a function of the JSON files in benchmarks/results/; a table whose files are missing is left as is.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def interval(low: float, high: float, scale: float = 1.0, sign: bool = False) -> str:
    fmt = "{:+.2f}" if sign else "{:.2f}"
    return f"[{fmt.format(low * scale)}, {fmt.format(high * scale)}]"


def vocabulary(entry: dict, unit: str = "") -> str:
    """An artifact's vocabulary as the results files give it: "full", or the pieces a trimmed one kept."""
    kept = entry["vocabulary"]
    return kept if isinstance(kept, str) else f"{kept:,}{unit}"


def zh_reviews() -> str | None:
    data = load("zh_reviews.json")
    if data is None:
        return None
    rows = [
        "| zh_reviews test | vocabulary | model MB | accuracy [95% CI] | vs chars+bigrams, points [95% CI] |",
        "|---|---|---:|---:|---:|",
    ]
    for name, entry in data["baselines"].items():
        label = f"TF-IDF {name} + logistic regression (C={entry['C']} on dev)"
        rows.append(
            f"| {label} | {entry['features']:,} n-grams | | {100 * entry['accuracy']:.2f} "
            f"{interval(*entry['ci95'], 100)} | |"
        )
    for name, entry in data["artifacts"].items():
        gap = entry["vs_chars+bigrams"]
        vocab = vocabulary(entry, " pieces")
        rows.append(
            f"| edgebert {name} ({entry['pretrained']}) | {vocab} | {entry['model_mb']} | "
            f"**{100 * entry['accuracy']:.2f}** {interval(*entry['ci95'], 100)} | "
            f"**{gap['points']:+.2f}** {interval(*gap['ci95'], sign=True)} |"
        )
    cpu = data["cpu"]
    return (
        "\n".join(rows) + f"\n\n{data['dataset']}; {data['resolution']}. CPU: {cpu['model_name']} ({cpu['identity']})."
    )


def msra_ner() -> str | None:
    new, old = load("msra_ner_m3e.json"), load("msra_ner_full-epyc-avx2.json")
    if new is None:
        return None
    rows = [
        "| msra_ner:test (5,000 sentences) | P | R | entity F1 | PER | LOC | ORG |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def row(label: str, m: dict, bold: bool = False) -> str:
        f1 = f"**{m['f1']:.3f}**" if bold else f"{m['f1']:.3f}"
        types = " | ".join(f"{m['per_type'][t]['f1']:.3f}" for t in ("PER", "LOC", "ORG"))
        return f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {f1} | {types} |"

    sentences = f"{new['train_sentences']:,}"
    rows.append(row(f"edgebert INT8, m3e-small, {sentences} sentences", new["int8_artifact"], bold=True))
    if "torch_fp32" in new:
        rows.append(row("the same model, torch fp32", new["torch_fp32"]))
    rows.append(row(f"character CRF, same {sentences} sentences", new["crf"], bold=True))
    first = load("msra_ner_m3e-epoch1.json")
    if first is not None:
        rows.append(row("edgebert INT8 after the first epoch only", first["int8_artifact"]))
    if old is not None:
        rows.append(row("old fallback: edgebert INT8, MiniLM + new characters (Zen 3)", old["int8_artifact"]))
    d = new["int8_minus_crf_f1"]
    notes = [
        f"INT8 − CRF: {d['difference_points']:+.2f} points {interval(d['ci95_low_points'], d['ci95_high_points'], sign=True)}"
    ]
    if "int8_minus_fp32_f1" in new:
        q = new["int8_minus_fp32_f1"]
        notes.append(
            f"INT8 − torch fp32: {q['difference_points']:+.2f} points "
            f"{interval(q['ci95_low_points'], q['ci95_high_points'], sign=True)}"
        )
    machine = new["machine"]
    notes.append(
        f"paired bootstrap over test sentences, 95%. CPU: {machine['cpu']} ({machine.get('cpu_identity', '')})"
    )
    return "\n".join(rows) + "\n\n" + "; ".join(notes) + "."


def vocab_trim() -> str | None:
    data = load("vocab_trim.json")
    if data is None:
        return None
    rows = [
        "| e5 INT8 artifact | vocabulary | model MB | tokenizer MB | cold start s (median of 3) | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, entry in data["artifacts"].items():
        cold = sorted(entry["cold_start_s"])[len(entry["cold_start_s"]) // 2]
        rss = sorted(entry["peak_rss_mb"])[len(entry["peak_rss_mb"]) // 2]
        vocab = vocabulary(entry)
        rows.append(f"| {name} | {vocab} | {entry['model_mb']} | {entry['tokenizer_mb']} | {cold:.2f} | {rss:.0f} |")
    h = data["held_out"]
    return "\n".join(rows) + (
        f"\n\nOn {h['texts']:,} held-out texts ({data['data']}): {h['tokenized_differently']} tokenize differently after "
        f"trimming, {h['labels_changed']} labels change; accuracy {100 * h['accuracy_full']:.2f} (full) vs "
        f"{100 * h['accuracy_trimmed']:.2f} (trimmed). CPU: {data['cpu']['model_name']} ({data['cpu']['identity']})."
    )


def peers_zh() -> str | None:
    data = load("peers-zh.json")
    if data is None:
        return None
    optimum = next((n for n in data["latency"]["1x128"] if n.startswith("Optimum ORT")), None)
    rows = [
        f"| {data['data']} | accuracy | MB | 1x16 p50 ms | 1x128 p50 ms | vs Optimum at 1x128 | real texts, ms per batch of 32 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, stats in data["latency"]["1x128"].items():
        ratio = stats["p50_ms"] / data["latency"]["1x128"][optimum]["p50_ms"] if optimum else float("nan")
        rows.append(
            f"| {name} | {100 * data['accuracy'][name]['accuracy']:.2f} | {data['sizes_mb'][name]:.0f} | "
            f"{data['latency']['1x16'][name]['p50_ms']:.1f} | {stats['p50_ms']:.1f} | {ratio:.2f}x | "
            f"{data['latency']['real-text'][name]['p50_ms']:.0f} |"
        )
    machine = data["machine"]
    return "\n".join(rows) + (
        f"\n\nOne process, interleaved rounds, {machine['threads']} thread(s); CPU: {machine['cpu']} "
        f"({machine.get('cpu_identity', '')}, {machine['isa']})."
    )


def bbc_encoders() -> str | None:
    data = load("bbc_news_encoders.json")
    if data is None:
        return None
    rows = [
        "| bbc_news test, INT8 | encoder | vocabulary | model MB | accuracy [95% CI] | vs MiniLM, points [95% CI] | ms/text |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, entry in data["artifacts"].items():
        gap = next((v for k, v in entry.items() if k.startswith("vs_")), None)
        versus = f"{gap['points']:+.2f} {interval(*gap['ci95'], sign=True)}" if gap else ""
        vocab = vocabulary(entry)
        rows.append(
            f"| {name} | {entry['pretrained']} | {vocab} | {entry['model_mb']} | "
            f"{100 * entry['accuracy']:.2f} {interval(*entry['ci95'], 100)} | {versus} | {entry['ms_per_text']} |"
        )
    cpu = data["cpu"]
    return (
        "\n".join(rows)
        + f"\n\n{data['data']}; {data['threads']} thread(s). CPU: {cpu['model_name']} ({cpu['identity']})."
    )


TABLES = {
    "bbc-encoders": bbc_encoders,
    "zh-reviews": zh_reviews,
    "msra-ner": msra_ner,
    "vocab-trim": vocab_trim,
    "peers-zh": peers_zh,
}


def render(readme: str) -> str:
    for name, make in TABLES.items():
        table = make()
        if table is None:
            continue
        pattern = re.compile(rf"(<!-- table:{name} -->)\n.*?(<!-- /table:{name} -->)", re.S)
        readme = pattern.sub(lambda m, t=table: f"{m.group(1)}\n{t}\n{m.group(2)}", readme)
    return readme


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    path = ROOT / "README.md"
    readme = path.read_text(encoding="utf-8")
    rendered = render(readme)
    if args.check:
        if rendered != readme:
            print("README.md's result tables differ from benchmarks/results: run `make readme-tables`")
            return 1
        return 0
    path.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
