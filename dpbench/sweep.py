"""Grids of benchmark cells: expand a sweep into cells, check every one before any starts, and run
them in a local process pool or on Ray, with progress bars, per-cell locks and resume.

A grid comes from ``dpbench run --policy a,b --env e --seeds N`` or from a YAML file for
``dpbench sweep CONFIG.yaml``::

    policies: [diffusion, lstm_gmm, ibc]   # required: registered names, entry points or module:Class
    envs: [pusht]                          # default [pusht]
    obs: [keypoints, state]                # optional; default: each env's default obs mode
    seeds: 3                               # N (seeds seed_start .. seed_start+N-1) or a list, e.g. [0, 4]
    seed_start: 0
    preset: quick                          # smoke | quick | paper (default quick)
    dataset: human                         # human | scripted | PATH (default: human if present)
    out: results                           # results dir (records/, work/); --out overrides it
    device: cpu                            # cpu | cuda | cuda:N | auto
    set:                                   # overrides for every cell, like --set
      train.eval_every: 1000
    per_policy:                            # per policy: preset, dataset, seeds, set
      ibc: {preset: smoke, set: {train.lr: 1e-4}}
    per_cell:                              # the cells matching every given policy/env/obs/seed get
      - {policy: diffusion, seed: 0, set: {train.steps: 4000}}   # these preset / dataset / set

Settings apply in that order (global, per_policy, per_cell); ``set`` maps merge. Relative paths are
relative to the working directory. A cell is (env, obs, policy, dataset, preset/config, seed); its
record is ``OUT/records/<cell_id>.json``, its checkpoints ``OUT/work/<cell_id>/``.

Running: finished cells are skipped, unfinished ones resume from their last checkpoint. Each cell
runs under an exclusive lock (``OUT/work/<cell_id>/lock``, flock, holder's pid and host inside): the
kernel drops it when the holder dies, even by SIGKILL, so there are no stale locks, and two sweeps
sharing a results dir never train the same cell at once; a sweep that finds a cell locked runs
others and comes back to it. The Ray backend needs OUT on a filesystem all nodes share.
"""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from dpbench.errors import DpbenchError
from dpbench.host import THREADS_ENV, default_threads, usable_cores
from dpbench.runner import CellSpec, PreparedCell, prepare, resolve_device, run_cell
from dpbench.train import RESUME_FILE

BACKENDS = ("local", "ray")
RAY_INSTALL_HINT = "pip install 'dpbench[ray]' (or pip install 'ray>=2.9')"
_RETRY_BUSY_S = 2.0


# ------------------------------------------------------------------------------ the grid
@dataclass
class Sweep:
    """A grid: policies x envs x obs x seeds, shared settings, per-policy and per-cell overrides."""

    policies: list[str]
    envs: list[str] = field(default_factory=lambda: ["pusht"])
    obs: list[str | None] = field(default_factory=lambda: [None])
    seeds: list[int] = field(default_factory=lambda: [0])
    seed_start: int = 0  # where a per_policy `seeds: N` starts
    preset: str = "quick"
    dataset: str | None = None
    out: Path = Path("results")
    device: str = "cpu"
    video: bool = False
    set: dict[str, str] = field(default_factory=dict)
    per_policy: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_cell: list[dict[str, Any]] = field(default_factory=list)

    TOP_KEYS = (
        "policies",
        "envs",
        "obs",
        "seeds",
        "seed_start",
        "preset",
        "dataset",
        "out",
        "device",
        "video",
        "set",
        "per_policy",
        "per_cell",
    )
    POLICY_KEYS = ("preset", "dataset", "seeds", "set")
    MATCH_KEYS = ("policy", "env", "obs", "seed")
    CELL_KEYS = ("preset", "dataset", "set")

    @classmethod
    def from_yaml(cls, path: Path) -> Sweep:
        """Read and check a sweep file (schema in this module's docstring)."""
        import yaml

        try:
            doc = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise DpbenchError(f"cannot read sweep file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise DpbenchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(doc, dict):
            raise DpbenchError(f"{path}: a sweep file is a mapping with at least 'policies'")
        _check_keys(doc, cls.TOP_KEYS, str(path))
        if not doc.get("policies"):
            raise DpbenchError(f"{path}: 'policies' is required, e.g. policies: [diffusion, lstm_gmm]")
        seed_start = _int(doc.get("seed_start", 0), f"{path}: seed_start")
        per_policy = doc.get("per_policy") or {}
        per_cell = doc.get("per_cell") or []
        if not isinstance(per_policy, dict) or not isinstance(per_cell, list):
            raise DpbenchError(f"{path}: per_policy is a mapping (policy: settings) and per_cell a list of mappings")
        for name, settings in per_policy.items():
            _check_keys(settings, cls.POLICY_KEYS, f"{path}: per_policy.{name}")
        for i, entry in enumerate(per_cell):
            _check_keys(entry, cls.MATCH_KEYS + cls.CELL_KEYS, f"{path}: per_cell[{i}]")
        return cls(
            policies=_names(doc["policies"], "policies"),
            envs=_names(doc.get("envs", ["pusht"]), "envs"),
            obs=_names(doc["obs"], "obs") if doc.get("obs") else [None],
            seeds=_seed_list(doc.get("seeds", 1), seed_start, f"{path}: seeds"),
            seed_start=seed_start,
            preset=str(doc.get("preset", "quick")),
            dataset=None if doc.get("dataset") is None else str(doc["dataset"]),
            out=Path(str(doc.get("out", "results"))),
            device=str(doc.get("device", "cpu")),
            video=bool(doc.get("video", False)),
            set=_overrides(doc.get("set"), f"{path}: set"),
            per_policy={str(k): dict(v or {}) for k, v in per_policy.items()},
            per_cell=[dict(e) for e in per_cell],
        )

    def specs(self, command: str = "", progress: bool = True) -> list[CellSpec]:
        """Every cell of the grid, overrides applied; per-policy or per-cell entries that match nothing are errors."""
        unknown = [p for p in self.per_policy if p not in self.policies]
        if unknown:
            raise DpbenchError(
                f"per_policy names {', '.join(map(repr, unknown))}, not in policies: {', '.join(self.policies)}"
            )
        used = [False] * len(self.per_cell)
        specs, seen = [], set()
        for policy in self.policies:
            pol = self.per_policy.get(policy, {})
            seeds = (
                _seed_list(pol["seeds"], self.seed_start, f"per_policy.{policy}.seeds")
                if "seeds" in pol
                else self.seeds
            )
            for env in self.envs:
                for obs in self.obs:
                    for seed in seeds:
                        settings = {
                            "preset": self.preset,
                            "dataset": self.dataset,
                            "set": {**self.set, **_overrides(pol.get("set"), f"per_policy.{policy}.set")},
                        }
                        settings.update({k: pol[k] for k in ("preset", "dataset") if k in pol})
                        here = {"policy": policy, "env": env, "obs": obs, "seed": seed}
                        for i, entry in enumerate(self.per_cell):
                            if all(str(entry[k]) == str(here[k]) for k in self.MATCH_KEYS if k in entry):
                                used[i] = True
                                settings.update({k: entry[k] for k in ("preset", "dataset") if k in entry})
                                settings["set"] = {
                                    **settings["set"],
                                    **_overrides(entry.get("set"), f"per_cell[{i}].set"),
                                }
                        key = (policy, env, obs, seed)
                        if key in seen:
                            continue
                        seen.add(key)
                        specs.append(
                            CellSpec(
                                policy=policy,
                                env=env,
                                seed=seed,
                                preset=str(settings["preset"]),
                                obs=obs,
                                dataset=None if settings["dataset"] is None else str(settings["dataset"]),
                                overrides=settings["set"],
                                out=self.out,
                                video=self.video,
                                device=self.device,
                                progress=progress,
                                command=command,
                            )
                        )
        idle = [i for i, u in enumerate(used) if not u]
        if idle:
            raise DpbenchError(f"per_cell[{idle[0]}] ({self.per_cell[idle[0]]}) matches no cell of the grid")
        return specs


def _check_keys(mapping: Any, allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(mapping, dict):
        raise DpbenchError(f"{where}: expected a mapping, got {mapping!r}")
    bad = [k for k in mapping if k not in allowed]
    if bad:
        raise DpbenchError(f"{where}: unknown key {bad[0]!r}; allowed: {', '.join(allowed)}")


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DpbenchError(f"{where} must be an integer, got {value!r}")
    return value


def _names(value: Any, where: str) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise DpbenchError(f"{where}: expected a list of names, got {value!r}")
    return [str(v).strip() for v in items if str(v).strip()]


def _seed_list(value: Any, start: int, where: str) -> list[int]:
    """N means seeds start..start+N-1; a list is taken as is."""
    if isinstance(value, list):
        seeds = [_int(v, where) for v in value]
        if not seeds or min(seeds) < 0:
            raise DpbenchError(f"{where}: expected non-negative seeds, got {value!r}")
        return sorted(set(seeds))
    n = _int(value, where)
    if n <= 0:
        raise DpbenchError(f"{where} must be a positive number of seeds or a list of seeds, got {n}")
    return list(range(start, start + n))


def _overrides(value: Any, where: str) -> dict[str, str]:
    """YAML `set:` mappings become --set strings, so records and config hashes match the CLI's."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DpbenchError(f"{where}: expected a mapping like {{train.steps: 2000}}, got {value!r}")
    return {str(k): ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v) for k, v in value.items()}


# --------------------------------------------------------------------------- prepare all
def prepare_all(specs: list[CellSpec]) -> list[PreparedCell]:
    """Resolve every cell before any starts: all unknown policy and env names in one error, then each
    cell's preset, overrides, obs mode and dataset. Datasets are loaded once per (env, obs, dataset)."""
    from dpbench.policy import available_policies, get_policy_class
    from dpbench.tasks import TASKS

    problems: dict[str, None] = {}
    bad_envs = sorted({s.env for s in specs if s.env not in TASKS})
    if bad_envs:
        problems[
            f"unknown env{'s' if len(bad_envs) > 1 else ''} {', '.join(map(repr, bad_envs))}; "
            f"valid envs: {', '.join(sorted(TASKS))}"
        ] = None
    registered = available_policies()
    bad_policies = sorted({s.policy for s in specs if ":" not in s.policy and s.policy not in registered})
    if bad_policies:
        problems[
            f"unknown polic{'ies' if len(bad_policies) > 1 else 'y'} {', '.join(map(repr, bad_policies))}; "
            f"valid policies: {', '.join(sorted(registered))}"
        ] = None
    for name in sorted({s.policy for s in specs if s.policy not in bad_policies}):
        try:
            get_policy_class(name)
        except DpbenchError as exc:
            problems[str(exc)] = None
    for device in sorted({s.device for s in specs}):
        try:
            resolve_device(device)
        except DpbenchError as exc:
            problems[str(exc)] = None
    if problems:
        raise DpbenchError("; ".join(problems))
    cells: dict[str, PreparedCell] = {}
    data: dict[tuple, Any] = {}
    for spec in specs:
        key = (spec.env, spec.obs, spec.dataset)
        try:
            cell = prepare(spec, data.get(key))
        except DpbenchError as exc:
            problems[str(exc)] = None
            continue
        data[key] = cell.data
        cells.setdefault(cell.cell_id, cell)
    if problems:
        raise DpbenchError("; ".join(problems))
    return list(cells.values())


def describe(cells: list[PreparedCell]) -> list[str]:
    """What is about to run, in a few lines (grid shape, datasets)."""

    def uniq(values):
        return list(dict.fromkeys(values))

    policies, tasks = uniq(c.spec.policy for c in cells), uniq(f"{c.spec.env}/{c.obs}" for c in cells)
    seeds, presets = uniq(c.spec.seed for c in cells), uniq(c.spec.preset for c in cells)
    lines = [
        f"[dpbench] {', '.join(policies)} on {', '.join(tasks)}, preset {', '.join(presets)}, seeds {seeds}"
        f" ({len(cells)} cell{'s' if len(cells) != 1 else ''})"
    ]
    for d in uniq((c.data.kind, str(c.data.path), c.data.store.content_hash()) for c in cells):
        lines.append(f"[dpbench] dataset {d[0]} {d[1]} (hash {d[2]})")
    return lines


# ----------------------------------------------------------------------------- cell locks
class CellLock:
    """Exclusive lock on OUT/work/<cell_id>/lock. flock, so the kernel releases it when the holder exits or
    is killed (no stale locks to clean); the file keeps the last holder's pid and host for messages."""

    def __init__(self, workdir: Path) -> None:
        self.path = Path(workdir) / "lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"


def execute(cell: PreparedCell) -> tuple[str, Any]:
    """Run one prepared cell under its lock: ("ran", record), ("done", record) when another process finished
    it meanwhile, ("busy", holder) when another process holds it, or ("error", message)."""
    from dpbench.results import read_record

    lock = CellLock(cell.workdir)
    if not lock.acquire():
        return "busy", lock.holder()
    try:
        if cell.record_path.exists():  # finished by another process since this sweep started
            try:
                return "done", read_record(cell.record_path)
            except ValueError as exc:
                return "error", f"{cell.record_path}: {exc}; delete the file to rerun this cell"
        # half-written temp files of a killed predecessor (the real files are replaced atomically)
        for tmp in [*cell.workdir.glob("*.tmp[0-9]*"), *cell.record_path.parent.glob(f".{cell.record_path.name}.tmp*")]:
            tmp.unlink(missing_ok=True)
        return "ran", run_cell(cell, make_bar=_WorkerBar if _CHANNEL is not None else tqdm)
    except DpbenchError as exc:
        return "error", str(exc)
    finally:
        lock.release()


# ---------------------------------------------------------------------- worker processes
_CHANNEL: Any = None  # where a worker sends progress messages (multiprocessing or Ray queue); None: quiet
_CURRENT_CELL = ""


class _WorkerBar:
    """Stands in for the training loop's tqdm bar inside a worker: sends (kind, cell_id, ...) messages to the
    driver, which draws one bar per running cell, instead of drawing into a terminal shared with others."""

    def __init__(
        self, iterable=None, desc: str = "", total: int | None = None, initial: int = 0, disable: bool = False, **_: Any
    ) -> None:
        self.n, self.total, self.postfix, self._sent = initial, total, "", 0.0
        _send("start", desc, initial, total)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._sent >= 0.5 or self.n == self.total:
            self._sent = now
            _send("step", self.n, self.postfix)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(ordered_dict or {}), **kwargs}.items())

    @staticmethod
    def write(s: str, file: Any = None, end: str = "\n", nolock: bool = False) -> None:
        _send("line", s)

    def close(self) -> None:
        _send("step", self.n, self.postfix)
        _send("end")

    def __enter__(self) -> _WorkerBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getattr__(self, name: str) -> Callable[..., None]:  # any other tqdm method: nothing to draw
        return lambda *args, **kwargs: None


def _send(kind: str, *payload: Any) -> None:
    if _CHANNEL is not None:
        try:
            _CHANNEL.put((kind, _CURRENT_CELL, *payload))
        except Exception:  # the driver is gone or its queue closed: progress is best effort
            pass


def _init_worker(threads: int, channel: Any, parent_pid: int | None) -> None:
    """Per worker process: its share of the cores, progress to the driver, and exit when the driver dies."""
    global _CHANNEL
    import torch

    torch.set_num_threads(threads)
    tqdm.set_lock(threading.RLock())  # not tqdm's default multiprocessing lock, which a terminated worker would leak
    _CHANNEL = channel  # with a channel, execute() gives train() a _WorkerBar: it reports instead of drawing
    if parent_pid is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the driver, which stops the pool
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    """A driver killed by SIGKILL cannot stop its pool: orphaned workers stop themselves. The cell's lock
    goes with the process; its last checkpoint stays for the rerun."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(1)


_DATA_CACHE: dict[tuple, Any] = {}


def _worker_run(spec: CellSpec, cell_id: str, data_kind: str, data_path: str) -> tuple[str, Any]:
    """In a worker: load the dataset the driver resolved (same file, whatever the worker's cwd or env),
    prepare the cell again and execute it."""
    global _CURRENT_CELL
    from dpbench.data.episodes import load_episodes
    from dpbench.data.registry import DatasetRef
    from dpbench.tasks import get_task

    task = get_task(spec.env)
    key = (spec.env, spec.obs, data_kind, data_path)
    if key not in _DATA_CACHE:
        keys = task.obs_mode(spec.obs).dataset_keys
        store = load_episodes(data_path, keys, source=None if data_kind == "path" else data_kind)
        _DATA_CACHE[key] = DatasetRef(data_kind, Path(data_path), store)
    cell = prepare(spec, _DATA_CACHE[key])
    if cell.cell_id != cell_id:
        return (
            "error",
            f"worker resolved cell {cell.cell_id}, the driver {cell_id}: is the same dpbench installed everywhere?",
        )
    _CURRENT_CELL = cell_id
    return execute(cell)


def _ray_task(
    spec: CellSpec, cell_id: str, data_kind: str, data_path: str, threads: int, channel: Any
) -> tuple[str, Any]:
    _init_worker(threads, channel, None)
    return _worker_run(spec, cell_id, data_kind, data_path)


def _portable(cell: PreparedCell) -> tuple:
    """What a worker needs to rebuild the cell: absolute paths, no progress bars of its own."""
    spec = replace(cell.spec, out=cell.spec.out.resolve(), progress=False)
    return spec, cell.cell_id, cell.data.kind, str(cell.data.path.resolve())


# -------------------------------------------------------------------------------- backends
class _Deferred:
    """An in-process cell, run when waited for."""

    def __init__(self, cell: PreparedCell) -> None:
        self.cell, self.result = cell, None


class _InProcess:
    """One cell at a time in this process, with the training loop's own progress bar."""

    channel = None

    def submit(self, cell: PreparedCell) -> _Deferred:
        return _Deferred(cell)

    def wait(self, handles: list, timeout: float) -> list:
        handles[0].result = execute(handles[0].cell)
        return handles[:1]

    def result(self, handle: _Deferred) -> tuple[str, Any]:
        return handle.result

    def close(self, abort: bool) -> None:
        pass

    def release(self) -> None:
        pass


class _LocalPool:
    """A spawn-context process pool; each worker gets cores // workers torch threads."""

    def __init__(self, workers: int, threads: int, progress: bool) -> None:
        ctx = mp.get_context("spawn")
        self.channel = ctx.Queue() if progress else None
        self.pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(threads, self.channel, os.getpid())
        )

    def submit(self, cell: PreparedCell) -> Any:
        return self.pool.submit(_worker_run, *_portable(cell))

    def wait(self, handles: list, timeout: float) -> list:
        return list(wait_futures(handles, timeout=timeout, return_when=FIRST_COMPLETED)[0])

    def result(self, handle: Any) -> tuple[str, Any]:
        try:
            return handle.result()
        except BrokenProcessPool:
            raise DpbenchError("a worker process died (out of memory?); rerun the same command to resume") from None

    def close(self, abort: bool) -> None:
        if abort:  # stop the workers now (their cells resume from the last checkpoint), then free the pool
            procs = list((getattr(self.pool, "_processes", None) or {}).values())
            self.pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.join(timeout=5)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def release(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel.cancel_join_thread()


class _RayPool:
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
        handle = self.remote.remote(*_portable(cell), self.threads, self.channel)
        self.handles.append(handle)
        return handle

    def wait(self, handles: list, timeout: float) -> list:
        return self.ray.wait(handles, num_returns=1, timeout=timeout)[0]

    def result(self, handle: Any) -> tuple[str, Any]:
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
        if abort:
            for handle in self.handles:
                try:
                    self.ray.cancel(handle, force=True)
                except Exception:
                    pass

    def release(self) -> None:
        if self.channel is not None:
            self.ray.kill(self.channel.actor)
        if self.started:
            self.ray.shutdown()


def import_ray():
    try:
        import ray
    except ImportError:
        raise DpbenchError(f"--backend ray needs Ray, which is not installed: {RAY_INSTALL_HINT}") from None
    return ray


def plan_workers(n_cells: int, workers: int | None, device: str = "cpu") -> tuple[int, int]:
    """(processes, torch threads each): by default one process per usable core (affinity and cgroup
    quota; one in all on a GPU), never more processes than cells, and the cores split between them so
    cells don't oversubscribe. ``DPBENCH_THREADS`` (``--threads``) fixes the threads per process."""
    cores = usable_cores()
    explicit = os.environ.get(THREADS_ENV)
    threads = default_threads() if explicit else None
    if workers is None:
        workers = (max(1, cores // threads) if threads else cores) if resolve_device(device).type == "cpu" else 1
    workers = max(1, min(workers, n_cells))
    return workers, threads or max(1, cores // workers)


# ------------------------------------------------------------------------------ progress
class ProgressView:
    """The driver's terminal: one overall bar for cells, one bar per running cell, lines above them."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.enabled = enabled
        self.overall = tqdm(
            total=total, initial=done, desc="cells", unit="cell", position=0, dynamic_ncols=True, disable=not enabled
        )
        self.bars: dict[str, Any] = {}
        self.lock = threading.Lock()

    def handle(self, msg: tuple) -> None:
        kind, cell_id, *payload = msg
        with self.lock:
            if kind == "start":
                desc, initial, total = payload
                self.bars[cell_id] = tqdm(
                    total=total,
                    initial=initial,
                    desc=desc,
                    unit="step",
                    leave=False,
                    dynamic_ncols=True,
                    disable=not self.enabled,
                )
            elif kind == "step" and cell_id in self.bars:
                bar, (n, postfix) = self.bars[cell_id], payload
                bar.update(n - bar.n)
                if postfix:
                    bar.set_postfix_str(postfix)
            elif kind == "line":
                tqdm.write(payload[0])
            elif kind == "end" and cell_id in self.bars:
                self.bars.pop(cell_id).close()

    def write(self, line: str, err: bool = False) -> None:
        with self.lock:
            tqdm.write(line, file=sys.stderr if err else sys.stdout)

    def cell_done(self, line: str, err: bool = False) -> None:
        self.write(line, err)
        with self.lock:
            self.overall.update(1)

    def close(self) -> None:
        with self.lock:
            for bar in self.bars.values():
                bar.close()
            self.bars.clear()
            self.overall.close()


def _pump(channel: Any, view: ProgressView, stop: threading.Event) -> None:
    """Driver thread: progress messages from the workers to the bars, until stopped and drained."""
    while True:
        try:
            view.handle(channel.get(timeout=0.2))
        except queue_mod.Empty:
            if stop.is_set():
                return
        except (EOFError, OSError, ValueError):
            return
        except Exception:  # e.g. Ray shutting down
            if stop.is_set():
                return
            time.sleep(0.2)


# ----------------------------------------------------------------------------------- run
def run_grid(
    cells: list[PreparedCell],
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every cell that has no record yet and return all records in ``cells`` order. Cells that fail are
    reported as they fail; the others still run, then one DpbenchError names the failures."""
    from dpbench.results import read_record

    if backend not in BACKENDS:
        raise DpbenchError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise DpbenchError(f"--workers must be a positive integer, got {workers}")
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for cell in cells:
        if cell.record_path.exists():
            try:
                records[cell.cell_id] = read_record(cell.record_path)
            except ValueError as exc:
                raise DpbenchError(f"{cell.record_path}: {exc}; delete the file to rerun this cell") from None
        else:
            todo.append(cell)
    n_resume = sum((c.workdir / RESUME_FILE).exists() for c in todo)
    device = cells[0].spec.device if cells else "cpu"
    n_workers, threads = plan_workers(len(todo), workers, device)
    plan = f"{len(records)} done, {n_resume} to resume, {len(todo) - n_resume} to start"
    if todo and backend == "ray":
        runner: Any = _RayPool(address, workers, progress, device)
        plan += f"; Ray, {runner.threads} torch thread{'s' if runner.threads > 1 else ''} per cell"
    elif todo and n_workers > 1:
        runner = _LocalPool(n_workers, threads, progress)
        plan += f"; {n_workers} worker processes x {threads} torch thread{'s' if threads > 1 else ''}"
    else:
        import torch

        torch.set_num_threads(threads)  # in this process: the same plan as a worker's
        runner = _InProcess()
        plan += f"; in this process, {threads} torch thread{'s' if threads > 1 else ''}"
    view = ProgressView(total=len(cells), done=len(records), enabled=progress and bool(todo))
    view.write(f"[dpbench] {len(cells)} cell{'s' if len(cells) != 1 else ''}: {plan}")
    errors: list[str] = []
    stop = threading.Event()
    pump = None
    if runner.channel is not None:
        pump = threading.Thread(target=_pump, args=(runner.channel, view, stop), daemon=True)
        pump.start()
    aborted = True
    try:
        _drive(runner, todo, records, errors, view)
        aborted = False
    finally:
        runner.close(abort=aborted)  # workers finish sending progress (or are stopped) first,
        stop.set()  # then the pump drains what is left
        if pump is not None:
            pump.join(timeout=1 if aborted else 10)
        runner.release()
        view.close()
    if errors:
        saved = "no cell finished" if len(errors) == len(cells) else "the rest are saved"
        raise DpbenchError(f"{len(errors)} of {len(cells)} cells failed, {saved}; first failure: {errors[0]}")
    return [records[c.cell_id] for c in cells]


def _drive(runner: Any, todo: list[PreparedCell], records: dict, errors: list[str], view: ProgressView) -> None:
    """Submit every cell; collect results as they come; cells locked by another process go back in line."""
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
                errors.append(payload)
                view.cell_done(f"[dpbench] {name}: FAILED: {payload}", err=True)
            else:
                records[cell.cell_id] = payload
                how = f"{payload['wall']['total_s'] / 60:.1f} min" if status == "ran" else "finished by another process"
                view.cell_done(
                    f"[dpbench] {name}: max {payload['final']['max']:.3f}, avg-last-10 "
                    f"{payload['final']['avg_last10']:.3f} ({how}) -> {cell.record_path}"
                )
