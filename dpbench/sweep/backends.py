"""Where the cells of a grid run: in this process, in a local process pool (spawn; each worker gets its
share of the cores as torch threads), or as Ray tasks; and what a worker process does per cell.

A worker rebuilds its cell from a portable description (absolute paths; ``_portable``), checks that it
resolves to the driver's cell id, and runs it under the cell's lock (``dpbench.sweep.cells.execute``),
sending its training progress to the driver (``dpbench.sweep.progress.WorkerBar``).
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.synchronize
import multiprocessing.util
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from dpbench import host
from dpbench.bars import terminal_bar
from dpbench.data.episodes import load_episodes
from dpbench.data.registry import DatasetRef
from dpbench.errors import DpbenchError
from dpbench.host import resolve_device
from dpbench.policies import policy_source, source_digest
from dpbench.runner import CellSpec, PreparedCell, prepare
from dpbench.source import code_version
from dpbench.sweep.cells import execute
from dpbench.sweep.progress import WorkerBar
from dpbench.tasks import get_task

BACKENDS = ("local", "ray")
RAY_INSTALL_HINT = "pip install 'dpbench[ray]' (or pip install 'ray>=2.9')"


# ---------------------------------------------------------------------- worker processes
@dataclass
class _WorkerState:
    """What a worker process keeps between the cells it runs: where progress goes, and the datasets it
    has loaded, keyed by (env, obs, dataset kind, dataset path), so a worker that runs several cells of a
    dataset loads it once."""

    channel: Any = None  # a multiprocessing or Ray queue to the driver; None: no progress (quiet)
    datasets: dict[tuple[str, str | None, str, str], DatasetRef] = field(default_factory=dict)


# The one module global, set per worker process. It has to be process state: a process pool's
# initializer (``_init_worker``) is the only code that runs in each worker before its tasks, and a
# multiprocessing queue cannot be passed to a task as an argument (it is shared by inheritance only).
# In the driver it stays empty: in-process cells draw their own tqdm bar.
_WORKER = _WorkerState()


def _init_worker(threads: int, channel: Any, parent_pid: int | None) -> None:
    """Per worker process: its share of the cores, progress to the driver, and exit when the driver dies."""
    torch.set_num_threads(threads)
    code_version()  # this worker's code: one source tree, and its commit read before any cell runs
    tqdm.set_lock(threading.RLock())  # not tqdm's default multiprocessing lock, which a terminated worker would leak
    _WORKER.channel = channel  # with a channel, train() gets a WorkerBar: it reports instead of drawing
    if parent_pid is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the driver, which stops the pool
        signal.signal(signal.SIGTERM, _stopped)  # how the driver stops the pool (LocalPool.close(abort=True))
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_now(code: int) -> None:
    """End this worker at once, mid-cell, with ``code``; its last checkpoint stays for the rerun. First unlink the
    named semaphores this process made (numcodecs makes one when zarr first decodes a chunk), as a normal exit's
    finalizers would (``multiprocessing.util._exit_function``); else the resource tracker reports them as "leaked
    semaphore objects" under the driver's one-line message. Only those finalizers: this runs in a signal handler,
    and others take locks the interrupted code may hold (a Queue's, mid-put)."""
    for finalizer in list(mp.util._finalizer_registry.values()):
        if getattr(finalizer, "_callback", None) is mp.synchronize.SemLock._cleanup:
            try:
                finalizer()
            except Exception:  # best effort: the tracker unlinks what is left, with its warning
                pass
    os._exit(code)


def _stopped(signum: int, frame: object) -> None:
    """SIGTERM from the driver: exit as its default action would (status 128 + 15), without the leak warning."""
    _exit_now(128 + signum)


def _exit_with_parent(parent_pid: int) -> None:
    """A driver killed by SIGKILL cannot stop its pool: orphaned workers stop themselves. The cell's lock
    goes with the process; its last checkpoint stays for the rerun."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            _exit_now(1)


def _worker_run(
    spec: CellSpec, cell_id: str, data_kind: str, data_path: str, source: str | None = None
) -> tuple[str, Any]:
    """In a worker: load the dataset the driver resolved (same file, whatever the worker's cwd or env),
    prepare the cell again and execute it. ``source``: the driver's ``policy_source`` of the cell's policy."""
    task = get_task(spec.env)
    key = (spec.env, spec.obs, data_kind, data_path)
    if key not in _WORKER.datasets:
        keys = task.obs_mode(spec.obs).dataset_keys
        store = load_episodes(data_path, keys, source=None if data_kind == "path" else data_kind)
        _WORKER.datasets[key] = DatasetRef(data_kind, Path(data_path), store)
    cell = prepare(spec, _WORKER.datasets[key])
    if cell.cell_id != cell_id:
        mine = policy_source(cell.policy_cls)
        if source_digest(mine) != source_digest(source):  # the policy's code is part of the cell id
            why = (
                f"this worker's {spec.policy} is {mine}, the driver's {source}: the policy's code changed since the "
                "sweep started, or this machine has another copy. Install the same version everywhere and do not "
                "edit it while a sweep runs"
            )
        else:
            why = "is the same dpbench installed everywhere?"
        return ("error", f"worker resolved cell {cell.cell_id}, the driver {cell_id}: {why}")
    channel = _WORKER.channel
    return execute(cell, make_bar=terminal_bar if channel is None else partial(WorkerBar, channel, cell_id))


def _ray_task(
    spec: CellSpec, cell_id: str, data_kind: str, data_path: str, source: str | None, threads: int, channel: Any
) -> tuple[str, Any]:
    """One cell as a Ray task (Ray reuses worker processes: the worker is set up again for each task)."""
    _init_worker(threads, channel, None)
    return _worker_run(spec, cell_id, data_kind, data_path, source)


def _portable(cell: PreparedCell) -> tuple[CellSpec, str, str, str, str | None]:
    """What a worker needs to rebuild the cell: absolute paths, no progress bars of its own, and the policy's
    code as the driver saw it (``policies.policy_source``), which the worker's must match."""
    spec = replace(cell.spec, out=cell.spec.out.resolve(), progress=False)
    return spec, cell.cell_id, cell.data.kind, str(cell.data.path.resolve()), policy_source(cell.policy_cls)


# -------------------------------------------------------------------------------- backends
class Backend(Protocol):
    """How ``run_grid`` drives cells: submit them, wait for some to finish, read a result, and shut down.
    ``channel`` carries the workers' progress messages to the driver (None: no progress from workers)."""

    channel: Any

    def submit(self, cell: PreparedCell) -> Any:
        """Start (or queue) a cell; returns a handle for ``wait`` and ``result``."""
        ...

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        """The handles among ``handles`` that have finished, waiting up to ``timeout`` seconds for one."""
        ...

    def result(self, handle: Any) -> tuple[str, Any]:
        """A finished cell's ``(status, payload)`` (``dpbench.sweep.cells.execute``). Raises DpbenchError when
        the worker itself died."""
        ...

    def close(self, abort: bool) -> None:
        """Stop taking work: wait for the running cells, or, with ``abort``, stop them now."""
        ...

    def release(self) -> None:
        """Free what is left (the progress channel, a Ray instance this backend started)."""
        ...


class _Deferred:
    """An in-process cell, run when waited for."""

    def __init__(self, cell: PreparedCell) -> None:
        self.cell: PreparedCell = cell
        self.result: tuple[str, Any] | None = None


class InProcess:
    """One cell at a time in this process, with the training loop's own progress bar."""

    channel = None

    def submit(self, cell: PreparedCell) -> _Deferred:
        """Queue the cell; it runs in ``wait``."""
        return _Deferred(cell)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        """Run the first cell to the end (``timeout`` does not apply)."""
        handles[0].result = execute(handles[0].cell)
        return handles[:1]

    def result(self, handle: _Deferred) -> tuple[str, Any]:
        """The cell's ``(status, payload)``."""
        return handle.result

    def close(self, abort: bool) -> None:
        """Nothing runs in the background."""

    def release(self) -> None:
        """Nothing to free."""


class LocalPool:
    """A spawn-context process pool; each worker gets cores // workers torch threads."""

    def __init__(self, workers: int, threads: int, progress: bool) -> None:
        ctx = mp.get_context("spawn")
        self.channel = ctx.Queue() if progress else None
        self.pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(threads, self.channel, os.getpid())
        )

    def submit(self, cell: PreparedCell) -> Any:
        """Queue the cell on the pool; returns its future."""
        return self.pool.submit(_worker_run, *_portable(cell))

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        """The futures that are done, waiting up to ``timeout`` seconds for the first."""
        return list(wait_futures(handles, timeout=timeout, return_when=FIRST_COMPLETED)[0])

    def result(self, handle: Any) -> tuple[str, Any]:
        """The cell's ``(status, payload)``; DpbenchError when its worker process died."""
        try:
            return handle.result()
        except BrokenProcessPool:
            raise DpbenchError("a worker process died (out of memory?); rerun the same command to resume") from None

    def close(self, abort: bool) -> None:
        """Shut the pool down, after terminating its workers when ``abort``."""
        if abort:  # stop the workers now (their cells resume from the last checkpoint), then free the pool
            procs = list((getattr(self.pool, "_processes", None) or {}).values())
            self.pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.join(timeout=5)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def release(self) -> None:
        """Close the progress queue."""
        if self.channel is not None:
            self.channel.close()
            self.channel.cancel_join_thread()


class RayPool:
    """One cell = one Ray task (num_cpus = its torch threads; num_gpus=1 on CUDA). Uses the Ray instance this
    process already joined, else connects to ``address`` or starts a local one."""

    def __init__(self, address: str | None, workers: int | None, progress: bool, device: str) -> None:
        ray = import_ray()
        self.ray, self.started = ray, False
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=True, configure_logging=False)
            self.started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.threads = max(1, cpus // workers) if workers else 1
        self.channel = None
        if progress:
            from ray.util.queue import Queue

            self.channel = Queue()
        gpus = 1 if device.startswith("cuda") else 0
        self.remote = ray.remote(_ray_task).options(num_cpus=self.threads, num_gpus=gpus, max_retries=0)
        self.handles: list = []

    def submit(self, cell: PreparedCell) -> Any:
        """Start the cell as a Ray task; returns its object ref."""
        handle = self.remote.remote(*_portable(cell), self.threads, self.channel)
        self.handles.append(handle)
        return handle

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        """At most one finished task, waiting up to ``timeout`` seconds."""
        return self.ray.wait(handles, num_returns=1, timeout=timeout)[0]

    def result(self, handle: Any) -> tuple[str, Any]:
        """The cell's ``(status, payload)``; DpbenchError when its worker or node failed (an exception the
        task itself raised is re-raised as Ray's RayTaskError)."""
        from ray.exceptions import RayTaskError

        try:
            return self.ray.get(handle)
        except RayTaskError:
            raise
        except self.ray.exceptions.RayError as exc:  # worker crashed, node died, ...
            raise DpbenchError(
                f"a Ray worker failed ({type(exc).__name__}); rerun the same command to resume"
            ) from None

    def close(self, abort: bool) -> None:
        """With ``abort``, cancel every task (force: their workers are killed)."""
        if abort:
            for handle in self.handles:
                try:
                    self.ray.cancel(handle, force=True)
                except Exception:
                    pass

    def release(self) -> None:
        """Kill the progress queue's actor; shut Ray down if this backend started it."""
        if self.channel is not None:
            self.ray.kill(self.channel.actor)
        if self.started:
            self.ray.shutdown()


def import_ray() -> Any:
    """The ``ray`` module; DpbenchError with the install hint when Ray is not installed."""
    try:
        import ray
    except ImportError:
        raise DpbenchError(f"--backend ray needs Ray, which is not installed: {RAY_INSTALL_HINT}") from None
    return ray


def plan_workers(n_cells: int, workers: int | None, device: str = "cpu") -> tuple[int, int]:
    """(processes, torch threads each): by default one process per usable core (affinity and cgroup
    quota; one in all on a GPU), never more processes than cells, and the cores split between them so
    cells don't oversubscribe. ``DPBENCH_THREADS`` (``--threads``) fixes the threads per process."""
    cores = host.usable_cores()
    explicit = os.environ.get(host.THREADS_ENV)
    threads = host.default_threads() if explicit else None
    if workers is None:
        workers = (max(1, cores // threads) if threads else cores) if resolve_device(device).type == "cpu" else 1
    workers = max(1, min(workers, n_cells))
    return workers, threads or max(1, cores // workers)
