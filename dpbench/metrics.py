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

Over a cell's seeds: ``late_trend``, whether the scores were still rising at the end of the budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
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


RISING_T = 2.0  # the slope's t-statistic above which a late rise is not evaluation noise (one-sided p ~ 0.03)
RISING_MIN = 0.05  # the least rise over the window that matters at the 2 decimals the tables show
TREND_MIN_EVALS = 5  # a seed with fewer evaluations (a smoke run) says nothing about its curve's end


@dataclass(frozen=True)
class LateTrend:
    """A cell's scores over each seed's last evaluations: ``rise``, the fitted line's change from the window's
    first evaluation to its last (score units: success rate, or Push-T's max reward), and ``t``, its slope over
    the slope's standard error."""

    rise: float
    t: float
    window: int

    @property
    def rising(self) -> bool:
        """Still improving when training stopped: a rise of at least RISING_MIN with t above RISING_T."""
        return self.rise >= RISING_MIN and self.t > RISING_T


def late_trend(curves: Sequence[Sequence[float]], window: int = K_LAST) -> LateTrend | None:
    """Whether a cell was still improving at the end of its budget: the least-squares slope of score on evaluation
    index over each seed's last ``window`` evaluations (``curves``: one list of evaluation scores per seed, in
    order; evaluations are evenly spaced in steps), one intercept per seed and a common slope (the fixed-effects
    estimator), with its standard error from the pooled residuals. None when the residuals have no degree of
    freedom or no seed has TREND_MIN_EVALS evaluations (those with fewer are left out).

    The standard error treats evaluations as independent draws around the line. They are not quite: successive
    checkpoints are alike and every evaluation uses the same test seeds, so t overstates the evidence somewhat;
    hence the floor RISING_MIN on the rise itself. A screen for under-training, not a test to quote a p-value from."""
    tails = [np.asarray(c[-window:], dtype=float) for c in curves if len(c) >= TREND_MIN_EVALS]
    sxx = sxy = 0.0
    for y in tails:
        x = np.arange(len(y), dtype=float)
        sxx += float(((x - x.mean()) ** 2).sum())
        sxy += float(((x - x.mean()) * (y - y.mean())).sum())
    dof = sum(len(y) for y in tails) - len(tails) - 1
    if dof <= 0 or sxx == 0:
        return None
    slope = sxy / sxx
    ssr = sum(float((((y - y.mean()) - slope * (np.arange(len(y)) - (len(y) - 1) / 2)) ** 2).sum()) for y in tails)
    se = math.sqrt(ssr / dof / sxx)
    t = slope / se if se > 0 else (math.inf if slope > 0 else -math.inf if slope < 0 else 0.0)
    span = max(len(y) for y in tails) - 1
    return LateTrend(rise=slope * span, t=t, window=span + 1)
