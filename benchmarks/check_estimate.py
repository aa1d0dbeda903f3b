"""How far ``dpbench sweep --dry-run``'s estimates land from what cells really took: leave-one-out over records.

Each of today's CPU records is estimated (``dpbench.sweep.estimate``) from every other record the dry run reads,
superseded ones included (``evidence.rate_records``), as a machine of the record's own kind of CPU would
estimate it before running it (records of no known kind: as a machine of no known kind), and compared with its
measured CPU-minutes (training and every evaluation, held-out included: each phase's wall seconds x the cores it
kept busy, ``records.busy_cores``, the measure the estimate itself is built from; torch threads where a record
has no meter). Once with the cell's model given (``cost_key``: for training, this kind
of CPU's records of the same model come first, today's dry run) and once without (the tiers before that rule);
the summary also gives both over the records that carry a kind, the only ones the rule can change. Other seeds
of the same cell stay in: that is what a sweep has when it reaches a cell's second seed; ``--alone`` removes
every record of the same policy and task, the case of a cell with no record of its own yet.

    python benchmarks/check_estimate.py [--out results] [--alone] [--kind AVX2]

Prints one line per record and a summary: the median and the spread of estimate / measured, per mode. Writes
nothing; the figures that docs/measurements.md quotes come from this command.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from statistics import median
from types import SimpleNamespace
from typing import Any

from dpbench.data.registry import variant_of
from dpbench.errors import reader_gone
from dpbench.records import busy_cores, cell_seconds
from dpbench.sweep.estimate import Rates, cost_key, estimate_cell
from dpbench.sweep.evidence import SUPERSEDED, demo_lengths, env_step_ms, rate_records

STEP_MS, LENGTHS = env_step_ms(), demo_lengths()  # read once, not per estimate


def measured_minutes(record: dict[str, Any]) -> float:
    """The record's CPU-minutes: training's wall seconds x its busy cores, plus the rest of the whole-cell wall time
    (``records.cell_seconds``: every evaluation) x evaluation's. Torch threads only bound the busy cores: a
    2-thread IBC cell on the Zen 3 kept 1.39 cores busy training and 1.80 evaluating."""
    train_s = record["wall"]["train_s"]
    evals_s = cell_seconds(record) - train_s
    return (train_s * busy_cores(record, "train") + evals_s * busy_cores(record, "eval")) / 60


def estimated_minutes(record: dict[str, Any], others: list[dict[str, Any]], with_model: bool) -> float | None:
    """The dry run's CPU-minutes for ``record``'s cell from ``others``, on a machine of the record's kind."""
    config = record["config"]
    train = config["train"]
    tcfg = SimpleNamespace(**{k: train[k] for k in ("steps", "eval_every", "eval_after", "eval_episodes")})
    tcfg.heldout_episodes = train.get("heldout_episodes", 0)
    cost = cost_key(config["policy"], train.get("batch_size")) if with_model else None
    hw = record["hardware"]
    rates = Rates(others, STEP_MS, hw.get("cpu_capability"), LENGTHS, hw.get("cpu_family"))
    variant = variant_of(record.get("dataset") or {})
    est = estimate_cell(
        record["policy"], record["env"], record["obs"], tcfg, record["config_hash"], rates,
        record.get("action_mode"), variant, cost,
    )  # fmt: skip
    return est.total_min


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results"), help="the results dir whose records to check")
    ap.add_argument("--alone", action="store_true", help="estimate each without any record of its policy and task")
    ap.add_argument("--kind", default=None, help="only records of this kind of CPU (e.g. AVX2)")
    args = ap.parse_args()
    evidence = [
        r
        for r in rate_records([args.out])
        if (r.get("hardware") or {}).get("device", "cpu") == "cpu" and r.get("history") and "policy" in r["config"]
    ]
    records = [r for r in evidence if not r.get(SUPERSEDED)]
    ratios: dict[str, list[float]] = {
        "with model": [],
        "without": [],
        "with model, kind known": [],
        "without, kind known": [],
    }
    print(f"{'record':<80} {'measured':>9} {'with model':>11} {'without':>9}")
    for r in records:
        if args.kind and r["hardware"].get("cpu_capability") != args.kind:
            continue
        if args.alone:
            others = [o for o in evidence if (o["policy"], o["env"]) != (r["policy"], r["env"])]
        else:
            others = [o for o in evidence if o is not r]
        real = measured_minutes(r)
        row = []
        for mode, with_model in (("with model", True), ("without", False)):
            est = estimated_minutes(r, others, with_model)
            row.append(f"{est:>9.0f}" if est is not None else f"{'?':>9}")
            if est is not None and real > 0:
                ratios[mode].append(est / real)
                if r["hardware"].get("cpu_capability"):  # only these can meet the this-kind tier
                    ratios[f"{mode}, kind known"].append(est / real)
        print(f"{r['cell_id'][:80]:<80} {real:>9.0f} {row[0]:>11} {row[1]:>9}")
    for mode, xs in ratios.items():
        if not xs:
            continue
        logs = sorted(abs(math.log(x)) for x in xs)
        within = sum(1 for x in xs if 0.8 <= x <= 1.25)
        print(
            f"{mode}: {len(xs)} records; estimate / measured median {median(xs):.2f} "
            f"(range {min(xs):.2f}-{max(xs):.2f}); median |log ratio| {median(logs):.2f}; "
            f"{within} of {len(xs)} within 0.8-1.25x"
        )


if __name__ == "__main__":
    try:
        main()
        sys.stdout.flush()  # a reader that left (`... | head`) shows here, inside the try
    except BrokenPipeError:
        sys.exit(reader_gone())
