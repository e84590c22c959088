"""The result tables of README.md and docs/*.md, rendered from the results files (never typed by hand).

    python benchmarks/docs_tables.py          # rewrite the tables between <!-- table:NAME --> markers (`make docs`)
    python benchmarks/docs_tables.py --check  # exit 1 if any page differs (a test runs this)

Each table is a function of the JSON files in benchmarks/results/; a table whose files are missing is left as is.
A marker may name a file: <!-- table:peers:peers-epyc-avx2 --> renders that results file with the `peers` table.
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


def machine_label(m: dict) -> str:
    """'microarchitecture (ISA; identity)' from a results file's machine or cpu record, old or new."""
    record = m.get("cpu_record", m)
    name = m.get("microarchitecture") or record.get("microarchitecture") or m.get("cpu") or m.get("model_name", "?")
    identity = m.get("cpu_identity") or record.get("identity") or ""
    isa = m.get("isa") or record.get("isa") or ""
    details = "; ".join(x for x in (isa, identity) if x)
    return f"{name} ({details})" if details else name


def cpu_of(cpu: dict | str) -> str:
    """A results file's CPU: its record, or the bare model name files written before records were kept."""
    if isinstance(cpu, dict):
        return machine_label(cpu)
    return f"{cpu} (recorded before CPU identities were)"


def zh_reviews(name: str = "zh_reviews") -> str | None:
    """benchmarks/zh_baseline.py's results: zh_reviews' test split, or zh_reviews_hotel's (the held-out domain)."""
    data = load(f"{name}.json")
    if data is None:
        return None
    rows = [
        f"| {name} test | vocabulary | model MB | accuracy [95% CI] | vs chars+bigrams, points [95% CI] |",
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
    return "\n".join(rows) + f"\n\n{data['dataset']}; {data['resolution']}. CPU: {machine_label(cpu)}."


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
    for epochs, label in (("epoch1", "the first epoch only"), ("epoch2", "two epochs")):
        earlier = load(f"msra_ner_m3e-{epochs}.json")
        if earlier is not None:
            rows.append(row(f"edgebert INT8 after {label}", earlier["int8_artifact"]))
    if old is not None:
        rows.append(row("old fallback: edgebert INT8, MiniLM + new characters (EPYC, AVX2)", old["int8_artifact"]))
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
    notes.append(f"paired bootstrap over test sentences, 95%. CPU: {machine_label(machine)}")
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
        f"{100 * h['accuracy_trimmed']:.2f} (trimmed). CPU: {machine_label(data['cpu'])}."
    )


def one_line(text: str) -> str:
    """A peer's error message inside a table note: its lines joined (a newline would end the markdown table)."""
    return " ".join(text.split())


def optimum_baseline(data: dict) -> tuple[str, str]:
    """A peers.py results file's Optimum baseline and why it is the one (older files measured a single preset)."""
    baseline = data.get("optimum_baseline") or next(n for n in data["sizes_mb"] if n.startswith("Optimum ORT"))
    return baseline, data.get("optimum_baseline_why", "the only Optimum preset this run measured")


def peers_zh(name: str) -> str | None:
    """A peers.py results file of a Chinese sentiment run, with real-text and batch-1 ratios against Optimum."""
    data = load(f"{name}.json")
    if data is None:
        return None
    baseline, why = optimum_baseline(data)
    latency = data["latency"]
    one = "real-text-1" in latency  # one real text per call: measured since 2026-12-07
    rows = [
        f"| {data['data']} | accuracy | MB | 1x16 p50 ms | 1x128 p50 ms | vs Optimum at 1x128 | "
        "real texts, ms per batch of 32 | vs Optimum on real texts |"
        + (" real texts, ms per text at batch 1 | vs Optimum at batch 1 |" if one else ""),
        "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if one else ""),
    ]
    for name in latency["1x128"]:
        at_128, real = latency["1x128"][name]["p50_ms"], latency["real-text"][name]["p50_ms"]
        mark = "**" if name == baseline else ""
        single = ""
        if one:
            at_1 = latency["real-text-1"][name]["p50_ms"]
            single = f" {at_1:.1f} | {at_1 / latency['real-text-1'][baseline]['p50_ms']:.2f}x |"
        rows.append(
            f"| {mark}{name}{mark} | {100 * data['accuracy'][name]['accuracy']:.2f} | {data['sizes_mb'][name]:.0f} | "
            f"{latency['1x16'][name]['p50_ms']:.1f} | {at_128:.1f} | "
            f"{at_128 / latency['1x128'][baseline]['p50_ms']:.2f}x | {real:.0f} | "
            f"{real / latency['real-text'][baseline]['p50_ms']:.2f}x |{single}"
        )
    machine = data["machine"]
    return "\n".join(rows) + (
        f"\n\nBaseline **{baseline}**: {why}. One process, interleaved rounds, {machine['threads']} thread(s); "
        f"CPU: {machine_label(machine)}. optimum-intel: {one_line(data.get('optimum_intel', 'not run'))}."
    )


def speed(name: str) -> str | None:
    """The README's speed table from a peers.py results file: torch, Optimum's baseline preset, optimum-intel where it
    ran, and edgebert's artifacts; one text per call (as an app asks) and 1x128, as ratios to the baseline."""
    data = load(f"{name}.json")
    if data is None:
        return None
    baseline, _ = optimum_baseline(data)
    latency = data["latency"]
    shape = "real-text-1" if "real-text-1" in latency else "real-text"
    shown = [n for n in latency["1x128"] if not n.startswith("Optimum ORT") or n == baseline]
    rows = [
        f"| {data['data']}, one thread | accuracy | MB | one text per call, ms | vs Optimum | 1x128, ms | vs Optimum |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in shown:
        per_text, at_128 = latency[shape][n]["p50_ms"], latency["1x128"][n]["p50_ms"]
        mark = "**" if n.startswith("edgebert") else ""
        rows.append(
            f"| {mark}{n}{mark} | {100 * data['accuracy'][n]['accuracy']:.2f} | {data['sizes_mb'][n]:.0f} | "
            f"{per_text:.1f} | {mark}{per_text / latency[shape][baseline]['p50_ms']:.2f}x{mark} | {at_128:.1f} | "
            f"{at_128 / latency['1x128'][baseline]['p50_ms']:.2f}x |"
        )
    unit = "real texts one per call" if shape == "real-text-1" else "real texts in batches of 32 (ms per batch)"
    return "\n".join(rows) + (
        f"\n\n{unit}; Optimum's baseline: its fastest preset within 0.5 points of torch ({baseline}); "
        f"CPU: {machine_label(data['machine'])}; {data['when'][:10]}."
    )


def held_out(name: str) -> str | None:
    """benchmarks/held_out.py: artifacts side by side on one split, each against the first with a paired interval."""
    data = load(f"{name}.json")
    if data is None:
        return None
    names = list(data["artifacts"])
    reference = names[0]
    rows = [
        f"| {data['data']} | accuracy [95% CI] | vs {reference}, points [95% CI] | model MB | ms per text |",
        "|---|---:|---:|---:|---:|",
    ]
    for n in names:
        a = data["artifacts"][n]
        gap = a.get(f"vs_{reference}")
        versus = f"{gap['points']:+.2f} {interval(*gap['ci95'], sign=True)}" if gap else "-"
        rows.append(
            f"| {n} | {100 * a['accuracy']:.2f} {interval(*a['ci95'], scale=100)} | {versus} | {a['model_mb']} | "
            f"{a['ms_per_text']} |"
        )
    reading = data.get("long_text", "each artifact's own policy")
    return "\n".join(rows) + (
        f"\n\nLong texts: {reading}; {data['threads']} thread(s), ms per text over 64 texts in interleaved rounds. "
        f"CPU: {machine_label(data['cpu'])}."
    )


def text(name: str) -> str | None:
    """A command's output as it printed it (benchmarks/results/<name>.txt), fenced: e.g. an `edgebert export` summary."""
    path = RESULTS / f"{name}.txt"
    return f"```text\n{path.read_text(encoding='utf-8').rstrip()}\n```" if path.is_file() else None


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
    return "\n".join(rows) + f"\n\n{data['data']}; {data['threads']} thread(s). CPU: {machine_label(cpu)}."


def peers(name: str) -> str | None:
    """A peers.py results file: every variant, its accuracy and size, p50 per shape relative to Optimum's baseline."""
    data = load(f"{name}.json")
    if data is None:
        return None
    baseline, why = optimum_baseline(data)
    shapes = list(data["latency"])
    torch_accuracy = data["accuracy"]["torch fp32 (eager)"]["accuracy"]
    rows = [
        f"| {data['data']} | MB | accuracy | drop vs torch (pts) | " + " | ".join(shapes) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(shapes),
    ]
    for variant, size in data["sizes_mb"].items():
        accuracy = data["accuracy"][variant]["accuracy"]
        cells = []
        for shape in shapes:
            stats, base = data["latency"][shape][variant], data["latency"][shape][baseline]["p50_ms"]
            cells.append(f"{stats['p50_ms']:.1f} ({stats['p50_ms'] / base:.2f}x)")
        mark = "**" if variant == baseline else ""
        rows.append(
            f"| {mark}{variant}{mark} | {size:.1f} | {100 * accuracy:.2f} | {100 * (torch_accuracy - accuracy):+.2f} | "
            + " | ".join(cells)
            + " |"
        )
    m = data["machine"]
    return "\n".join(rows) + (
        f"\n\np50 ms per call (batch x tokens; real-text: batches of 32 of the data's texts), in brackets relative to "
        f"the baseline **{baseline}**: {why}. One process, interleaved rounds, {m['threads']} thread(s). "
        f"{data.get('when', '')}. CPU: {machine_label(m)}. optimum-intel: {one_line(data.get('optimum_intel', 'not run'))}."
    )


def batch_invariance() -> str | None:
    files = ["batch_invariance-epyc-avx2.json", "batch_invariance-more-epyc-avx2.json"]
    files.append("batch_invariance-side-by-side-epyc-avx2.json")  # last: the shipped code; its rows win
    runs = [load(f) for f in files]
    if any(r is None for r in runs):
        return None
    latest: dict[tuple[str, str], dict] = {}
    for run in runs:
        for r in run["results"]:
            latest[(Path(r["artifact"]).name, r["data"])] = r
    rows = [
        "| artifact (English, bbc_news) | texts | run one text per call | labels changed, batched by 32 vs alone: "
        "before → shipped | throughput vs batched by 32 |",
        "|---|---|---|---:|---:|",
    ]
    for (artifact, source), r in latest.items():
        texts = f"{source} ({r['texts']})" if source.startswith("bbc") else f"{source} ({r['texts']}; a stress test)"
        before, after = (
            r["before"]["labels_differing_batched_vs_alone"],
            r["shipped"]["labels_differing_batched_vs_alone"],
        )
        rows.append(
            f"| {artifact} | {texts} | {'yes' if r['row_by_row'] else 'no (batched)'} | {before} → {after} | "
            f"{r['shipped_vs_batched_throughput']:.2f}x |"
        )
    return "\n".join(rows) + (
        "\n\nEvery artifact here is the English bbc_news model; the zh_reviews rows feed it Chinese texts (mostly "
        "unknown tokens) to provoke batch effects, they are not a Chinese model's numbers. Later files win where an "
        f"artifact was measured twice. CPU: {machine_label(runs[-1]['machine'])}."
    )


def spin_policy() -> str | None:
    data = load("spin_policy-epyc-avx2.json")
    if data is None:
        return None
    lengths = list(data["summary"])
    rows = ["| policy | " + " | ".join(f"{n}: p50 ms / CPU ms per request" for n in lengths) + " |"]
    rows.append("|---|" + "---:|" * len(lengths))
    for policy in data["summary"][lengths[0]]:
        cells = [
            f"{data['summary'][n][policy]['p50_ms']:.1f} / {data['summary'][n][policy]['cpu_ms_per_request']:.1f}"
            for n in lengths
        ]
        rows.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + (
        f"\n\n{data['rate_per_s']} calls/s, a fresh process per policy, median of 3 rounds. "
        f"CPU: {machine_label(data['machine'])}."
    )


def serve_idle() -> str | None:
    data = load("serve-epyc-avx2.json")
    if data is None or "idle_5_per_s" not in data:
        return None
    idle = data["idle_5_per_s"]
    rows = [
        "| text | threads spin | p50 ms | CPU ms inside the call | CPU ms per request, all | all / inside |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, r in idle["runs"].items():
        text, _, spin = name.partition("_spinning_")
        when = "during calls only (default)" if spin == "off" else "between calls too"
        rows.append(
            f"| {text} | {when} | {r['p50_ms']:.1f} | {r['cpu_ms_inside_call']:.1f} | {r['cpu_ms_per_request']:.1f} | "
            f"{r['overhead_ratio']:.2f}x |"
        )
    return "\n".join(rows) + (
        f"\n\n{idle['rate_per_s']} calls/s, {idle['threads']} threads, {idle['rounds']} rounds. "
        f"CPU: {machine_label(data['machine'])}."
    )


def serve() -> str | None:
    data = load("serve-epyc-avx2.json")
    if data is None:
        return None
    ready = sorted(data["ready_s"]["this"])
    o, c, w = data["overhead_1x16"], data["concurrency_16_clients"], data["concurrency_16_clients_wrk"]
    rows = [
        "| measure | value |",
        "|---|---:|",
        f"| ready after spawn, median of {len(ready)} (min–max) | {ready[len(ready) // 2]:.2f} s "
        f"({ready[0]:.2f}–{ready[-1]:.2f}) |",
        f"| added by HTTP to a {o['tokens']}-token text (keep-alive), p50 | {o['added_ms']:.2f} ms |",
        f"| 16 clients, Python client: served vs in-process one by one | {c['ratio']:.2f}x "
        f"({c['served_per_s']:.0f} vs {c['in_process_one_by_one_per_s']:.0f} texts/s) |",
        f"| 16 clients, {w['client']}: served vs in-process one by one | {w['ratio']:.2f}x "
        f"({w['served_per_s']:.0f} vs {w['in_process_one_by_one_per_s']:.0f} texts/s) |",
    ]
    return "\n".join(rows) + f"\n\nCPU: {machine_label(data['machine'])}."


def score() -> str | None:
    data = load("score-epyc-avx2.json")
    if data is None:
        return None
    corpora = list(data["results"])
    modes = list(data["results"][corpora[0]]["rows_per_s"])
    rows = ["| rows/s | " + " | ".join(f"{c} ({data['results'][c]['rows']:,} rows)" for c in corpora) + " |"]
    rows.append("|---|" + "---:|" * len(corpora))
    for mode in modes:
        cells = []
        for c in corpora:
            r = data["results"][c]
            start = r["startup_s"].get(mode)
            cells.append(f"{r['rows_per_s'][mode]:.1f}" + (f" (start-up {start:.1f} s)" if start else ""))
        rows.append(f"| {mode} | " + " | ".join(cells) + " |")
    identical = all(data["results"][c]["outputs_identical"] for c in corpora)
    return "\n".join(rows) + (
        f"\n\nWall time of the whole command; outputs byte-identical across modes: {identical}. "
        f"CPU: {machine_label(data['machine'])}."
    )


def train_precision() -> str | None:
    data = load("train_precision.json")
    if data is None:
        return None
    step = data["median_step_s"]
    return (
        f"| {data['shape']} training step | fp32 | bf16 autocast |\n|---|---:|---:|\n"
        f"| median step, s | {step['fp32']:.2f} | {step['bf16']:.2f} ({data['bf16_over_fp32']:.2f}x) |\n"
        f"| final loss | {data['final_loss']['fp32']:.4f} | {data['final_loss']['bf16']:.4f} |\n\n"
        f"CPU: {cpu_of(data['cpu'])} (native bf16: {data['native_bf16']})."
    )


def gemm_ceiling() -> str | None:
    data = load("gemm_ceiling-epyc-avx2.json")
    if data is None:
        return None
    rows = [
        "| artifact | 32x128 p50 ms | sequences/s | useful MatMul GOPS | of the INT8 GEMM ceiling |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, a in data["artifacts"].items():
        rows.append(
            f"| {name} ({a['last_layer']} last layer) | {a['p50_ms_32x128']:.0f} | {a['sequences_per_s']:.1f} | "
            f"{a['useful_gops']:.0f} | {100 * a['fraction_of_ceiling']:.0f}% |"
        )
    return "\n".join(rows) + (
        f"\n\nCeiling: the best u8xs8 MatMulInteger in ONNX Runtime, {data['ceiling_gops']:.0f} GOPS. "
        f"CPU: {machine_label(data['machine'])}."
    )


def slow_clients() -> str | None:
    data = load("slow_clients.json")
    if data is None:
        return None
    rows = [
        "| attack | attackers | normal requests answered | p50 ms | slowest ms | other statuses | attackers cut off, held p50 / max s |"
    ]
    rows.append("|---|---:|---:|---:|---:|---|---|")
    for r in data["runs"]:
        p50 = "-" if r["p50_ms"] is None else f"{r['p50_ms']:.0f}"
        worst = "-" if r["max_ms"] is None else f"{r['max_ms']:.0f}"
        held = "-"
        if r.get("held_open_max_s") is not None:
            held = f"{r['attackers_closed_by_server']}, {r['held_open_p50_s']:.1f} / {r['held_open_max_s']:.1f}"
        rows.append(
            f"| {r['attack']} | {r['attackers']} | {r['answered_200']} of {r['normal_requests']} | {p50} | {worst} | "
            f"{', '.join(map(str, r['other_statuses'])) or 'none'} | {held} |"
        )
    return "\n".join(rows) + (
        f"\n\nServer {data['server']}; one normal request every 0.2 s for {data['seconds']} s during each attack; "
        "each attacker sends one byte a second. "
        f"CPU: {machine_label(data['cpu'])}."
    )


def multi_label() -> str | None:
    data = load("multi_label_msra.json")
    if data is None:
        return None
    a, b = data["artifact"], data["baseline"]
    rows = [
        "| msra_entity_types test | micro F1 [95% CI] | macro F1 | exact match | PER F1 | LOC F1 | ORG F1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in ((f"edgebert {a['precision'].upper()}, {a['pretrained']}", a), (b["name"], b)):
        t = entry["test"]
        per = [t["per_label"].get(k, {}).get("f1", float("nan")) for k in ("PER", "LOC", "ORG")]
        rows.append(
            f"| {name} | **{t['micro_f1']:.4f}** [{t['micro_f1_ci95'][0]:.4f}, {t['micro_f1_ci95'][1]:.4f}] | "
            f"{t['macro_f1']:.4f} | "
            f"{t['exact_match']:.4f} | " + " | ".join(f"{f:.4f}" for f in per) + " |"
        )
    gap = data["artifact_minus_baseline_micro_f1"]
    thresholds = ", ".join(f"{k} {v:.2f}" for k, v in a["thresholds"].items())
    drift = a.get("int8_drift_test") or {}
    changes = drift.get("per_label_changes") or {}
    moved = ", ".join(f"{k} +{v['given']}/-{v['taken']}" for k, v in changes.items())
    drop = drift.get("drop_ci95")
    drop_text = f"{drift['micro_f1_drop_points']:.2f} points {interval(*drop)}" if drop else "-"
    return "\n".join(rows) + (
        f"\n\nedgebert − baseline, micro F1: {gap['points']:+.2f} points {interval(*gap['ci95'], sign=True)} (paired "
        f"bootstrap over test texts, 95%). Thresholds chosen on dev: {thresholds}. INT8 against its fp32 graph on test: "
        f"micro-F1 drop {drop_text}; labels given/taken per label: {moved}. {data['data']}. "
        f"CPU: {machine_label(data['cpu'])}."
    )


def browser() -> str | None:
    data = load("browser.json")
    if data is None:
        return None
    b, f = data["browser"], data.get("browser_fp32_artifact")
    rows = ["| runtime | 1x16 p50 ms | 1x128 p50 ms |", "|---|---:|---:|"]
    for name, entry in (
        ("Python, edgebert runtime (ONNX Runtime), 1 thread", data["python_1_thread"]),
        ("Node, examples/node (onnxruntime-node), 1 thread", data["node_1_thread"]),
        (f"{b['browser']}, examples/web (onnxruntime-web WASM SIMD), {b['threads']} thread(s)", b),
    ):
        rows.append(f"| {name} | {entry['p50_1x16_ms']:.1f} | {entry['p50_1x128_ms']:.1f} |")
    if f:
        rows.append(f"| the same in the browser, fp32 artifact | {f['p50_1x16_ms']:.1f} | {f['p50_1x128_ms']:.1f} |")
    cpu = data["cpu"]
    return "\n".join(rows) + (
        f"\n\nOne model call on synthetic ids (tokenization not included); INT8 artifact `{data['artifact']}` unless "
        f"said. Measured with {cpu['threads']} usable core(s), load {cpu['load_1min_at_start']} at start. "
        f"CPU: {machine_label(cpu)}."
    )


def arm64() -> str | None:
    data = load("arm64_emulation.json")
    if data is None:
        return None
    rows = [
        "| emulated CPU (qemu-user) | golden texts: max \\|Δlogit\\| against x86 | within the artifact's tolerance |"
    ]
    rows.append("|---|---:|:---:|")
    for name, diff in data["golden_max_abs_diff_by_profile"].items():
        rows.append(f"| {name} | {diff:.2g} | {'yes' if diff <= data['golden_atol'] else '**no**'} |")
    v, e = data["verify"], data["emulated"]
    return "\n".join(rows) + (
        f"\n\nOn {e['main_profile']}: `edgebert verify` passes (checksums, golden replay, {v['strings']} conformance "
        f"strings, {len(v['mismatches'])} mismatches); labels on {data['data']}: {data['labels_equal']} equal to x86, "
        f"max |Δlogit| {data['max_abs_logit_diff']:.3f} (tolerance {data['golden_atol']}); the fleet bundle picks its "
        f"`{data['fleet']['variant_chosen_under_emulation']}` variant. {e['how']}. Speed: {data['speed']}. "
        f"Host CPU: {machine_label(data['host_cpu'])}."
    )


def openvino_bf16() -> str | None:
    data = load("openvino_bf16.json")
    if data is None:
        return None
    p50, ratio = data["p50_ms"], data["bf16_over_f32"]
    rows = [
        "| OpenVINO INT8, floating-point layers in | 1x128 p50 ms | 32x128 p50 ms | real texts, 32 per call, ms | accuracy |"
    ]
    rows.append("|---|---:|---:|---:|---:|")
    names = {"f32": "f32 (default)", "bf16": "bf16 (openvino_precision='bf16')"}
    for precision, name in names.items():
        rows.append(
            f"| {name} | {p50[f'{precision}|1x128']:.1f} | {p50[f'{precision}|32x128']:.1f} | "
            f"{p50[f'{precision}|real-text']:.1f} | {100 * data['accuracy'][precision]:.2f} |"
        )
    return "\n".join(rows) + (
        f"\n\nbf16 / f32: {ratio['1x128']:.2f}x at 1x128, {ratio['32x128']:.2f}x at 32x128, {ratio['real-text']:.2f}x on "
        f"real texts; {data['labels_changed']} label(s) changed on {data['data']}, max |Δlogit| "
        f"{data['max_abs_logit_diff']:.3f}. One process, interleaved, {data['threads']} threads. "
        f"CPU: {machine_label(data['cpu'])}."
    )


def fresh_check() -> str | None:
    """Every benchmarks/results/fresh_check-*.json (one per CPU): the two commands on a fresh clone."""
    files = sorted(RESULTS.glob("fresh_check-*.json"))
    if not files:
        return None
    rows = [
        "| fresh clone, from nothing | CPU | wall time | venv after | exit |",
        "|---|---|---:|---:|---:|",
    ]
    notes = []
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        for run in data["runs"]:
            took = f"{run['seconds'] / 60:.1f} min" if run["seconds"] >= 60 else f"{run['seconds']:.0f} s"
            rows.append(
                f"| `make {run['target']}` | {machine_label(data['cpu'])} | {took} | "
                f"{run['venv_bytes'] / 1e9:.2f} GB | {run['exit_code']} |"
            )
            if "download" in run:
                d = run["download"]
                notes.append(
                    f"`make demo` downloads {d['bytes'] / 1e9:.2f} GB on a machine with no pip cache ({d['packages']} "
                    f"packages; the largest: {', '.join(f'{k} {v / 1e6:.0f} MB' for k, v in list(d['largest'].items())[:3])})."
                )
        targets = ", ".join(f"`{run['target']}`" for run in data["runs"])
        notes.append(f"{targets}: one clone of commit {data['commit'][:7]}, {data['when']}.")
    notes.append(
        "Measured by `make fresh-check` (benchmarks/fresh_check.py): a clone of HEAD in a temporary folder with "
        "`../shared` beside it, its targets run in order from nothing (the first installs; so `make test`'s time "
        "excludes the install it shares with the demo), pinned to one core while the other did other work."
    )
    return "\n".join(rows) + "\n\n" + " ".join(notes)


def long_text(name: str) -> str | None:
    """benchmarks/long_text.py: truncate vs chunk vs a longer truncation on held-out texts, and the 10 MB bound."""
    data = load(f"{name}.json")
    if data is None:
        return None
    versus = "vs_baseline" if data.get("baseline") else "vs_truncate"
    against = "the baseline" if data.get("baseline") else "truncate"
    rows = [
        f"| reading | accuracy [95% CI] | vs {against}, points [95% CI] | on the long texts: accuracy, vs {against} | "
        "windows per text (mean / max) | ms per text |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def pct(r: dict) -> str:
        low, high = r["ci95"]
        return f"{100 * r['accuracy']:.2f} [{100 * low:.2f}, {100 * high:.2f}]"

    def diff(d: dict | None) -> str:
        return "-" if d is None else f"{d['points']:+.2f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]"

    for reading, r in data["readings"].items():
        long = f"{100 * r['long_texts_accuracy']['accuracy']:.2f}, {diff(r.get(f'{versus}_long_texts'))}"
        rows.append(
            f"| {reading} | {pct(r['accuracy'])} | {diff(r.get(versus))} | {long} | "
            f"{r['windows_per_text']['mean']:.2f} / {r['windows_per_text']['max']} | "
            f"{data['latency'][reading]['ms_per_text']:.1f} |"
        )
    places = data.get("accuracy_by_window")
    if places:
        alone = ", ".join(f"{100 * w['accuracy']:.1f} ({w['texts']})" for w in places)
        rows.append(f"\nEach window alone, first to last (texts that have it): {alone}.")
    huge = data["huge_text"]
    bound = "; ".join(
        f"{policy}: {h['seconds']:.2f} s, +{h['peak_rss_growth_mb']:.0f} MB peak memory, {h['windows']} window(s)"
        for policy, h in huge.items()
        if isinstance(h, dict) and "seconds" in h
    )
    return "\n".join(rows) + (
        f"\n\n{data['data']}; artifact `{data['artifact']}` (max_length {data['max_length']}), one thread, one text per "
        f"call, rounds interleaved. One {huge['text_bytes'] / 1e6:.0f} MB text, fresh process: {bound}. "
        f"{data['resolution']}. CPU: {machine_label(data['cpu'])}."
    )


def long_text_ner() -> str | None:
    """benchmarks/long_text_ner.py: entities in documents longer than the model, cut or stitched from windows."""
    data = None
    for path in sorted(RESULTS.glob("long_text_ner-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
    if data is None:
        return None
    rows = [
        "| reading | entity F1 [95% CI] | precision | recall | recall past the first window | recall across a window edge |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in data["readings"].items():
        low, high = r["f1_ci95"]
        rows.append(
            f"| {name} | {100 * r['entity_f1']:.2f} [{100 * low:.2f}, {100 * high:.2f}] | {100 * r['precision']:.2f} | "
            f"{100 * r['recall']:.2f} | {100 * r['recall_past_first_window']:.1f} ({r['entities_past_first_window']}) | "
            f"{100 * r['recall_across_window_edges']:.1f} ({r['entities_across_window_edges']}) |"
        )
    a, b = data["chunk_vs_truncate"], data["chunk_vs_sentences"]
    return "\n".join(rows) + (
        f"\n\nchunk vs truncate {a['points']:+.2f} points [{a['ci95'][0]:+.2f}, {a['ci95'][1]:+.2f}]; chunk vs each "
        f"sentence alone {b['points']:+.2f} [{b['ci95'][0]:+.2f}, {b['ci95'][1]:+.2f}] (paired, over documents). "
        f"{data['data']}; artifact `{data['artifact']}` (max_length {data['max_length']}). "
        f"CPU: {machine_label(data['cpu'])}."
    )


def serve_frameworks(name: str) -> str | None:
    """benchmarks/serve_frameworks.py: `edgebert serve`'s start-up with Starlette and prometheus-client imported."""
    data = load(f"{name}.json")
    if data is None:
        return None
    rows = ["| server | spawn to first 200 from /ready, median ms | vs as shipped |", "|---|---:|---:|"]
    for way, ms in data["median_ready_ms"].items():
        rows.append(f"| {way} | {ms:.0f} | {data['ratio_to_shipped'][way]:.3f}x |")
    return "\n".join(rows) + (
        f"\n\n{data['starts']} starts each, interleaved; artifact {data['artifact']}. "
        f"CPU: {machine_label(data['machine'])}."
    )


TABLES = {
    "fresh-check": fresh_check,
    "long-text-ner": long_text_ner,
    "openvino-bf16": openvino_bf16,
    "arm64": arm64,
    "browser": browser,
    "multi-label": multi_label,
    "slow-clients": slow_clients,
    "batch-invariance": batch_invariance,
    "spin-policy": spin_policy,
    "serve-idle": serve_idle,
    "serve": serve,
    "score": score,
    "train-precision": train_precision,
    "gemm-ceiling": gemm_ceiling,
    "bbc-encoders": bbc_encoders,
    "zh-reviews": zh_reviews,
    "zh-reviews-hotel": lambda: zh_reviews("zh_reviews_hotel"),
    "msra-ner": msra_ner,
    "vocab-trim": vocab_trim,
}


PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"(<!-- table:([a-z0-9-]+)(?::([A-Za-z0-9_.-]+))? -->)\n.*?(<!-- /table:\2 -->)", re.S)
FILE_TABLES = {
    "peers": peers,
    "peers-zh": peers_zh,
    "speed": speed,
    "text": text,
    "held-out": held_out,
    "long-text": long_text,
    "serve-frameworks": serve_frameworks,
}  # tables that take a results file named in the marker


def render(page: str) -> str:
    def table(match: re.Match) -> str:
        start, name, argument, end = match.groups()
        make = FILE_TABLES.get(name) if argument else TABLES.get(name)
        rendered = None if make is None else make(argument) if argument else make()
        return match.group(0) if rendered is None else f"{start}\n{rendered}\n{end}"

    return MARKER.sub(table, page)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for name in PAGES:
        path = ROOT / name
        page = path.read_text(encoding="utf-8")
        rendered = render(page)
        if rendered == page:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(rendered, encoding="utf-8")
    if args.check and stale:
        print(f"{', '.join(stale)}: result tables differ from benchmarks/results: run `make docs`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
