"""Collecting scripted demonstrations into dataset files: the data layer's side of the demonstrators.

The envs produce episodes in memory (``dpbench.envs.pusht.demonstrator.collect_episode``,
``dpbench.envs.robomimic.demonstrator.run_episode``: dicts of (T, ...) arrays, None when the
demonstrator fails); this module runs them over consecutive seeds until enough succeed, in worker
processes for the robomimic tasks, and writes robomimic-layout hdf5 atomically
(``dpbench.data.episodes.write_hdf5``) with ``env_args`` that record the env and the collection.

A collection is a function of its arguments: seed s always gives the same episode, so the same
call writes the same arrays (the wall-clock statistics in ``env_args`` aside). A robomimic collection keeps
each kept episode in ``.<file>.partial/`` beside its file as it goes, so a killed one resumes where it
stopped when the same command runs again, and writes the same arrays as an uninterrupted one.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import platform
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dpbench.bars import terminal_bar
from dpbench.data.episodes import EpisodeStore, write_hdf5
from dpbench.envs import VARIANTS
from dpbench.envs.pusht.episodes import SCRIPTED_VERSION, collect_episode
from dpbench.envs.robomimic.demonstrator import COLLECT_VERSION, run_episode
from dpbench.envs.robomimic.env import ACTION_MODES, TASK_SPECS, RobomimicEnv
from dpbench.envs.robomimic.env_args import env_args_for
from dpbench.envs.robomimic.planners import PLANNERS
from dpbench.errors import DpbenchError, did_you_mean

PUSHT_KEYS = ("state", "action", "keypoint", "n_contacts", "img")  # what a Push-T file keeps of an episode


# --------------------------------------------------------------------------- Push-T
def collect_pusht(n_episodes: int, path: str | Path, start_seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run the scripted Push-T demonstrator on seeds start_seed, start_seed + 1, ... until
    ``n_episodes`` succeed; write them to ``path`` (robomimic-layout hdf5, atomically).

    Each kept episode stores ``state`` (T, 5), ``action`` (T, 2), ``keypoint`` (T, 9, 2) and
    ``n_contacts`` (T, 1), float32 (see ``collect_episode``). ``env_args`` records the generator,
    its ``SCRIPTED_VERSION``, the seeds tried and how many.

    Returns:
        the collection's statistics, as ``collect_robomimic`` gives them (one worker).

    Raises:
        DpbenchError: the demonstrator keeps failing (fewer than 1 in 20 of over 20 * n_episodes
            seeds succeed), which is a bug.
    """
    episodes: list[dict[str, np.ndarray]] = []
    seed, tried, t0 = start_seed, 0, time.perf_counter()
    with terminal_bar(total=n_episodes, desc="scripted Push-T demos", disable=not progress, unit="ep") as bar:
        while len(episodes) < n_episodes:
            ep = collect_episode(seed)
            seed, tried = seed + 1, tried + 1
            if ep is not None:
                episodes.append({k: v for k, v in ep.items() if k in PUSHT_KEYS})
                bar.update(1)
            bar.set_postfix(success=f"{len(episodes) / tried:.0%}")
            if tried > 20 * n_episodes and len(episodes) < tried // 20:
                raise DpbenchError("the scripted demonstrator keeps failing; this is a bug, please report it")
    store = EpisodeStore.from_episodes(episodes, source="scripted")
    env_args = {
        "env_name": "pusht",
        "generator": "dpbench.envs.pusht.demonstrator",
        "version": SCRIPTED_VERSION,
        "seeds": [start_seed, seed - 1],
        "tried": tried,
    }
    write_hdf5(store, path, env_args=env_args)
    wall = time.perf_counter() - t0
    return {
        "tried": tried,
        "kept": store.n_episodes,
        "success_rate": round(store.n_episodes / tried, 4),
        "seeds": env_args["seeds"],
        "steps": store.n_steps,
        "wall_s": round(wall, 1),
        "steps_per_s": round(store.n_steps / max(wall, 1e-9), 1),
        "workers": 1,
    }


# --------------------------------------------------------------------------- robomimic
def robomimic_scripted_path(
    cache: Path, task: str, variant: str, n_episodes: int, cameras: tuple[str, ...] = (), action_mode: str = "abs"
) -> Path:
    """The cache file of ``n_episodes`` scripted ``task`` demos of ``variant`` with ``cameras`` in
    ``action_mode`` (delta files carry ``_delta``); its name carries ``COLLECT_VERSION``, so a changed
    demonstrator never reuses a stale file."""
    cams = ("_" + "+".join(cameras)) if cameras else ""
    mode = "" if action_mode == "abs" else f"_{action_mode}"
    return cache / f"robomimic_{task}_{variant}{mode}_v{COLLECT_VERSION}_{n_episodes}ep{cams}.hdf5"


_WORKER_ENV: RobomimicEnv | None = None  # one env per collector process


def pinned_simd_env() -> dict[str, str]:
    """The variables a robomimic collector process starts with, on an x86-64 CPU with AVX2: numpy's SIMD dispatch
    held below AVX-512 (``NPY_DISABLE_CPU_FEATURES``) and OpenBLAS held to its Haswell kernels
    (``OPENBLAS_CORETYPE``, read by numpy's bundled OpenBLAS and by SciPy's, which robosuite's numba-compiled
    controller calls). {} elsewhere; a variable the user set is left alone.

    With AVX-512 kernels these libraries round differently, and a contact-rich episode can end a step earlier or
    later: a ToolHang collection counted 109,662 steps on an AVX-512 machine and 109,604 on an AVX2 one. MuJoCo
    (a fixed AVX build), glibc's math functions (the same FMA versions on AVX2 and AVX-512 CPUs) and numba's own
    code (robosuite jits without ``fastmath``; a generic-CPU build gave the same Square episodes) do not change
    results with SIMD width, so with the same wheels and glibc, AVX2 and AVX-512 machines should
    collect the same bits. Measured: an AVX-512 machine with these kernels forced collected Square ph delta
    (200 episodes) with the AVX2 machine's hash; ToolHang and Transport are not re-checked
    (docs/measurements.md, "The same demonstrations on another CPU")."""
    try:
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # pragma: no cover - numpy 2 moved it
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    if platform.machine().lower() not in ("x86_64", "amd64") or not __cpu_features__.get("AVX2"):
        return {}
    pinned = {
        "OPENBLAS_CORETYPE": "Haswell",
        # numpy 2.4 and later group the AVX-512 targets as X86_V4 (and AVX512_*)
        "NPY_DISABLE_CPU_FEATURES": " ".join(f for f in __cpu_dispatch__ if f.startswith("AVX512") or f == "X86_V4"),
    }
    return {k: v for k, v in pinned.items() if k not in os.environ and v}


def _init_collector(task: str, cameras: tuple[str, ...], action_mode: str = "abs", variant: str = "ph") -> None:
    """Make the process's env (in a worker: its pool initializer)."""
    global _WORKER_ENV
    import torch  # only to keep each collector process to one thread; the parent may never need torch

    torch.set_num_threads(1)
    _WORKER_ENV = RobomimicEnv(task, action_mode=action_mode, cameras=cameras, variant=variant)


def _collect_one(args: tuple[int, str]) -> tuple[int, dict[str, np.ndarray] | None]:
    """(seed, the episode or None) for one (seed, variant), on the process's env."""
    seed, variant = args
    return seed, run_episode(_WORKER_ENV, seed, variant)


def iter_scripted_episodes(
    task: str, variant: str, start_seed: int, cameras: tuple[str, ...], workers: int, action_mode: str = "abs"
) -> Iterator[tuple[int, dict[str, np.ndarray] | None]]:
    """(seed, episode or None) for seeds start_seed, start_seed + 1, ... in order, forever.

    The episodes run in a pool of ``workers`` (at least 1) spawned processes, each with its own env and the
    SIMD kernels ``pinned_simd_env`` chooses; the results come back in seed order, so they do not depend on
    ``workers``. Where nothing is pinned and ``workers`` <= 1, they run in this process.
    """
    seeds = ((s, variant) for s in itertools.count(start_seed))
    pinned = pinned_simd_env()
    if workers <= 1 and not pinned:
        _init_collector(task, cameras, action_mode, variant)
        yield from map(_collect_one, seeds)
        return
    with collector_pool(task, cameras, action_mode, variant, workers, pinned) as pool:
        yield from pool.imap(_collect_one, seeds, chunksize=1)


def collector_pool(
    task: str, cameras: tuple[str, ...], action_mode: str, variant: str, workers: int, pinned: dict[str, str]
) -> Any:
    """A pool of ``max(workers, 1)`` spawned collector processes, each with its env, started with ``pinned``
    (``pinned_simd_env``) in their environment; this process's environment is left as it was."""
    saved = {k: os.environ.get(k) for k in pinned}
    os.environ.update(pinned)  # a spawned process reads its environment at start: numpy and OpenBLAS see these
    try:
        ctx = mp.get_context("spawn")
        return ctx.Pool(max(workers, 1), initializer=_init_collector, initargs=(task, cameras, action_mode, variant))
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


class PartialCollection:
    """The episodes an unfinished robomimic collection has kept so far, in ``.<file>.partial/`` beside its file:
    one ``ep_NNNNN.npz`` per kept episode and ``meta.json`` (the recipe, seeds tried, the next seed, seconds
    spent). ``recipe``: what decides the arrays (task, variant, action mode, cameras, first seed, demonstrator
    version, pinned kernels); a partial made by another recipe is discarded, not resumed."""

    def __init__(self, path: Path, recipe: dict[str, Any]) -> None:
        self.dir = path.with_name(f".{path.name}.partial")
        self.recipe = json.loads(json.dumps(recipe))  # as it reads back from meta.json

    def load(self) -> tuple[list[dict[str, np.ndarray]], int, int | None, float]:
        """(episodes kept, seeds tried, next seed, seconds spent) of an earlier run of this recipe, else
        ([], 0, None, 0.0)."""
        try:
            meta = json.loads((self.dir / "meta.json").read_text())
        except (OSError, ValueError):
            meta = None
        if not meta or meta.get("recipe") != self.recipe:
            self.discard()
            return [], 0, None, 0.0
        episodes = []
        for i in range(meta["kept"]):
            with np.load(self.dir / f"ep_{i:05d}.npz") as z:
                episodes.append({k: z[k] for k in z.files})
        return episodes, meta["tried"], meta["next_seed"], meta["wall_s"]

    def save(self, episodes: list[dict[str, np.ndarray]], tried: int, next_seed: int, wall_s: float) -> None:
        """Store the newest kept episode (if not stored yet) and the progress; each file is replaced whole."""
        self.dir.mkdir(parents=True, exist_ok=True)
        i = len(episodes) - 1
        if i >= 0 and not (self.dir / f"ep_{i:05d}.npz").exists():
            tmp = self.dir / f".ep_{i:05d}.{os.getpid()}.tmp.npz"  # two collectors of one file never share a tmp
            np.savez(tmp, **episodes[i])
            os.replace(tmp, self.dir / f"ep_{i:05d}.npz")
        meta = {"recipe": self.recipe, "kept": len(episodes), "tried": tried, "next_seed": next_seed, "wall_s": wall_s}
        tmp = self.dir / f".meta.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.dir / "meta.json")

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def collect_robomimic(
    task: str,
    n_episodes: int,
    path: str | Path,
    variant: str = "ph",
    cameras: tuple[str, ...] = (),
    start_seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    action_mode: str = "abs",
) -> dict[str, Any]:
    """Run the scripted ``task`` demonstrator until ``n_episodes`` successes; write robomimic hdf5 atomically.

    Args:
        task: a robomimic task with a planner (lift, can, square).
        n_episodes: successful episodes to keep (failed seeds are skipped).
        path: the hdf5 file to write.
        variant: ``"ph"`` or ``"mh"`` (see ``dpbench.envs.robomimic.demonstrator``).
        cameras: cameras whose 84x84 images are recorded as ``<camera>_image`` (T, 84, 84, 3) uint8.
        start_seed: the first env seed tried.
        workers: collector processes (spawned, ``iter_scripted_episodes``).
        progress: show a progress bar.
        action_mode: ``"abs"`` (absolute OSC_POSE targets, the paper's position control) or ``"delta"``
            (the delta actions that command the same targets: robomimic's velocity-style actions).

    Each demo stores ``actions`` (T, 7 * n_arms), ``states`` (T, S) and the observation keys;
    ``env_args`` is :func:`~dpbench.envs.robomimic.env_args.env_args_for` plus a ``dpbench`` entry
    (task, variant, action mode, generator, ``COLLECT_VERSION``, cameras, the statistics below).

    Returns:
        the collection's statistics: seeds tried and kept, success rate, first and last seed,
        steps, wall time (s), steps per second and workers.

    Raises:
        DpbenchError: an unknown task, a task without a demonstrator, an unknown variant or
            camera, or a demonstrator that succeeds in under 1 of 10 episodes (a bug).
    """
    if task not in TASK_SPECS:
        raise DpbenchError(
            f"unknown robomimic env '{task}'; choose one of {', '.join(TASK_SPECS)}{did_you_mean([task], TASK_SPECS)}"
        )
    if task not in PLANNERS:
        raise DpbenchError(
            f"no scripted demonstrator for '{task}' (there are: {', '.join(PLANNERS)}); train on your own robomimic "
            f"hdf5 with --dataset PATH"
        )
    if variant not in VARIANTS:
        raise DpbenchError(f"unknown variant '{variant}'; choose one of {', '.join(VARIANTS)}")
    if variant not in PLANNERS[task].VARIANTS:
        raise DpbenchError(
            f"{task} has {' / '.join(PLANNERS[task].VARIANTS)} demonstrations only, as in robomimic; "
            f"choose --variant {PLANNERS[task].VARIANTS[0]}"
        )
    if action_mode not in ACTION_MODES:
        raise DpbenchError(f"unknown action mode '{action_mode}'; choose one of {', '.join(ACTION_MODES)}")
    bad = [c for c in cameras if c not in TASK_SPECS[task].default_cameras]
    if bad:
        raise DpbenchError(
            f"unknown camera(s) {bad} for {task}; choose from {', '.join(TASK_SPECS[task].default_cameras)}"
        )
    t0 = time.perf_counter()
    recipe = {
        "task": task,
        "variant": variant,
        "action_mode": action_mode,
        "cameras": list(cameras),
        "start_seed": start_seed,
        "version": COLLECT_VERSION,
        "pinned_simd": pinned_simd_env(),
    }
    partial = PartialCollection(Path(path), recipe)
    episodes, tried, next_seed, earlier_s = partial.load()
    first = start_seed if next_seed is None else next_seed
    seed = first - 1  # the last seed tried, once the loop below has run
    if episodes or tried:
        print(f"[dpbench] {Path(path).name}: resuming a collection stopped after {len(episodes)} kept of {tried} tried")
    desc = f"scripted {task} ({variant}) demos"
    seeds = iter_scripted_episodes(task, variant, first, tuple(cameras), workers, action_mode)
    try:
        with terminal_bar(total=n_episodes, initial=len(episodes), desc=desc, disable=not progress, unit="ep") as bar:
            for seed, ep in seeds if len(episodes) < n_episodes else ():
                tried += 1
                if ep is not None:
                    ep = dict(ep)
                    ep["action"] = ep.pop("actions")
                    episodes.append(ep)
                    bar.update(1)
                partial.save(episodes, tried, seed + 1, earlier_s + time.perf_counter() - t0)
                bar.set_postfix(success=f"{len(episodes) / tried:.0%}")
                if len(episodes) >= n_episodes:
                    break
                if tried >= 20 and len(episodes) < tried // 10:
                    raise DpbenchError(
                        f"the {task} demonstrator succeeded in {len(episodes)} of {tried} episodes; "
                        "this is a bug, please report it"
                    )
    finally:
        seeds.close()  # stops the collector processes, also on Ctrl-C; what was kept stays in the partial
    wall = earlier_s + time.perf_counter() - t0  # an interrupted collection's runs, all of them
    store = EpisodeStore.from_episodes(episodes[:n_episodes], source="scripted")
    stats = {
        "tried": tried,
        "kept": store.n_episodes,
        "success_rate": round(len(episodes) / tried, 4),
        "seeds": [start_seed, seed],
        "steps": store.n_steps,
        "wall_s": round(wall, 1),
        "steps_per_s": round(sum(len(e["action"]) for e in episodes) / max(wall, 1e-9), 1),
        "workers": workers,
    }
    # the recipe (with the kernels the collector processes were held to, ``pinned_simd``) and the statistics
    provenance = {
        **{k: v for k, v in recipe.items() if k != "start_seed"},
        "generator": "dpbench.envs.robomimic.demonstrator",
        "collection": stats,
    }
    write_hdf5(
        store, path, env_args={**env_args_for(task, tuple(cameras), action_mode, variant), "dpbench": provenance}
    )
    partial.discard()
    return stats
