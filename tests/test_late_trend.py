"""The late-trend statistic (dpbench.metrics.late_trend) against a second implementation, and its marks in the
tables."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from test_tables import make_record

from dpbench.metrics import late_trend
from dpbench.paper_table import format_paper_table
from dpbench.tables import format_table


def _lstsq_trend(curves: list[list[tuple[float, float]]]) -> tuple[float, float]:
    """The same fixed-effects line by the textbook route: keep each seed's evaluations in its last quarter of steps,
    build a design matrix with one indicator column per seed and the step as a fraction of that seed's budget, solve
    by least squares, and take the slope's standard error from sigma^2 (X'X)^-1. Returns (rise over the quarter, t)."""
    tails = []
    for c in curves:
        last = c[-1][0]
        tails.append([(s / last, y) for s, y in c if s / last >= 0.75])
    rows, ys = [], []
    for k, pts in enumerate(tails):
        for x, y in pts:
            rows.append([1.0 if j == k else 0.0 for j in range(len(tails))] + [x])
            ys.append(y)
    x, y = np.array(rows), np.array(ys)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    sigma2 = float(resid @ resid) / (len(y) - x.shape[1])
    se = math.sqrt(sigma2 * np.linalg.inv(x.T @ x)[-1, -1])
    return beta[-1] * 0.25, beta[-1] / se


def _quick(scores: np.ndarray, budget: int = 10_000) -> list[tuple[float, float]]:
    """A quick preset's schedule: 11 evaluations over the second half of the budget."""
    steps = np.linspace(budget / 2, budget, len(scores))
    return list(zip(steps.tolist(), np.asarray(scores, float).tolist()))


def test_the_trend_is_the_fixed_effects_least_squares_line_over_the_last_quarter():
    rng = np.random.default_rng(3)
    # three seeds at their own levels, the third with twice the budget: each is judged on its own last quarter
    curves = [
        _quick(0.3 + 0.1 * k + 0.02 * np.arange(11) + rng.normal(0, 0.03, 11), budget)
        for k, budget in ((0, 10_000), (1, 10_000), (2, 20_000))
    ]
    trend = late_trend(curves)
    rise, t = _lstsq_trend(curves)
    assert trend is not None and (trend.points, trend.seeds) == (18, 3)  # 6 evaluations each at 75-100%
    assert trend.rise == pytest.approx(rise, rel=1e-9) and trend.t == pytest.approx(t, rel=1e-9)
    assert trend.rising  # 0.02 an evaluation, 5% of the budget apart: ~0.1 over the quarter


def test_a_rise_that_flattened_before_the_end_is_not_rising():
    # The helper review's case: a curve that climbs over the second half but is flat over its last quarter
    # (LSTM-GMM ToolHang, DP-T Square ph) was flagged by a last-10-evaluations window; the last quarter is flat.
    rise_then_flat = np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.25, 0.26, 0.25, 0.24, 0.25])
    curves = [_quick(rise_then_flat + 0.01 * k) for k in range(3)]
    trend = late_trend(curves)
    assert trend is not None and abs(trend.rise) < 0.01 and not trend.rising


def test_flat_tiny_single_seed_and_smoke_curves_are_not_rising():
    rng = np.random.default_rng(0)
    trend = late_trend([_quick(0.8 + rng.normal(0, 0.04, 11)) for _ in range(3)])
    assert trend is not None and not trend.rising
    # a clean but tiny rise (0.02 over the quarter) is below what the tables' 2 decimals show
    tiny = late_trend([_quick(0.5 + 0.004 * np.arange(11) + 0.0005 * (-1) ** np.arange(11)) for _ in range(2)])
    assert tiny is not None and tiny.t > 2 and not tiny.rising
    assert late_trend([_quick(0.1 * np.arange(11))]) is None  # one seed: too few late points to judge
    smoke = [[(100.0, 0.1), (200.0, 0.5)], [(100.0, 0.2), (200.0, 0.6)]]
    assert late_trend(smoke) is None  # 1 evaluation each in the last quarter
    # by hand: 2 seeds, 5 points each at x = 0.8 ... 1.0 (steps 80-100 of 100), y = 0.1, 0.2, 0.4, 0.5, 0.7 and the
    # same + 0.1: Sxy = 2 x 0.075, Sxx = 2 x 0.025, slope 3, rise over the quarter 0.75
    hand = [[(float(s), y + d) for s, y in zip((80, 85, 90, 95, 100), (0.1, 0.2, 0.4, 0.5, 0.7))] for d in (0, 0.1)]
    assert late_trend(hand).rise == pytest.approx(0.75)


def _records(up_max: float = 0.8) -> list[dict]:
    # 20 evaluations (steps 100-2000: 6 in the last quarter). DP-C climbs to the end; LSTM-GMM is flat at 0.6.
    up = [
        make_record("diffusion", s, [min(up_max, 0.03 * i) + 0.01 * (-1) ** (i + s) for i in range(20)], [True])
        for s in (0, 1)
    ]
    flat = [make_record("lstm_gmm", s, [0.6 + 0.01 * (-1) ** i for i in range(20)], [True]) for s in (0, 1)]
    for r in (*up, *flat):
        r["preset"] = "quick"
    return [*up, *flat]


def test_a_cell_still_rising_is_marked_in_every_table_and_its_csv():
    recs = _records()
    text = format_paper_table(recs, "md", claims=True, envs=["pusht"])
    dpc = next(line for line in text.splitlines() if line.startswith("| DP-C |"))
    lstm = next(line for line in text.splitlines() if line.startswith("| LSTM-GMM |"))
    assert "↗" in dpc and "↗" not in lstm
    # by hand: 0.03 an evaluation, 100 steps of 2000 apart, is 0.6 a budget: 0.15 over the quarter
    assert "↗ still rising when its budget ended" in text and "DP-C Push-T +0.15" in text
    assert "DP-C 0.57 (n=2) ↗ vs LSTM-GMM 0.61 (n=2):" in text  # the claims mark it too: max (0.56 + 0.58) / 2
    rows = {r["policy"]: r for r in csv.DictReader(io.StringIO(format_paper_table(recs, "csv", envs=["pusht"])))}
    dp_row = rows["diffusion_cnn"]
    assert dp_row["dpbench_policy"] == "diffusion"  # the paper's row name, and the name records and --policy use
    assert dp_row["still_rising"] == "True" and float(dp_row["late_rise"]) == pytest.approx(0.15, abs=0.01)
    assert (dp_row["late_rise_points"], dp_row["late_rise_seeds"]) == ("12", "2") and float(dp_row["late_rise_t"]) > 2
    assert rows["lstm_gmm"]["still_rising"] == "False"
    pivot = format_table(recs, "md")
    assert "↗+0.15" in pivot and "↗+x: still rising" in pivot
    # the mark is no setting: a cell in the paper's setting that is rising gets no dagger note from it
    paper = [{**r, "preset": "paper"} for r in recs]
    assert "not the paper's setting" not in format_table(paper, "md")


def test_the_claims_do_not_mark_a_max_already_at_1():
    # DP-C hits 1.0 once early (a lucky evaluation) and its curve still climbs at the end: the layout marks it
    # (avg-last-10 can rise), the claims, which compare max, and 1.0 cannot rise, do not.
    recs = _records()
    for r in recs[:2]:
        r["history"] = [{**h, "score": 1.0 if i == 5 else 0.5 + 0.02 * i} for i, h in enumerate(r["history"])]
        r["final"] = {**r["final"], "max": 1.0}
    text = format_paper_table(recs, "md", claims=True, envs=["pusht"])
    dpc = next(line for line in text.splitlines() if line.startswith("| DP-C |"))
    assert "↗" in dpc and "DP-C 1.00 (n=2) vs LSTM-GMM" in text and "↗: that cell of ours" not in text
