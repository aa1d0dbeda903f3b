"""Grids of benchmark cells: expand a sweep into cells, check every one before any starts, and run
them in a local process pool or on Ray, with progress bars, per-cell locks and resume.

A grid comes from ``dpbench run --policy a,b --env e --seeds N`` or from a YAML file for
``dpbench sweep CONFIG.yaml``; the YAML schema is documented in :mod:`dpbench.sweep.spec`.

Running: finished cells are skipped, unfinished ones resume from their last checkpoint. Each cell
runs under an exclusive lock (``OUT/work/<cell_id>/lock``, flock, holder's pid and host inside): the
kernel drops it when the holder dies, even by SIGKILL, so there are no stale locks, and two sweeps
sharing a results dir never train the same cell at once (scripted demos: ``OUT/work/.locks/<cell id
with the demos' recipe for their hash>``, shared by collections made on other kinds of CPU); a sweep
that finds a cell locked runs others and comes back to it. The Ray backend needs OUT on a filesystem all nodes share.

The package, by seam: ``spec`` (the YAML schema, ``Sweep``), ``cells`` (resolve and describe the cells,
run one under its lock), ``lock`` (``CellLock``), ``backends`` (in-process, local process pool, Ray; the
worker side), ``progress`` (the driver's bars, the workers' stand-in bar), ``grid`` (``run_grid``).
"""

from __future__ import annotations

from dpbench.sweep.backends import BACKENDS, RAY_INSTALL_HINT, import_ray, plan_workers
from dpbench.sweep.cells import check_specs, describe, execute, prepare_all
from dpbench.sweep.grid import run_grid
from dpbench.sweep.lock import CellLock
from dpbench.sweep.progress import ProgressView, WorkerBar
from dpbench.sweep.spec import Sweep

__all__ = [
    "BACKENDS",
    "RAY_INSTALL_HINT",
    "CellLock",
    "ProgressView",
    "Sweep",
    "WorkerBar",
    "check_specs",
    "describe",
    "execute",
    "import_ray",
    "plan_workers",
    "prepare_all",
    "run_grid",
]
