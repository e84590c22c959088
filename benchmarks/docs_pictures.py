"""The docs' pictures, drawn from benchmarks/results by `make docs` (after the tables).

    python benchmarks/docs_pictures.py [--check]

Each picture records the sha256 of the results file it was drawn from (its SVG description), so `--check` (run by
the test suite) fails when a results file changed and its picture was not redrawn, whatever matplotlib version
draws it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
IMAGES = Path(__file__).parent.parent / "docs" / "images"
SOURCE = re.compile(r"edgebert-source: ([0-9a-f]{64})")

# docs/images/<name>.svg <- benchmarks/results/<file>, drawn by PICTURES' drawer (below)
SOURCES = {
    "peers-zh-zen4": "peers-zh-zen4.json",
    "peers-bbc-sapphirerapids": "peers-bbc-sapphirerapids.json",
    "peers-bbc-zen4": "peers-bbc-zen4.json",
    "runtimes": "browser.json",
    "accuracy-budget-zh-e5": "accuracy_budget-zh-e5-zen4.json",
}
FAMILIES = (  # name prefix -> colour, legend label
    ("edgebert", "#d62728", "edgebert"),
    ("Optimum", "#1f77b4", "Optimum (ONNX Runtime) presets"),
    ("optimum-intel", "#2ca02c", "optimum-intel (OpenVINO)"),
    ("torch", "#7f7f7f", "torch fp32"),
)


def peers_scatter(data: dict, title: str):
    """Latency per call at 1x128 against accuracy: one point per variant, the faster and more accurate up left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shape = "real-text-1" if "real-text-1" in data["latency"] else "1x128"
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for prefix, colour, label in FAMILIES:
        names = [n for n in data["sizes_mb"] if n.startswith(prefix)]
        if not names:
            continue
        xs = [data["latency"][shape][n]["p50_ms"] for n in names]
        ys = [100 * data["accuracy"][n]["accuracy"] for n in names]
        ax.scatter(xs, ys, color=colour, label=label, s=36, zorder=3)
        for name, x, y in zip(names, xs, ys, strict=True):
            short = name.replace("Optimum ORT INT8 ", "").replace("edgebert ", "").replace("optimum-intel ", "")
            ax.annotate(short, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    from matplotlib.ticker import FormatStrFormatter

    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    what = "one real text per call" if shape == "real-text-1" else "1 x 128 tokens"
    ax.set_xlabel(f"p50 ms per call, {what}, {data['machine']['threads']} thread (log scale)")
    ax.set_ylabel(f"accuracy on {data['data']} (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def runtime_bars(data: dict, title: str):
    """The same INT8 artifact in Python, Node and Chromium (WASM), one thread: p50 ms at 1x16 and 1x128."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {
        "Python (onnxruntime)": data["python_1_thread"],
        "Node (onnxruntime-node)": data["node_1_thread"],
        "Chromium (onnxruntime-web, WASM)": data["browser"],
    }
    if "browser_fp32_artifact" in data:
        runs["Chromium, the fp32 artifact"] = data["browser_fp32_artifact"]
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    names = list(runs)
    for k, (shape, colour) in enumerate((("1x16", "#1f77b4"), ("1x128", "#d62728"))):
        values = [runs[n][f"p50_{shape}_ms"] for n in names]
        bars = ax.barh([i + 0.4 * k for i in range(len(names))], values, height=0.38, color=colour, label=shape)
        ax.bar_label(bars, fmt="%.0f ms", fontsize=7, padding=2)
    ax.set_yticks([i + 0.2 for i in range(len(names))], names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("p50 ms per call, one thread (tokens per call: 16 or 128)")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, 1.15 * max(run["p50_1x128_ms"] for run in runs.values()))
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def budget_path(data: dict, title: str):
    """The accuracy budget's path: the drop and its 95% interval as units return to fp32, one step at a time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = data["budget"]
    steps = budget["steps"]
    xs = [len(step["fp32_units"]) for step in steps]
    ys = [step["drop_points"] for step in steps]
    low = [y - (step["drop_ci95"] or [y, y])[0] for y, step in zip(ys, steps, strict=True)]
    high = [(step["drop_ci95"] or [y, y])[1] - y for y, step in zip(ys, steps, strict=True)]
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    ax.errorbar(xs, ys, yerr=[low, high], fmt="o-", color="#d62728", capsize=3, label="drop, 95% paired interval")
    ax.axhline(
        budget["max_drop_points"], color="#7f7f7f", ls="--", lw=1, label=f"--max-drop {budget['max_drop_points']}"
    )
    ax.axhline(0, color="#000000", lw=0.5)
    for x, y, step in zip(xs, ys, steps, strict=True):
        if step["fp32_units"]:
            ax.annotate(f"+{step['fp32_units'][-1]}", (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("units kept in fp32 (most sensitive first)")
    ax.set_ylabel(f"{data['metric']} drop vs fp32, points")
    ax.set_xticks(range(0, max(xs) + 1))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def title_of(data: dict) -> str:
    if "budget" in data:  # accuracy_budget.py
        cpu = data["cpu"]
        return (
            f"INT8 accuracy budget of {Path(data['checkpoint']).name} ({data['recipe']}) on {data['data']} "
            f"({data['n']} texts; CPU: {cpu.get('microarchitecture') or cpu.get('isa')})"
        )
    if "machine" not in data:  # browser.json
        cpu = data["cpu"]
        return f"bbc_news INT8 in each runtime, one thread (CPU: {cpu.get('microarchitecture', '?')}, {cpu.get('isa', '')})"
    m = data["machine"]
    record = m.get("cpu_record", m)
    cpu = m.get("microarchitecture") or record.get("microarchitecture") or m.get("cpu", "?")
    return f"{data['data']}: speed and accuracy of each INT8 path (CPU: {cpu}, {record.get('isa', '')})"


def draw(name: str, source: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "edgebert"  # stable ids
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text
    data = json.loads(source.read_text(encoding="utf-8"))
    fig = PICTURES[name](data, title_of(data))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    fig.savefig(out, format="svg", metadata={"Date": None, "Description": f"edgebert-source: {digest}"})
    import matplotlib.pyplot as plt

    plt.close(fig)


PICTURES = {
    "peers-zh-zen4": peers_scatter,
    "peers-bbc-sapphirerapids": peers_scatter,
    "peers-bbc-zen4": peers_scatter,
    "runtimes": runtime_bars,
    "accuracy-budget-zh-e5": budget_path,
}


def stale(name: str, source: Path, out: Path) -> bool:
    if not out.is_file():
        return True
    recorded = SOURCE.search(out.read_text(encoding="utf-8", errors="replace"))
    return recorded is None or recorded.group(1) != hashlib.sha256(source.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a picture is older than its results file")
    args = parser.parse_args()
    behind = []
    for name, file in SOURCES.items():
        source, out = RESULTS / file, IMAGES / f"{name}.svg"
        if not source.is_file():
            continue
        if stale(name, source, out):
            behind.append(name)
            if not args.check:
                draw(name, source, out)
    if args.check and behind:
        print(f"docs/images: {', '.join(behind)} not drawn from the current results: run `make docs`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
