"""Running a grid: skip the cells that have records, run the rest on a backend, report each cell as it
finishes, and retry cells another process holds until their record appears."""

from __future__ import annotations

import glob
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

from dpbench.errors import DpbenchError
from dpbench.records import read_record, split_cell_id
from dpbench.runner import PreparedCell
from dpbench.sweep.backends import BACKENDS, Backend, InProcess, LocalPool, RayPool, plan_workers
from dpbench.sweep.progress import ProgressView
from dpbench.sweep.progress import pump as pump_progress
from dpbench.train import RESUME_FILE

_RETRY_BUSY_S = 2.0  # how long a cell another process holds waits before it is submitted again
_MAX_NOTES = 3  # cells starting anew beside another version's runs: named one by one up to this many


def other_versions(cell: PreparedCell) -> list[Path]:
    """The unfinished work dirs (a checkpoint, no record) and the records under the cell's OUT of the same env,
    obs, policy, demonstrations, preset and seed under another config hash: its config, a --set, or (a plugin's)
    policy code differed. They neither resume nor count for this cell."""
    head, data, preset_seed = split_cell_id(cell.cell_id)
    preset_hash, seed = preset_seed.rsplit("__", 1)
    preset, chash = preset_hash.rsplit("-", 1)
    any_hash = "[0-9a-f]" * len(chash)  # exactly a hash: not the longer preset "smoke-long" of "smoke"
    pattern = glob.escape(f"{head}__{data}__{preset}-") + any_hash + glob.escape(f"__{seed}")
    out = cell.spec.out
    records = sorted((out / "records").glob(pattern + ".json"))
    finished = {r.name.removesuffix(".json") for r in records}  # their work dirs keep a checkpoint too
    found = [d for d in sorted((out / "work").glob(pattern)) if (d / RESUME_FILE).exists() and d.name not in finished]
    found += records
    return [p for p in found if p.name.removesuffix(".json") != cell.cell_id]


def _note_other_versions(starting: list[PreparedCell], grid: set[str]) -> None:
    """Say which cells start from step 0 although OUT holds runs of them under another config hash: after an edit
    to a plugin policy's code (a comment will do) a rerun would otherwise start over without a word. Cells of this
    grid (a sweep's deliberate variants, e.g. another normalizer) are not news."""
    found = ((c, [p for p in other_versions(c) if p.name.removesuffix(".json") not in grid]) for c in starting)
    noted = [(c, others) for c, others in found if others]
    for cell, others in noted[:_MAX_NOTES]:
        out = cell.spec.out
        names = ", ".join(str(p.relative_to(out)) for p in others[:2]) + (" ..." if len(others) > 2 else "")
        print(
            f"[dpbench] note: {cell.cell_id} starts from step 0; {out} holds this policy, env, demonstrations, "
            f"preset and seed under another config hash ({names}): another config, --set or policy code made "
            "them, and they stay apart from this cell (no resume, their own table rows).",
            file=sys.stderr,
        )
    if len(noted) > _MAX_NOTES:
        print(f"[dpbench] note: and {len(noted) - _MAX_NOTES} more cells like these", file=sys.stderr)


def run_grid(
    cells: list[PreparedCell],
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every cell that has no record yet and return all records in ``cells`` order. Cells that fail are
    reported as they fail; the others still run, then one DpbenchError names the failures.

    ``backend``: "local" (a process pool when more than one worker is planned, else this process) or
    "ray" (``address``: the cluster, default the running one or a new local one). ``workers``: cells at
    once (default ``plan_workers``). ``progress``: bars and per-cell lines on the terminal. Raises
    DpbenchError for a bad backend or worker count, or an unreadable existing record, before any cell runs."""
    if backend not in BACKENDS:
        raise DpbenchError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise DpbenchError(f"--workers must be a positive integer, got {workers}")
    records: dict[str, dict[str, Any]] = {}
    todo: list[PreparedCell] = []
    for cell in cells:
        path = cell.record_path  # its own, or the same cell's on another collection of the same demos
        if path.exists():
            try:
                records[cell.cell_id] = read_record(path)
            except ValueError as exc:
                raise DpbenchError(f"{path}: {exc}; delete the file to rerun this cell") from None
            if progress and records[cell.cell_id]["cell_id"] != cell.cell_id:
                print(
                    f"[dpbench] {cell.cell_id}: done as {records[cell.cell_id]['cell_id']} (the same scripted "
                    "demonstrations, collected on another kind of CPU: hashes differ in the last bits; "
                    "delete that record to rerun the cell here)"
                )
        else:
            todo.append(cell)
    n_resume = sum((c.workdir / RESUME_FILE).exists() for c in todo)
    _note_other_versions([c for c in todo if not (c.workdir / RESUME_FILE).exists()], {c.cell_id for c in cells})
    device = cells[0].spec.device if cells else "cpu"
    n_workers, threads = plan_workers(len(todo), workers, device)
    plan = f"{len(records)} done, {n_resume} to resume, {len(todo) - n_resume} to start"
    if todo and backend == "ray":
        ray_pool = RayPool(address, workers, progress, device)
        plan += f"; Ray, {ray_pool.threads} torch thread{'s' if ray_pool.threads > 1 else ''} per cell"
        runner: Backend = ray_pool
    elif todo and n_workers > 1:
        runner = LocalPool(n_workers, threads, progress)
        plan += f"; {n_workers} worker processes x {threads} torch thread{'s' if threads > 1 else ''}"
    else:
        torch.set_num_threads(threads)  # in this process: the same plan as a worker's
        runner = InProcess()
        plan += f"; in this process, {threads} torch thread{'s' if threads > 1 else ''}"
    view = ProgressView(total=len(cells), done=len(records), enabled=progress and bool(todo))
    view.write(f"[dpbench] {len(cells)} cell{'s' if len(cells) != 1 else ''}: {plan}")
    errors: list[str] = []
    stop = threading.Event()
    pump = None
    if runner.channel is not None:
        pump = threading.Thread(target=pump_progress, args=(runner.channel, view, stop), daemon=True)
        pump.start()
    aborted = True
    try:
        _drive(runner, todo, records, errors, view, single=len(cells) == 1)
        aborted = False
    finally:
        runner.close(abort=aborted)  # workers finish sending progress (or are stopped) first,
        stop.set()  # then the pump drains what is left
        if pump is not None:
            pump.join(timeout=1 if aborted else 10)
        runner.release()
        view.close()
    if errors and len(cells) == 1:
        raise DpbenchError(f"failed: {errors[0]}")
    if errors:
        saved = "no cell finished" if len(errors) == len(cells) else "the rest are saved"
        raise DpbenchError(f"{len(errors)} of {len(cells)} cells failed, {saved}; first failure: {errors[0]}")
    return [records[c.cell_id] for c in cells]


def _drive(
    runner: Backend,
    todo: list[PreparedCell],
    records: dict[str, dict[str, Any]],
    errors: list[str],
    view: ProgressView,
    single: bool = False,
) -> None:
    """Submit every cell; collect results as they come; cells locked by another process go back in line.
    ``single``: the grid is one cell, whose failure the caller reports (not also listed here)."""
    inflight = {runner.submit(c): c for c in todo}
    retry: list[tuple[float, PreparedCell]] = []
    told_busy: set[str] = set()
    while inflight or retry:
        now = time.monotonic()
        for item in [r for r in retry if r[0] <= now]:
            retry.remove(item)
            inflight[runner.submit(item[1])] = item[1]
        if not inflight:
            time.sleep(max(0.05, min(t for t, _ in retry) - now))
            continue
        for handle in runner.wait(list(inflight), 0.5):
            cell = inflight.pop(handle)
            status, payload = runner.result(handle)
            spec = cell.spec
            name = f"{spec.policy} {spec.env}/{cell.obs} seed {spec.seed}"
            if status == "busy":
                if cell.cell_id not in told_busy:
                    told_busy.add(cell.cell_id)
                    view.write(f"[dpbench] {name}: being trained by {payload}; will use its result")
                retry.append((time.monotonic() + _RETRY_BUSY_S, cell))
            elif status == "error":
                errors.append(f"{name}: {payload}")
                # a grid's failures are listed as they come; a lone cell's is the run's one error message
                view.cell_done("" if single else f"[dpbench] {name}: FAILED: {payload}", err=True)
            else:
                records[cell.cell_id] = payload
                how = f"{payload['wall']['total_s'] / 60:.1f} min" if status == "ran" else "finished by another process"
                view.cell_done(
                    f"[dpbench] {name}: max {payload['final']['max']:.3f}, avg-last-10 "
                    f"{payload['final']['avg_last10']:.3f} ({how}) -> {cell.record_path}"
                )
