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
RISING_MIN = 0.05  # the least rise over the last quarter that matters at the 2 decimals the tables show
TREND_TAIL = 0.25  # the end of training judged: evaluations in the last quarter of each seed's steps
TREND_MIN_EVALS = 5  # per seed in that quarter (quick and paper presets make 6); fewer say nothing of its slope
TREND_MIN_SEEDS = 2  # one seed's few late points cannot tell a trend from evaluation noise
LATE_TREND_RULE = (
    f"over the last quarter of training (each seed's evaluations there, {TREND_MIN_EVALS} or more, at least "
    f"{TREND_MIN_SEEDS} seeds) a least-squares line with one intercept per seed climbs by at least {RISING_MIN} with "
    f"t > {RISING_T:.0f} (dpbench.metrics.late_trend)"
)


@dataclass(frozen=True)
class LateTrend:
    """A cell's scores over the last quarter of training: ``rise``, the fitted line's change over that quarter
    (score units: success rate, or Push-T's max reward), ``t``, its slope over the slope's standard error, and the
    points and seeds it rests on."""

    rise: float
    t: float
    points: int
    seeds: int

    @property
    def rising(self) -> bool:
        """Still improving when training stopped: a rise of at least RISING_MIN with t above RISING_T."""
        return self.rise >= RISING_MIN and self.t > RISING_T


def late_trend(curves: Sequence[Sequence[tuple[float, float]]], tail: float = TREND_TAIL) -> LateTrend | None:
    """Whether a cell was still improving when its budget ended. ``curves``: per seed, its evaluations as (training
    step, score) in order. Each seed's evaluations at or after ``1 - tail`` of its last step are kept (a seed with
    fewer than TREND_MIN_EVALS there is left out), and one least-squares line is fitted through all of them with
    the step as a fraction of the seed's budget, a common slope and one intercept per seed (the fixed-effects
    estimator); its standard error comes from the pooled residuals. ``rise`` is the slope times ``tail``. None with
    fewer than TREND_MIN_SEEDS seeds left.

    The standard error treats evaluations as independent draws around the line. They are not quite: successive
    checkpoints are alike and every evaluation uses the same test seeds, so t overstates the evidence somewhat;
    hence the floor RISING_MIN on the rise itself. A screen for a budget cut short, not a test to quote a p-value
    from. Why the last quarter: the quick presets evaluate over the second half of training, and many curves that
    rise across it are flat by its end (docs/DESIGN.md, "Whether a budget was long enough")."""
    tails = []  # per seed: (step as a fraction of its budget, score), centred on the seed's own means
    for curve in curves:
        if not curve:
            continue
        last = float(curve[-1][0]) or 1.0
        pts = np.array([(step / last, score) for step, score in curve if step >= (1 - tail) * last - 1e-9], float)
        if len(pts) >= TREND_MIN_EVALS:
            tails.append(pts - pts.mean(axis=0))  # centring each seed is its intercept
    if len(tails) < TREND_MIN_SEEDS:
        return None
    x, y = np.concatenate([p[:, 0] for p in tails]), np.concatenate([p[:, 1] for p in tails])
    sxx = float(x @ x)
    if sxx == 0:
        return None
    slope = float(x @ y) / sxx
    dof = len(x) - len(tails) - 1
    se = math.sqrt(float(((y - slope * x) ** 2).sum()) / dof / sxx)
    t = slope / se if se > 0 else (math.inf if slope > 0 else -math.inf if slope < 0 else 0.0)
    return LateTrend(rise=slope * tail, t=t, points=len(x), seeds=len(tails))
