"""EnvBatch: N copies of an env stepped together, in this process or spread over worker processes.

Each copy comes from an ``EnvMaker``: ``gym.make(gym_id, **kwargs)`` seen through the task's
observation mode (``dpbench.envs.io.ObsMode.wrap``), so the batch steps policy-side observations
and actions. The maker is plain, picklable data, so a worker process builds the same env.

The one evaluation loop steps every test episode side by side. Push-T steps cost microseconds,
so its batch lives in-process; a robomimic step costs ~7 ms of MuJoCo, so its batch is split
over worker processes (one per core the evaluation may use), each stepping its share of envs
in turn. ``step``'s info carries ``is_success`` and ``progress`` (the env's ``info["coverage"]``
where it reports one, as Push-T does, else the step's reward). An env whose episode has ended is
not stepped again: it repeats its last observation with reward 0 and ``done`` set, which is all the
evaluation loop needs and saves the steps that
gymnasium's autoreset would spend on a new episode nobody reads.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import traceback
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

import dpbench.envs  # noqa: F401  (registers the env IDs, also in a fresh worker process)
from dpbench.envs.io import ObsMode
from dpbench.errors import DpbenchError, is_interrupt

Obs = Any  # an array, or a dict of arrays


def stack(items: list[Obs]) -> Obs:
    """Per-env observations stacked on a new leading axis: arrays -> (n, ...); dicts of arrays -> a dict of (n, ...)
    arrays, keyed like the first."""
    if isinstance(items[0], dict):
        return {k: np.stack([o[k] for o in items]) for k in items[0]}
    return np.stack(items)


@dataclass(frozen=True)
class EnvMaker:
    """How to build one env of a batch: ``gym.make(gym_id, **kwargs)``, wrapped by ``mode`` (an
    ``ObsMode``; None: the raw env)."""

    gym_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    mode: ObsMode | None = None

    def __call__(self) -> gym.Env:
        env = gym.make(self.gym_id, disable_env_checker=True, **self.kwargs)
        return self.mode.wrap(env) if self.mode is not None else env


class _LocalEnvs:
    """A list of envs that stops stepping each one when its episode ends."""

    def __init__(self, maker: EnvMaker, n: int) -> None:
        self.envs = [maker() for _ in range(n)]
        self.last: list[Any] = [None] * n
        self.done = np.zeros(n, dtype=bool)

    def reset(self, seeds: list[int], active: list[bool]) -> list[Any]:
        self.last = [env.reset(seed=int(s))[0] for env, s in zip(self.envs, seeds)]
        self.done[:] = ~np.asarray(active, dtype=bool)  # inactive envs are never stepped
        return self.last

    def step(self, actions: np.ndarray) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = len(self.envs)
        reward, terminated, truncated, success = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
        progress = np.zeros(n)
        for i, env in enumerate(self.envs):
            if self.done[i]:
                terminated[i] = True
                continue
            obs, reward[i], terminated[i], truncated[i], info = env.step(actions[i])
            success[i] = bool(info.get("is_success", False))
            progress[i] = float(info.get("coverage", reward[i]))
            self.last[i] = obs
            self.done[i] = terminated[i] or truncated[i]
        return self.last, reward, terminated, truncated, success, progress

    def render(self, i: int) -> np.ndarray:
        return self.envs[i].render()

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(conn: Any, maker: EnvMaker, n: int) -> None:
    envs = None
    try:
        envs = _LocalEnvs(maker, n)
        conn.send(("ok", None))
        while True:
            cmd, arg = conn.recv()
            if cmd == "close":
                break
            conn.send(("ok", getattr(envs, cmd)(*arg)))
    except EOFError:
        pass
    except BaseException as exc:  # report to the parent, which raises one clear error
        if is_interrupt(exc):  # Ctrl-C, bare or wrapped by numba code: the parent stops the run
            return
        msg = (
            str(exc)
            if isinstance(exc, DpbenchError)
            else f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        )
        try:
            conn.send(("error", msg))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if envs is not None:
            envs.close()
        conn.close()


class EnvBatch:
    """``n`` envs from ``maker``, stepped together, over ``n_procs`` processes (``n_procs <= 1``: all
    in this process). Raises DpbenchError when a worker fails to build or step its envs."""

    def __init__(self, maker: EnvMaker, n: int, n_procs: int = 1) -> None:
        self.n = n
        n_procs = max(1, min(n_procs, n))
        self.local: _LocalEnvs | None = None
        self.conns: list[Any] = []
        self.procs: list[Any] = []
        self.sizes = [len(part) for part in np.array_split(np.arange(n), n_procs)]
        if n_procs == 1:
            self.local = _LocalEnvs(maker, n)
            return
        ctx = mp.get_context("spawn")
        for size in self.sizes:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, maker, size), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        for conn in self.conns:
            self._receive(conn)

    def _receive(self, conn: Any) -> Any:
        try:
            status, payload = conn.recv()
        except EOFError:
            self.close()
            raise DpbenchError(
                "an env worker process died (out of memory, or killed); rerun, or use fewer workers"
            ) from None
        if status == "error":
            self.close()
            raise DpbenchError(f"env worker failed: {payload}")
        return payload

    def _call(self, cmd: str, per_worker_args: list[tuple]) -> list[Any]:
        for conn, args in zip(self.conns, per_worker_args):
            conn.send((cmd, args))
        return [self._receive(conn) for conn in self.conns]

    def _split(self, values: Any) -> list[Any]:
        bounds = np.cumsum([0] + self.sizes)
        return [values[a:b] for a, b in itertools.pairwise(bounds)]

    def reset(self, seed: int, n_active: int | None = None) -> tuple[Obs, dict[str, Any]]:
        """Env i starts from ``reset(seed=seed + i)``; with ``n_active``, envs from that index on are
        reset but never stepped (they report ``terminated``), for a last, partial wave of episodes."""
        n_active = self.n if n_active is None else n_active
        seeds = [seed + i for i in range(self.n)]
        active = [i < n_active for i in range(self.n)]
        if self.local is not None:
            return stack(self.local.reset(seeds, active)), {}
        parts = self._call("reset", list(zip(self._split(seeds), self._split(active))))
        return stack([o for part in parts for o in part]), {}

    def step(self, actions: np.ndarray) -> tuple[Obs, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        if self.local is not None:
            obs, r, te, tr, ok, progress = self.local.step(actions)
            return stack(obs), r, te, tr, {"is_success": ok, "progress": progress}
        parts = self._call("step", [(a,) for a in self._split(np.asarray(actions))])
        obs = stack([o for part in parts for o in part[0]])
        r, te, tr, ok, progress = (np.concatenate([part[j] for part in parts]) for j in range(1, 6))
        return obs, r, te, tr, {"is_success": ok, "progress": progress}

    def render(self, i: int) -> np.ndarray:
        if self.local is not None:
            return self.local.render(i)
        bounds = np.cumsum([0] + self.sizes)
        w = int(np.searchsorted(bounds, i, side="right") - 1)
        self.conns[w].send(("render", (i - int(bounds[w]),)))
        return self._receive(self.conns[w])

    def close(self) -> None:
        if self.local is not None:
            self.local.close()
            self.local = None
        for conn in self.conns:
            try:
                conn.send(("close", ()))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self.conns, self.procs = [], []

    def __enter__(self) -> EnvBatch:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
