"""Texts longer than the model: one window per text (`truncate`) or several (`chunk`), and back to one answer per text.

The policy is the manifest's `long_text` (core/artifact.LongText); docs/artifact-format.md spells it out for ports.
A window is the tokenizer's own special tokens around a slice of the text's pieces ([CLS] pieces [SEP] for BERT,
<s> pieces </s> for XLM-R), so every window is an input the model was trained on. Windows of all texts go through
the model together, row by row as any text would, so a text's answer never depends on what else was asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Windows:
    """The rows the model runs for N texts, and how they map back."""

    ids: list[list[int]]  # one row per window, the windows of text 0 first, then text 1's, ...
    type_ids: list[list[int]]
    owners: np.ndarray  # (W,) int: the text each window belongs to
    starts: list[int]  # (W,) the first of the text's pieces each window holds
    truncated: np.ndarray  # (N,) bool: the text has pieces no window holds (past max_length, or past max_windows)
    prefix: int = 1  # special tokens before the pieces in every window ([CLS]), and after them ([SEP])
    suffix: int = 1
    read: list | None = None  # token task: per text, (tokens read, word_ids, offsets) of the whole text as read

    @property
    def counts(self) -> np.ndarray:
        """(N,) windows per text."""
        return np.bincount(self.owners, minlength=len(self.truncated))

    def per_text(self) -> list[range]:
        """Each text's windows, as a range of rows (a text's windows are consecutive)."""
        ends = np.cumsum(self.counts).tolist()
        return [range(end - n, end) for end, n in zip(ends, self.counts.tolist(), strict=True)]


def window_starts(pieces: int, width: int, stride: int, max_windows: int) -> list[int]:
    """Where each window starts among a text's `pieces`: 0, step, 2 step, ... (step = width - stride), the last one
    moved back to end at the text's end (so it is full, not a sliver of a few pieces); at most `max_windows`, and
    when they cannot reach the end, the first max_windows of them (the rest of the text is cut)."""
    if pieces <= width:
        return [0]
    step = width - stride
    needed = 1 + -(-(pieces - width) // step)  # ceil: windows until one reaches the end
    if needed > max_windows:
        return [k * step for k in range(max_windows)]
    return [k * step for k in range(needed - 1)] + [pieces - width]


def aggregate(logits: np.ndarray, owners: np.ndarray, texts: int, how: str = "mean") -> np.ndarray:
    """(W, K) window logits -> (N, K) text logits: the mean of each text's windows, or the max per label ("max": a
    label seen strongly in one part of a long text is kept, which suits multi-label). Multi-label thresholds apply
    to the sigmoid of the aggregated logits."""
    out = np.zeros((texts, logits.shape[1]), dtype=np.float32)
    if how == "max":
        out.fill(-np.inf)
        np.maximum.at(out, owners, logits)
        return out
    np.add.at(out, owners, logits)
    return out / np.bincount(owners, minlength=texts)[:, None]


def text_logits(logits: np.ndarray, windows: Windows, how: str = "mean") -> np.ndarray:
    """(W, K) logits of `windows`' rows -> (N, K) logits per text: the rows themselves when every text took one
    window, else `aggregate`d."""
    if len(windows.ids) == len(windows.truncated):
        return logits
    return aggregate(logits, windows.owners, len(windows.truncated), how)


def stitch(rows: list[np.ndarray], starts: list[int], prefix: int, suffix: int, tokens: int) -> np.ndarray:
    """One text's per-token logits from its windows' (T_w, K) rows: each piece's row comes from the window where it
    sits most centrally (farthest from that window's edges, the earlier window on a tie), so an entity across a
    window edge is read with context on both sides; the special tokens' rows from the first and last window.
    `tokens`: the text's tokens as read (pieces plus special tokens). Returns (tokens, K)."""
    out = np.zeros((tokens, rows[0].shape[1]), dtype=np.float32)
    best = np.full(tokens, -1, dtype=np.int64)  # the centrality each piece's current row had
    for row, start in zip(rows, starts, strict=True):
        held = len(row) - prefix - suffix  # pieces in this window
        position = np.arange(held)
        centrality = np.minimum(position, held - 1 - position)
        target = prefix + start + position  # where these pieces sit in the text as read
        better = centrality > best[target]
        out[target[better]] = row[prefix + position[better]]
        best[target[better]] = centrality[better]
    out[:prefix] = rows[0][:prefix]
    if suffix:
        out[tokens - suffix :] = rows[-1][len(rows[-1]) - suffix :]
    return out
