"""Bench outputs: report.json, report.md, PNG plots, the history file and `--compare`. Torch-free."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.files import atomic_directory

HISTORY_FIELDS = ("p50_ms", "throughput")


def write_report(report: dict[str, Any], out: Path, *, force: bool = False) -> list[Path]:
    """Write report.json, report.md, flips.jsonl and plots (when matplotlib is installed) atomically."""
    with atomic_directory(out, force) as staging:
        (staging / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        (staging / "report.md").write_text(markdown(report), encoding="utf-8")
        with (staging / "flips.jsonl").open("w", encoding="utf-8") as f:
            for name, rows in report.get("flips", {}).items():
                for row in rows:
                    f.write(json.dumps({"variant": name, **row}, ensure_ascii=False) + "\n")
        _plots(report, staging)
    return sorted(Path(out).iterdir())


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# edgebert bench",
        "",
        f"CPU: {m['cpu']} ({m['isa']}; flags {', '.join(m['flags']) or 'none'}), {m['usable_cpus']} usable CPUs, "
        f"{m['threads']} threads. Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
        "",
        "## Latency",
        "",
        "Interleaved rounds in one process; ratio = reference p50 / variant p50 (higher is faster).",
        "",
        "| shape | variant | p50 ms | p90 ms | p99 ms | mean ms | seq/s | speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for shape, by_variant in report["latency"].items():
        base = next(iter(by_variant.values()))["p50_ms"]
        for name, s in by_variant.items():
            lines.append(
                f"| {shape} | {name} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} | {s['p99_ms']:.2f} | {s['mean_ms']:.2f} "
                f"| {s['throughput']:.1f} | {base / s['p50_ms']:.2f}x |"
            )
    lines += [
        "",
        "## Size, cold start, memory",
        "",
        "| variant | kind | model MB | cold start ms | peak RSS MB |",
        "|---|---|---:|---:|---:|",
    ]
    for name, v in report["variants"].items():
        cold = v.get("cold_start", {})
        lines.append(
            f"| {name} | {v['kind']} | {v['model_size_mb']:.1f} | {cold.get('process_wall_ms', float('nan')):.0f} "
            f"| {cold.get('peak_rss_mb') or float('nan'):.0f} |"
        )
    accuracy = report.get("accuracy")
    if accuracy:
        ref = accuracy["reference_metrics"]
        lines += ["", f"## Accuracy drift on {accuracy['data']} (reference: {accuracy['reference']})", ""]
        if ref:
            per_text = next((d["points_per_text"] for d in accuracy["drift"].values() if "points_per_text" in d), None)
            resolution = f" One text = {per_text:.2f} points; intervals are 95% paired bootstrap." if per_text else ""
            metric = ref["metric"].replace("_", " ")
            lines.append(f"Reference {metric} {ref['score']:.4f}, macro-F1 {ref['macro_f1']:.4f}.{resolution}")
            lines.append("")
        metric = (ref or {}).get("metric", "accuracy").replace("_", " ")
        lines += [
            f"| variant | {metric} [95% CI] | macro-F1 | drop (pts) [95% CI] | agreement | changed | max abs Δlogit "
            "| mean abs Δlogit |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, d in accuracy["drift"].items():
            score = f"{d['candidate_score']:.4f}{_ci(d['score_ci95'], '.4f')}" if "candidate_score" in d else "-"
            f1 = f"{d['candidate_macro_f1']:.4f}" if "candidate_macro_f1" in d else "-"
            drop = f"{d['drop_points']:+.2f}{_ci(d['drop_ci95'], '+.2f')}" if "drop_points" in d else "-"
            lines.append(
                f"| {name} | {score} | {f1} | {drop} | {d['agreement']:.2%} | {d['flips']} "
                f"| {d['max_abs_logit_diff']:.3f} | {d['mean_abs_logit_diff']:.4f} |"
            )
    return "\n".join(lines) + "\n"


def _ci(ci95: list[float] | None, fmt: str) -> str:
    return f" [{ci95[0]:{fmt}}, {ci95[1]:{fmt}}]" if ci95 else ""


def _plots(report: dict[str, Any], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return  # plots are optional on a device with the base install only
    latency = report["latency"]
    shapes = [s for s in latency if s != "real-text"]
    if shapes:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name in report["variants"]:
            ax.plot(shapes, [latency[s][name]["p50_ms"] for s in shapes], marker="o", label=name)
        ax.set(xlabel="batch x tokens", ylabel="p50 latency (ms)", yscale="log", title="Latency by input shape")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "latency_by_shape.png", dpi=110)
        plt.close(fig)
    accuracy = report.get("accuracy")
    if accuracy and accuracy.get("reference_metrics") and shapes:
        shape = "1x128" if "1x128" in latency else shapes[0]
        fig, ax = plt.subplots(figsize=(6, 4))
        points = {accuracy["reference"]: accuracy["reference_metrics"]["score"]}
        points.update({n: d["candidate_score"] for n, d in accuracy["drift"].items() if "candidate_score" in d})
        for name, acc in points.items():
            ax.scatter(latency[shape][name]["p50_ms"], 100 * acc, s=60)
            ax.annotate(name, (latency[shape][name]["p50_ms"], 100 * acc), textcoords="offset points", xytext=(5, 5))
        metric = accuracy["reference_metrics"]["metric"].replace("_", " ")
        ax.set(xlabel=f"p50 latency at {shape} (ms)", ylabel=f"{metric} (%)", title=f"Latency vs {metric}")
        fig.tight_layout()
        fig.savefig(out / "latency_vs_accuracy.png", dpi=110)
        plt.close(fig)


# ---------------------------------------------------------------- history
def history_entry(report: dict[str, Any]) -> dict[str, Any]:
    """The compact line appended to the history file: per variant and shape, p50 and throughput; the task's score
    (accuracy, or micro F1 for multi-label: `metric` says which) under "accuracy", as earlier lines hold it."""
    entry: dict[str, Any] = {
        "time": report["machine"]["time"],
        "isa": report["machine"]["isa"],
        "threads": report["machine"]["threads"],
        "latency": {},
        "accuracy": {},
    }
    for shape, by_variant in report["latency"].items():
        for name, stats in by_variant.items():
            entry["latency"][f"{name}@{shape}"] = {k: stats[k] for k in HISTORY_FIELDS}
    accuracy = report.get("accuracy") or {}
    if accuracy.get("reference_metrics"):
        entry["metric"] = accuracy["reference_metrics"]["metric"]
        entry["accuracy"][accuracy["reference"]] = accuracy["reference_metrics"]["score"]
    for name, d in (accuracy.get("drift") or {}).items():
        if "candidate_score" in d:
            entry["accuracy"][name] = d["candidate_score"]
    return entry


def append_history(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(history_entry(report)) + "\n")


def read_history(path: Path) -> list[dict[str, Any]]:
    from ..core.errors import InputError

    if not path.is_file():
        raise InputError(f"History file not found: {path}. `edgebert bench --history FILE` creates it.")
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except (ValueError, RecursionError) as exc:  # ValueError: bad JSON, or an integer over 4,300 digits
                raise InputError(f"{path}:{n} is not valid JSON ({str(exc)[:120]}).") from None
    if not entries:
        raise InputError(f"{path} holds no runs yet.")
    return entries


def compare_history(
    entries: list[dict[str, Any]], *, max_slowdown: float = 0.10, max_accuracy_drop: float = 0.5
) -> tuple[str, list[str]]:
    """Trend table of the last run against the median of earlier runs; and the regressions found.

    A regression: p50 more than `max_slowdown` (fraction) above the earlier median, or accuracy more
    than `max_accuracy_drop` points below it.
    """
    import statistics

    latest, earlier = entries[-1], entries[:-1]
    lines = ["| measure | earlier median | latest | change |", "|---|---:|---:|---:|"]
    regressions = []
    for key, stats in latest["latency"].items():
        past = [e["latency"][key]["p50_ms"] for e in earlier if key in e.get("latency", {})]
        if not past:
            continue
        base = statistics.median(past)
        change = stats["p50_ms"] / base - 1
        lines.append(f"| p50 {key} | {base:.2f} ms | {stats['p50_ms']:.2f} ms | {change:+.1%} |")
        if change > max_slowdown:
            regressions.append(
                f"latency regression: {key} p50 {stats['p50_ms']:.2f} ms vs {base:.2f} ms ({change:+.1%} > {max_slowdown:.0%})"
            )
    metric = latest.get("metric", "accuracy")  # lines from before multi-label benches hold accuracy
    alike = [e for e in earlier if e.get("metric", "accuracy") == metric]
    for name, acc in latest.get("accuracy", {}).items():
        past = [e["accuracy"][name] for e in alike if name in e.get("accuracy", {})]
        if not past:
            continue
        base = statistics.median(past)
        drop = 100 * (base - acc)
        lines.append(f"| {metric} {name} | {base:.4f} | {acc:.4f} | {-drop:+.2f} pts |")
        if drop > max_accuracy_drop:
            regressions.append(
                f"{metric} drift: {name} {acc:.4f} vs {base:.4f} ({drop:.2f} pts > {max_accuracy_drop} pts)"
            )
    if not earlier:
        lines.append("| (only one run so far: nothing to compare) | | | |")
    return "\n".join(lines), regressions
