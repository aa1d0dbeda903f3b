"""The statistics dpbench reports, in one place: per-run aggregations of the evaluation history and
confidence intervals. Pure functions of numbers; no torch, no files.

Per run (one seed), over its periodic evaluations (each 50 test episodes):

- ``max``: the best evaluation (the paper's first number).
- ``avg_last10``: the mean of the last 10 evaluations (the paper's text: "the average of the last
  10 checkpoints").
- ``k_min_train_loss``: the mean of the 10 evaluations with the lowest training loss. The original
  repository's README names this key, computed by its ``multirun_metrics.py``
  (``np.argsort(train_loss)[:10]``, train_loss being the epoch's mean loss), as the source of the
  paper's second number; dpbench's ``train_loss`` is the mean loss since the previous evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

K_LAST = 10  # avg-last-10
K_MIN_LOSS = 10  # k_min_train_loss


def summarize_history(history: Sequence[dict[str, Any]], key: str = "score") -> dict[str, float]:
    """``max``, ``avg_last10`` and ``k_min_train_loss`` of ``key`` over a run's evaluations.

    ``k_min_train_loss`` ranks evaluations by ``train_loss`` (the mean loss since the previous
    evaluation), falling back to ``loss`` (the last batch's loss) for records that predate it;
    NaN when the history carries neither. All three are NaN for an empty history."""
    rows = [h for h in history if key in h]
    if not rows:
        return {"max": float("nan"), "avg_last10": float("nan"), "k_min_train_loss": float("nan")}
    values = np.array([h[key] for h in rows], dtype=float)
    loss_key = "train_loss" if all("train_loss" in h for h in rows) else "loss"
    if all(loss_key in h for h in rows):
        losses = np.array([h[loss_key] for h in rows], dtype=float)
        k_min = float(values[np.argsort(losses, kind="stable")[:K_MIN_LOSS]].mean())
    else:
        k_min = float("nan")
    return {"max": float(values.max()), "avg_last10": float(values[-K_LAST:].mean()), "k_min_train_loss": k_min}


def best_evaluation(history: Sequence[dict[str, Any]], key: str = "score") -> dict[str, Any] | None:
    """The evaluation that ``max`` selects: the first one reaching the highest ``key`` (None if none)."""
    rows = [h for h in history if key in h]
    return max(rows, key=lambda h: h[key]) if rows else None  # max() keeps the first of equals


def wilson_ci(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval for a binomial proportion (successes out of n); (0, 1) for n = 0."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_ci(values: np.ndarray, z: float = 1.96) -> tuple[float, float]:
    """Normal-approximation 95% interval of a mean, clipped to [0, 1] (scores are rewards in [0, 1])."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return (float(values.mean()), float(values.mean())) if len(values) else (0.0, 1.0)
    half = z * float(values.std(ddof=1)) / math.sqrt(len(values))
    m = float(values.mean())
    return (max(0.0, m - half), min(1.0, m + half))
