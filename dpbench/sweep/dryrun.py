"""``dpbench sweep --dry-run``: every cell of a grid with its state and estimated CPU-minutes
(``dpbench.sweep.estimate``), then the totals and the wall time they take."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from dpbench.data.registry import data_variant
from dpbench.host import cpu_kind
from dpbench.records import cell_seconds, make_cell_id, policy_slug, record_policy, split_cell_id
from dpbench.sweep.estimate import Rates, cost_key, estimate_cell
from dpbench.tasks import get_task


def format_minutes(minutes: float | None) -> str:
    """ "~38 min", "~2.4 h", or "?" when unknown."""
    if minutes is None:
        return "?"
    return f"~{minutes:.0f} min" if minutes < 120 else f"~{minutes / 60:.1f} h"


def cost_text(train_min: float, eval_min: float) -> tuple[str, str]:
    """A cell's estimate as the dry run prints it: ("~36 min", "(30 + 6)"). The total is the sum of the parts as
    printed (29.6 + 5.8 reads ~36, not ~35), in hours to one decimal from two hours on."""
    parts = round(train_min), round(eval_min)
    return format_minutes(float(sum(parts))), f"({parts[0]} + {parts[1]})"


def took_text(record: dict[str, Any]) -> tuple[tuple[str, str], tuple[float, float]]:
    """What a done cell took, from its record: its wall time as the dry run prints it ("4.7 h", "(131 + 151)":
    training + evaluation wall minutes, over all the processes that ran it; no "~", as it is measured), and those
    two parts in minutes. Evaluation is the whole cell's time less training (``records.cell_seconds``)."""
    total, train = cell_seconds(record) / 60, record["wall"]["train_s"] / 60
    parts = round(train), round(total - train)
    return (format_minutes(float(sum(parts))).lstrip("~"), f"({parts[0]} + {parts[1]})"), (train, total - train)


def _busy(workdir: Path) -> str | None:
    """The holder of a cell's lock when another process is training it now, else None (reads only)."""
    from dpbench.sweep.lock import CellLock

    lock = CellLock(workdir)
    return lock.holder() if lock.is_held() else None


def _record_key(cell_id: str, dataset_path: str) -> tuple:
    """A cell as far as it is known before its demos exist: its id but the data hash, and the demos' file name
    (task, variant, demonstrator version, episode count, cameras; ``records.data_identity``)."""
    head, data, tail = split_cell_id(cell_id)
    return head, data.rsplit("-", 1)[0], tail, PurePosixPath(dataset_path).name


def _other_demos(cell: Any, by_cell: dict[tuple[str, str, str], dict[str, Any]]) -> str:
    """Where the out dir holds a record of ``cell`` (a PreparedCell) trained on other demonstrations of the same
    kind (another content hash, or another recipe of scripted demos: ``records.data_identity``), a note naming
    it and how the demos differ; else "". Such a record neither counts as done nor pools with this cell."""
    rec = by_cell.get(_record_key(cell.cell_id, "")[:3])
    if rec is None:
        return ""
    theirs, store = rec.get("dataset", {}), getattr(cell.data, "store", None)
    counts = ""
    if store is not None and {"episodes", "steps"} <= set(theirs):
        counts = (
            f": {theirs['episodes']} episodes, {theirs['steps']:,} steps; these {store.n_episodes}, {store.n_steps:,}"
        )
    return f"  [a record of this cell, {split_cell_id(rec['cell_id'])[1]}, trained on other demos{counts}]"


def dry_run_report(
    planned: list[Any],
    records: list[dict[str, Any]],
    cores: int,
    out_records: list[dict[str, Any]] = (),
    cpu_capability: str | None = None,
    cpu_family: str | None = None,
    threads_per_cell: int = 1,
) -> list[str]:
    """The lines of ``dpbench sweep --dry-run``: one per cell (state, estimated CPU-minutes, cell id or what is
    missing, and the rates' basis), one per group of cells that cannot run here, then a headline with the totals and
    the wall time with ``cores`` workers, one cell each at a time, and one "  - " line per caveat. States: done, running
    (another process holds the cell now), resume (priced from its checkpoint's step on: the steps, evaluations and
    held-out episodes still to run; from step 0 when the checkpoint cannot be read), recorded (the sweep's out holds
    a record of the cell made from demos not collected here: the sweep finds it once it has collected the same demos,
    ``records.data_identity``), new, blocked. ``planned``: ``dpbench.sweep.cells.PlannedCell`` s;
    ``records``: the records that give the rates; ``out_records``: those in the sweep's out directory;
    ``cpu_capability``, ``cpu_family``: this machine's kind of CPU (``dpbench.host.cpu_capability()``,
    ``cpu_family()``; ``estimate.same_kind``), whose records' rates come first. ``threads_per_cell``: the torch threads
    each of ``cores`` workers gives its cell (fewer workers than cores: more than one), which makes the wall time an
    upper bound."""
    from dpbench.config import config_to_dict
    from dpbench.train import RESUME_FILE, checkpoint_progress

    rates = Rates(records, cpu_capability=cpu_capability, cpu_family=cpu_family)
    recorded = {_record_key(r["cell_id"], r["dataset"].get("path", "")): r for r in out_records}
    by_cell: dict[tuple[str, str, str], dict[str, Any]] = {}  # records by cell id but the data hash
    by_id = {r["cell_id"]: r for r in out_records}
    for r in out_records:
        by_cell.setdefault(_record_key(r["cell_id"], "")[:3], r)
    lines, todo, unknown, collect, n_recorded, n_this_cpu, n_other_task = [], [], 0, set(), 0, 0, 0
    collect_for_recorded: set[str] = set()  # demos a real sweep collects only to match records made elsewhere
    n_other_demos = n_superseded = n_running = 0
    blocked: dict[tuple[str, str], list[str]] = {}
    train_total = eval_total = 0.0
    n_took, took_train, took_eval = 0, 0.0, 0.0  # the done and recorded cells' measured wall minutes
    per_policy: dict[str, list[float]] = {}  # policy -> CPU-minutes of each of its cells with a rate
    for p in planned:
        spec, cfg = p.spec, p.config
        # robomimic's ph and mh cells share task, obs and seed: the variant tells them apart before their demos exist
        ph_mh = f" {data_variant(spec.dataset or '')}" if get_task(spec.env).action_modes else ""
        name = f"{cfg.policy_cls.name} {spec.env}/{cfg.obs}{ph_mh} seed {spec.seed}"
        if p.blocked:
            blocked.setdefault((f"{spec.env}/{cfg.obs}", p.problem), []).append(f"{cfg.policy_cls.name} {spec.seed}")
            continue
        found_path = p.cell.record_path if p.cell is not None else None
        if found_path is not None and found_path.exists():
            found = found_path.stem
            elsewhere = f"  [its record: {found}, another collection of the same demo recipe (another kind of CPU)]"
            took, split = "", ""
            if found in by_id:  # a record load_records could not read has no time to show
                (took, split), minutes = took_text(by_id[found])
                took_train, took_eval, n_took = took_train + minutes[0], took_eval + minutes[1], n_took + 1
            lines.append(
                f"  {'done':<8}{took:<9}{split:<13}{p.cell.cell_id}{elsewhere if found != p.cell.cell_id else ''}"
            )
            continue
        if p.missing is not None:  # its demos are not collected here: a record of the same cell may exist anyway
            task, slug = get_task(spec.env).name, policy_slug(spec.policy, cfg.policy_cls)
            cell_id = make_cell_id(task, cfg.obs, slug, f"{p.missing.kind}-?", spec.preset, cfg.chash, spec.seed)
            rec = recorded.get(_record_key(cell_id, p.missing.path))
            if rec is not None:
                n_recorded += 1
                collect_for_recorded.add(p.problem)
                (took, split), minutes = took_text(rec)
                took_train, took_eval, n_took = took_train + minutes[0], took_eval + minutes[1], n_took + 1
                lines.append(f"  recorded {took:<8}{split:<13}{rec['cell_id']}  [{p.problem}]")  # columns as done's
                continue
        holder = _busy(p.cell.lock_dir) if p.cell is not None else None
        if holder is not None:
            lines.append(f"  {'running':<8}{'':<22}{p.cell.cell_id}  [held by {holder}]")
            n_running += 1
            continue
        checkpoint = p.cell.workdir / RESUME_FILE if p.cell is not None else None
        state = "resume" if checkpoint is not None and checkpoint.exists() else "new"
        # None: unreadable, priced whole; pending: written before its step's evaluation, which is priced too
        progress = checkpoint_progress(checkpoint) if state == "resume" else (0, False)
        done, pending = progress if progress is not None else (None, False)
        variant = p.cell.variant if p.cell is not None else data_variant(spec.dataset or "")
        cost = cost_key(config_to_dict(cfg.pcfg), cfg.tcfg.batch_size)
        est = estimate_cell(
            record_policy(spec.policy, cfg.policy_cls),  # as its records name it: a plugin's by module:Class
            spec.env,
            cfg.obs,
            cfg.tcfg,
            cfg.chash,
            rates,
            p.action_mode,
            variant,
            cost,
            done_steps=done or 0,
            eval_pending=pending,
        )
        todo.append(est)
        if est.total_min is None:
            unknown += 1
        else:
            train_total += est.train_min or 0.0
            eval_total += est.eval_min or 0.0
            per_policy.setdefault(cfg.policy_cls.name, []).append(est.total_min)
            n_this_cpu += est.this_cpu
            n_other_task += est.other_task
            n_superseded += est.superseded
        if p.cell is None:
            collect.add(p.problem)
        what = p.cell.cell_id if p.cell is not None else f"{name} [{p.problem}]"
        shown, split = cost_text(est.train_min or 0.0, est.eval_min or 0.0) if est.total_min is not None else ("?", "")
        other = _other_demos(p.cell, by_cell) if p.cell is not None else ""
        n_other_demos += bool(other)
        if state == "new":
            resumed = ""
        elif done is None:
            resumed = "  [its checkpoint cannot be read: priced whole]"
        else:
            resumed = f"  [from step {done:,} of {cfg.tcfg.steps:,}{', its evaluation first' if pending else ''}]"
        lines.append(f"  {state:<8}{shown:<9}{split:<13}{what}  [{est.basis}]{resumed}{other}")
    for (task, problem), cells in blocked.items():
        lines.append(f"  {'blocked':<8}{'':<22}{task}, {len(cells)} cell(s) ({', '.join(cells)}): {problem}")
    total = train_total + eval_total
    known = len(todo) - unknown
    if known:
        head = (
            f"[dpbench] estimate: {len(todo)} cell(s) to run; {known} with a measured rate take {total / 60:.1f} "
            f"CPU-hours (training {train_total / 60:.1f}, evaluation {eval_total / 60:.1f}): {cores} worker(s), "
            f"one cell each at a time, about {total / 60 / max(cores, 1):.1f} h of wall time at one torch thread per "
            "cell"
            + (
                f" (each worker here gives its cell {threads_per_cell} threads, which shorten it by less than "
                f"{threads_per_cell}x: between {total / 60 / max(cores, 1) / threads_per_cell:.1f} h and that upper "
                "bound)"
                if threads_per_cell > 1
                else ""
            )
            + ". Per cell: CPU time, then (training + evaluation) in CPU-minutes (dpbench.sweep.estimate)."
        )
        # what the total leaves out, where a newcomer reads first (each is a caveat below)
        left = [f"{n_recorded} recorded cell(s)"] * bool(n_recorded) + [
            f"collecting {len(collect | collect_for_recorded)} dataset(s)"
        ] * bool(collect | collect_for_recorded)
        if left:
            head += f" Not in the total: {' and '.join(left)} (below)."
    elif todo:
        head = f"[dpbench] estimate: {len(todo)} cell(s) to run, none with a measured rate (no record of them yet)."
    else:
        head = "[dpbench] estimate: no cell to run."
    notes = []  # one caveat a line, under the headline
    if len(per_policy) > 1:
        ranked = sorted(per_policy.items(), key=lambda kv: -sum(kv[1]))
        notes.append(
            "per policy: "
            + ", ".join(f"{k} {sum(m) / 60:.1f} CPU-h ({len(m)} cell{'s' * (len(m) != 1)})" for k, m in ranked)
        )
    if n_took:
        notes.append(
            f"{n_took} done or recorded cell(s) took {(took_train + took_eval) / 60:.1f} h of wall time (training "
            f"{took_train / 60:.1f}, evaluation {took_eval / 60:.1f}), as their records measured it; each such "
            "line gives its cell's wall minutes (training + evaluation)"
        )
    if n_running:
        notes.append(f"{n_running} cell(s) running in another process now: not counted")
    if unknown and known:
        notes.append(f"{unknown} cell(s) without one are not counted")
    if n_other_task:
        notes.append(f"{n_other_task} of the {known} extrapolate a rate from other tasks (see each basis)")
    if n_superseded:
        notes.append(
            f"{n_superseded} of the {known} lean on superseded records (results/superseded: their scores no longer "
            "stand, their CPU time per step and per episode still measures the model; see each basis)"
        )
    if known and cpu_capability:
        notes.append(
            f"{n_this_cpu} of the {known} wholly from records made on this machine's kind of CPU "
            f"({cpu_kind({'cpu_capability': cpu_capability, 'cpu_family': cpu_family})}) or its SIMD level where a "
            "record names no family/model (each basis says which), the others partly or wholly from other or "
            "unrecorded kinds, which ran up to ~4x faster or slower (docs/measurements.md)"
        )
    needed = collect | collect_for_recorded
    if needed:
        only = needed - collect
        notes.append(
            f"the collection of {len(needed)} dataset(s) first is not included"
            + (
                f" ({len(only)} of them only for recorded cells: a real sweep collects every cell's demos before it "
                "can tell whether a record was made from the same ones)"
                if only
                else ""
            )
        )
    if n_recorded:
        notes.append(
            f"{n_recorded} cell(s) have a record made from demos not collected here (recorded): not counted, "
            "as the sweep finds that record once it has collected the same demos (records.data_identity); should "
            "this machine's collection come out different (another step count), they run again"
        )
    if n_other_demos:
        notes.append(
            f"{n_other_demos} of the cells to run have a record trained on other demos (named on their line): "
            "those seeds do not pool with these"
        )
    if blocked:
        notes.append(f"{sum(len(c) for c in blocked.values())} cell(s) cannot run here (blocked)")
    return [*lines, head, *(f"  - {n}" for n in notes)]
