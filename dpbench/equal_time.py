"""Score at equal CPU time: the view a user with a fixed CPU budget chooses a policy by.

A record's history gives, at each evaluation, the training wall time so far (evaluations excluded).
CPU-minutes are that time times the cores the run kept busy while training (``dpbench.records.busy_cores``:
measured, or for older records bounded by the torch threads), so runs on 1 and 2 threads compare.
For a budget of T CPU-minutes, a seed's score is the best evaluation made within T (the paper's max,
cut at T). A run that ended before T keeps its final max, marked as such; a run whose first evaluation
came after T has no score at T. Only CPU records count: GPU minutes are another currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dpbench.host import cpu_kind
from dpbench.records import busy_cores, process_kinds
from dpbench.render import Table
from dpbench.results import Group

DEFAULT_MINUTES = (5.0, 10.0, 20.0, 40.0)


def is_cpu(record: dict[str, Any]) -> bool:
    """Whether the record's run trained on the CPU (records without a device did)."""
    return record.get("hardware", {}).get("device", "cpu") == "cpu"


def cpu_minutes(record: dict[str, Any], entry: dict[str, Any]) -> float:
    """Training CPU-minutes at a history entry: train wall seconds x the cores training kept busy / 60."""
    return float(entry["train_seconds"]) * busy_cores(record, "train") / 60


def score_within(record: dict[str, Any], minutes: float) -> tuple[float, bool]:
    """(best score among the evaluations made within ``minutes`` training CPU-minutes, whether the run
    ended before that budget). NaN when no evaluation came that early."""
    hist = [h for h in record["history"] if "score" in h]
    within = [h["score"] for h in hist if cpu_minutes(record, h) <= minutes]
    ended = bool(hist) and cpu_minutes(record, hist[-1]) <= minutes
    return (float(max(within)) if within else float("nan")), ended


def cpu_kinds(records: Sequence[dict[str, Any]]) -> set[str]:
    """The kinds of CPU behind ``records`` (``dpbench.host.cpu_kind``: "AVX2 25/1", "AVX512 26/2", or "AVX2"
    before records held the family/model); "unrecorded" for records made before dpbench wrote the SIMD level
    (commit d127b68) or for a process of a resumed cell that did not say. A cell resumed on another kind names
    each of its processes' kinds (``records.process_kinds``)."""
    return {k or "unrecorded" for r in records for k in process_kinds(r) or {cpu_kind(r.get("hardware") or {})}}


def named_cpu_kinds(records: Sequence[dict[str, Any]]) -> str:
    """``cpu_kinds`` joined ("AVX2+unrecorded") when any record names its kind; "" when none does."""
    kinds = cpu_kinds(records)
    return "+".join(sorted(kinds)) if kinds != {"unrecorded"} else ""


def equal_time_table(groups: Sequence[Group], minutes: Sequence[float] = DEFAULT_MINUTES) -> Table:
    """Per CPU-only group, the mean over seeds of the best score within each budget of training CPU-minutes."""
    headers = ["policy", "preset", "config", "seeds", "CPU kind"]
    headers += [*(f"≤ {m:g} CPU-min" for m in minutes), "CPU-min per seed"]
    rows, ended_any, kinds = [], False, set()
    for g in sorted(groups, key=lambda g: (g.task, g.policy, g.preset, g.config_hash)):
        recs = [r for r in g.records if is_cpu(r)]
        if not recs:
            continue
        row_kinds = cpu_kinds(recs)
        kinds |= row_kinds
        row = [g.policy, g.preset, g.config_hash, str(len(recs)), "+".join(sorted(row_kinds))]
        for m in minutes:
            cells = [score_within(r, m) for r in recs]
            values = np.array([c[0] for c in cells])
            if np.isnan(values).any():
                row.append("–")
                continue
            mark = " ᵉ" if all(c[1] for c in cells) else ""
            ended_any |= bool(mark)
            row.append(f"{values.mean():.3f}{mark}")
        total = np.mean([cpu_minutes(r, r["history"][-1]) for r in recs if r["history"]] or [float("nan")])
        row.append(f"{total:.1f}")
        rows.append(row)
    notes = [
        "Each cell: mean over seeds of the best evaluation made within that many training CPU-minutes (training "
        "wall time x the cores it kept busy, measured or, in older records, its torch threads; evaluation time "
        "excluded); – : some seed had no evaluation that early. CPU records only."
    ]
    if len(kinds) > 1:
        notes.append(
            "CPU kind: the SIMD level torch used (hardware.cpu_capability; unrecorded before commit d127b68) and "
            "the x86 family/model where recorded (hardware.cpu_family; 25/1 Zen 3, 25/17 Zen 4, 26/2 Zen 5; a kind "
            "without it, e.g. AVX2, is a record made before dpbench wrote it, on any CPU of that SIMD level). A "
            "CPU-minute buys different work on each (up to ~4x, docs/measurements.md): compare rows of one kind, "
            "and read a row of several kinds (AVX2 25/1+AVX512 26/2) as a mean over machines of different speeds."
        )
    if ended_any:
        notes.append("ᵉ every seed's run had ended by then: its whole-run max (a longer budget might score higher).")
    return Table(headers, rows, notes, label_cols=5)  # policy .. CPU kind
