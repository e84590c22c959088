"""What a finished training run leaves next to its checkpoint: metrics.json and two PNGs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_training_report(out: Path, report: dict[str, Any]) -> list[Path]:
    """metrics.json (best dev metrics incl. per-class scores and confusion matrix, history, loss curve),
    training_curve.png and, for sequence tasks, confusion_matrix.png (plots need matplotlib)."""
    written = [out / "metrics.json"]
    written[0].write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written

    fig, loss_ax = plt.subplots(figsize=(7, 4))
    losses = report["losses"]
    loss_ax.plot(range(1, len(losses) + 1), losses, color="tab:blue", alpha=0.35, label="train loss (per step)")
    window = max(1, len(losses) // 50)
    if len(losses) >= window:
        smooth = [sum(losses[i - window : i]) / window for i in range(window, len(losses) + 1)]
        loss_ax.plot(range(window, len(losses) + 1), smooth, color="tab:blue", label=f"train loss ({window}-step mean)")
    loss_ax.set_xlabel("optimizer step")
    loss_ax.set_ylabel("loss")
    score_ax = loss_ax.twinx()
    steps = [row["step"] for row in report["history"]]
    score_name = report["score_name"]
    score_ax.plot(
        steps, [row[score_name] for row in report["history"]], "o-", color="tab:red", label=f"dev {score_name}"
    )
    score_ax.set_ylabel(f"dev {score_name}")
    handles = loss_ax.get_legend_handles_labels()[0] + score_ax.get_legend_handles_labels()[0]
    loss_ax.legend(handles=handles, loc="center right", fontsize=8)
    loss_ax.set_title("training curve")
    fig.tight_layout()
    fig.savefig(out / "training_curve.png", dpi=100)
    plt.close(fig)
    written.append(out / "training_curve.png")

    matrix = report["best"].get("confusion_matrix")
    if matrix:
        labels = report["best"]["labels"]
        size = max(3.5, 0.6 * len(labels) + 2)
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        peak = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                ax.text(j, i, count, ha="center", va="center", color="white" if count > peak / 2 else "black")
        ax.set_title(f"dev confusion matrix (epoch {report['best']['epoch']})")
        fig.tight_layout()
        fig.savefig(out / "confusion_matrix.png", dpi=100)
        plt.close(fig)
        written.append(out / "confusion_matrix.png")
    return written
