"""The late-trend statistic (dpbench.metrics.late_trend) against a second implementation, and its mark in the paper
layout."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from test_tables import make_record

from dpbench.metrics import late_trend
from dpbench.paper_table import format_paper_table


def _lstsq_trend(curves: list[list[float]], window: int = 10) -> tuple[float, float]:
    """The same fixed-effects line by the textbook route: a design matrix with one indicator column per seed and the
    evaluation index, solved by least squares; the slope's standard error from sigma^2 (X'X)^-1."""
    tails = [np.asarray(c[-window:], float) for c in curves]
    rows, ys = [], []
    for s, y in enumerate(tails):
        for i, v in enumerate(y):
            rows.append([1.0 if k == s else 0.0 for k in range(len(tails))] + [float(i)])
            ys.append(v)
    x, y = np.array(rows), np.array(ys)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    sigma2 = float(resid @ resid) / (len(y) - x.shape[1])
    se = math.sqrt(sigma2 * np.linalg.inv(x.T @ x)[-1, -1])
    return beta[-1] * (max(len(t) for t in tails) - 1), beta[-1] / se


def test_the_trend_is_the_fixed_effects_least_squares_line():
    rng = np.random.default_rng(3)
    # three seeds, one cut short (7 evaluations): 0.02 a step of rise plus noise, each seed at its own level
    curves = [list(0.3 + 0.1 * s + 0.02 * np.arange(n) + rng.normal(0, 0.03, n)) for s, n in ((0, 11), (1, 11), (2, 7))]
    trend = late_trend(curves)
    rise, t = _lstsq_trend(curves)
    assert trend is not None and trend.window == 10
    assert trend.rise == pytest.approx(rise, rel=1e-9) and trend.t == pytest.approx(t, rel=1e-9)
    assert trend.rising  # ~0.18 over the window, t well above 2


def test_flat_noisy_and_short_curves_are_not_rising():
    rng = np.random.default_rng(0)
    flat = [list(0.8 + rng.normal(0, 0.04, 11)) for _ in range(3)]
    trend = late_trend(flat)
    assert trend is not None and not trend.rising
    # a clean but tiny rise (0.03 over the window) is below what the tables' 2 decimals can show
    tiny = late_trend([list(0.5 + 0.003 * np.arange(11) + np.tile([0.001, -0.001], 6)[:11])])
    assert tiny is not None and tiny.t > 2 and not tiny.rising
    # a smoke run's 2-4 evaluations say nothing of its curve's end; a seed with 5 counts
    assert late_trend([[0.1, 0.2, 0.4, 0.5]]) is None and late_trend([[0.1, 0.2], [0.3, 0.4, 0.5]]) is None
    assert late_trend([[0.1, 0.2, 0.4, 0.5, 0.7]]).rise == pytest.approx(0.6)  # by hand: slope 1.5/10, 4 steps


def test_a_cell_still_rising_is_marked_in_the_paper_layout_and_its_csv():
    # DP-C climbs 0.05 an evaluation to the end; LSTM-GMM is flat at 0.6 (give or take 0.01).
    up = [
        make_record("diffusion", s, [0.3 + 0.05 * i + 0.01 * (-1) ** (i + s) for i in range(11)], [True])
        for s in (0, 1)
    ]
    flat = [make_record("lstm_gmm", s, [0.6 + 0.01 * (-1) ** i for i in range(11)], [True]) for s in (0, 1)]
    for r in (*up, *flat):
        r["preset"] = "quick"
    text = format_paper_table([*up, *flat], "md", claims=True, envs=["pusht"])
    dpc = next(line for line in text.splitlines() if line.startswith("| DP-C |"))
    lstm = next(line for line in text.splitlines() if line.startswith("| LSTM-GMM |"))
    assert "↗" in dpc and "↗" not in lstm
    assert "↗ still rising when its budget ended" in text and "DP-C Push-T +0.45" in text  # 0.05 x 9 intervals
    assert "DP-C 0.80 (n=2) ↗ vs LSTM-GMM 0.61 (n=2):" in text  # the claims name it too
    rows = {
        r["policy"]: r for r in csv.DictReader(io.StringIO(format_paper_table([*up, *flat], "csv", envs=["pusht"])))
    }
    assert rows["diffusion_cnn"]["still_rising"] == "True" and float(
        rows["diffusion_cnn"]["late_rise"]
    ) == pytest.approx(0.45, abs=0.01)
    assert rows["lstm_gmm"]["still_rising"] == "False"
