"""The tuner's table (tuning.md) and latency-vs-accuracy plot (tuning.svg, hand-written: no plotting library)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from ..core.files import write_text_atomic
from ..core.measurements import TunedCandidate, Tuning


def pareto_front(candidates: list[TunedCandidate]) -> list[str]:
    """Names of candidates no other candidate beats on both real-text time and accuracy drop."""
    timed = [c for c in candidates if c.error is None and c.real_text_ms is not None]

    def beaten(c: TunedCandidate) -> bool:
        return any(
            o.real_text_ms <= c.real_text_ms
            and o.drop_points <= c.drop_points
            and (o.real_text_ms, o.drop_points) != (c.real_text_ms, c.drop_points)
            for o in timed
        )

    return [c.name for c in timed if not beaten(c)]


def format_table(tuning: Tuning) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    def spread(c: TunedCandidate) -> str:
        return f"{c.real_text_spread_ms[0]:.2f}–{c.real_text_spread_ms[1]:.2f}" if c.real_text_spread_ms else "-"

    def drop(c: TunedCandidate) -> str:
        interval = f" [{c.drop_ci95[0]:.2f}, {c.drop_ci95[1]:.2f}]" if c.drop_ci95 else ""
        return f"{c.drop_points:.2f}{interval}"

    def confirmed(c: TunedCandidate) -> str:
        return "" if c.confirmed is None else "yes" if c.confirmed else "no"

    rule = f"\n\nRule: {tuning.rule}." if tuning.rule else ""
    rule += f" Intervals: {tuning.evidence}." if tuning.evidence else ""
    rows = [
        f"# edgebert export --tune\n\nCPU: {tuning.cpu}. Budget: drop at most {tuning.max_drop_points} points against "
        f"the teacher's fp32 graph (score {tuning.teacher_score:.4f}).{rule}\n\n"
        f"Chosen: **{tuning.chosen}** — {tuning.reason}.\n{_test_line(tuning)}",
        "| candidate | layers | real text ms/text | round spread | 1x128 p50 ms | size MB | drop (pts) [95% CI] "
        "| confirmed | Pareto front |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|:---:|",
    ]
    by_speed = sorted(tuning.candidates, key=lambda c: (c.error is not None, c.real_text_ms or 0.0))
    for c in by_speed:
        if c.error:
            rows.append(f"| {c.name} | {c.layers} | not built: {c.error[:80]} | | | | | | |")
            continue
        mark = "**" if c.name == tuning.chosen else ""
        size = "-" if c.size_bytes is None else f"{c.size_bytes / 1e6:.1f}"
        rows.append(
            f"| {mark}{c.name}{mark} | {c.layers} | {ms(c.real_text_ms)} | {spread(c)} | {ms(c.p50_1x128_ms)} | "
            f"{size} | {drop(c)} | {confirmed(c)} | {'yes' if c.on_front else ''} |"
        )
    return "\n".join(rows) + "\n"


def _test_line(tuning: Tuning) -> str:
    """The winner on held-out data, when --test was given (reported after the choice, never part of it)."""
    t = tuning.test
    if t is None:
        return ""
    score = f"{t.score:.4f}" + (f" [{t.score_ci95[0]:.4f}, {t.score_ci95[1]:.4f}]" if t.score_ci95 else "")
    drop = f"{t.drop_points:.2f}" + (f" [{t.drop_ci95[0]:.2f}, {t.drop_ci95[1]:.2f}]" if t.drop_ci95 else "")
    within = "within" if t.drop_points <= tuning.max_drop_points else "OUTSIDE"
    confirmed = (
        " (confirmed)" if t.drop_ci95 and t.drop_ci95[1] <= tuning.max_drop_points else " (not confirmed at this size)"
    )
    return (
        f"\nOn held-out {t.data} ({t.n} rows; one row = {100 / t.n:.2f} points), after the choice: {t.metric} {score}, "
        f"drop against its fp32 graph {drop} points: {within} the {tuning.max_drop_points}-point budget{confirmed}.\n"
    )


def format_svg(tuning: Tuning, width: int = 640, height: int = 400) -> str:
    """Real-text latency (x) against accuracy drop (y); the front joined by a line, the budget dashed."""
    points = [c for c in tuning.candidates if c.error is None and c.real_text_ms is not None]
    if not points:
        return ""
    left, right, top, bottom = 60, 20, 20, 50
    xs = [c.real_text_ms for c in points]
    ys = [c.drop_points for c in points] + [tuning.max_drop_points, 0.0]
    x0, x1 = 0.0, max(xs) * 1.1
    y0, y1 = min(ys) - 0.1, max(ys) + 0.2

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>',
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">real-text ms per text ({escape(tuning.cpu)})</text>',
        f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" text-anchor="middle">'
        "accuracy drop vs teacher fp32 (points)</text>",
        f'<line x1="{left}" y1="{py(tuning.max_drop_points):.1f}" x2="{width - right}" '
        f'y2="{py(tuning.max_drop_points):.1f}" stroke="gray" stroke-dasharray="4 3"/>',
        f'<text x="{width - right - 4}" y="{py(tuning.max_drop_points) - 4:.1f}" text-anchor="end" fill="gray">'
        f"budget {tuning.max_drop_points} pts</text>",
    ]
    for tick in range(6):
        x = x1 * tick / 5
        parts.append(f'<text x="{px(x):.1f}" y="{height - bottom + 15}" text-anchor="middle">{x:.1f}</text>')
    front = sorted((c for c in points if c.on_front), key=lambda c: c.real_text_ms)
    if len(front) > 1:
        path = " ".join(f"{px(c.real_text_ms):.1f},{py(c.drop_points):.1f}" for c in front)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1f77b4"/>')
    for c in points:
        colour = "#d62728" if c.name == tuning.chosen else "#1f77b4" if c.on_front else "#999"
        x, y = px(c.real_text_ms), py(c.drop_points)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
        parts.append(f'<text x="{x + 6:.1f}" y="{y - 6:.1f}">{escape(c.name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_report(directory: Path, tuning: Tuning) -> None:
    write_text_atomic(directory / "tuning.md", format_table(tuning))
    svg = format_svg(tuning)
    if svg:
        write_text_atomic(directory / "tuning.svg", svg)
