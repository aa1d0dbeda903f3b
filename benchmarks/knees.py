"""Each policy's knee: where its score-vs-training curve stops paying for more steps.

Reads the long single-seed curve runs in ``results/knees/records/`` (one per policy, evaluated
every 1000-2000 steps from the start on the human Push-T data, paper data protocol) and writes
``results/knees/knees.json`` and a table on stdout.

The knee rule: the first evaluated step at which the curve's running max reaches ``FRACTION``
(95%) of the whole run's max. The quick preset's budget is that step rounded up to a multiple of
the evaluation schedule's unit (``dpbench.presets.EVALS_PER_BUDGET`` x 50 steps). One seed per
policy, and a cosine schedule over the long run, so a knee is a budget estimate, not a result:
the quick records (3 seeds at that budget) are the result.

    python benchmarks/knees.py [--records results/knees] [--fraction 0.95]
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import datetime, timezone
from pathlib import Path

from dpbench.presets import EVALS_PER_BUDGET
from dpbench.results import load_records

FRACTION = 0.95
UNIT = EVALS_PER_BUDGET * 50  # quick budgets are multiples of 1000 steps


def knee(history: list[dict], fraction: float) -> dict:
    """The knee of one run's history: step, train-minutes and running max there, and the run's max."""
    scored = [h for h in history if "score" in h]
    best = max(h["score"] for h in scored)
    running = -math.inf
    for h in scored:
        running = max(running, h["score"])
        if running >= fraction * best:
            return {
                "knee_step": h["step"],
                "knee_train_min": round(h["train_seconds"] / 60, 2),
                "running_max_at_knee": round(running, 4),
                "run_max": round(best, 4),
                "run_steps": scored[-1]["step"],
                "run_train_min": round(scored[-1]["train_seconds"] / 60, 2),
                "quick_steps": int(math.ceil(h["step"] / UNIT) * UNIT),
            }
    raise AssertionError("unreachable: the max itself reaches the fraction")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=Path, default=Path("results/knees"), help="results dir holding records/")
    ap.add_argument("--fraction", type=float, default=FRACTION, help="share of the run's max that marks the knee")
    args = ap.parse_args()
    records, problems = load_records(args.records)
    for p in problems:
        print(p)
    rows = {}
    for r in sorted(records, key=lambda r: r["policy"]):
        rows[r["policy"]] = {
            "cell_id": r["cell_id"],
            "command": r["command"],
            "hardware": r["hardware"],
            "date": r["date"],
            **knee(r["history"], args.fraction),
        }
    print(
        f"{'policy':24s} {'knee step':>9s} {'train-min':>9s} {'max by knee':>11s} {'run max':>8s} {'quick steps':>11s}"
    )
    for name, k in rows.items():
        print(
            f"{name:24s} {k['knee_step']:9d} {k['knee_train_min']:9.2f} {k['running_max_at_knee']:11.3f} "
            f"{k['run_max']:8.3f} {k['quick_steps']:11d}"
        )
    out = args.records / "knees.json"
    out.write_text(
        json.dumps(
            {
                "rule": f"first evaluated step whose running max >= {args.fraction} x the run's max",
                "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "policies": rows,
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
