"""robomimic-layout hdf5 for the robomimic tasks: checking a file's ``env_args`` against our env,
and collecting scripted demonstrations into new files (in parallel worker processes).

A dataset's ``data.attrs["env_args"]`` (JSON) says which robosuite env and controller recorded
it. dpbench accepts the official robomimic files (v1.4.1, robosuite 1.4 style: ``control_delta``;
v1.5: composite ``body_parts``), Diffusion Policy's ``*_abs.hdf5`` conversions, and its own
collections, and derives the action mode (``delta`` or ``abs``) from it.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dpbench.errors import DpbenchError

from .env import CONTROL_FREQ, ROBOSUITE_VERSION, TASK_SPECS

COLLECT_VERSION = 4  # bump when a demonstrator changes, so stale caches are not reused (v3: demos store `states`; v4: state-triggered grasps and releases)


def _find_arm_controller(cfg: Any) -> dict[str, Any] | None:
    """The OSC controller dict inside a 1.4-style or 1.5 composite controller config."""
    if not isinstance(cfg, dict):
        return None
    if "body_parts" in cfg:  # robosuite 1.5 composite
        parts = cfg["body_parts"]
        for name in ("right", "left"):
            if isinstance(parts.get(name), dict):
                return parts[name]
        return next((p for p in parts.values() if isinstance(p, dict)), None)
    return cfg


def action_mode_from_env_args(task: str, env_args: Any, where: str) -> str:
    """Check a dataset's env_args against ``task`` and return its action mode (abs | delta)."""
    spec = TASK_SPECS[task]
    if not env_args:
        raise DpbenchError(
            f"{where}: no data.attrs['env_args'], so its env and controller are unknown; dpbench reads robomimic "
            f"hdf5 files (official low_dim.hdf5 v1.4.1/v1.5, or `dpbench collect --env {task}`)"
        )
    name = env_args.get("env_name")
    if name != spec.robosuite_env:
        raise DpbenchError(
            f"{where}: recorded on robosuite env '{name}', but env '{task}' is {spec.robosuite_env}; pass the {task} dataset"
        )
    kwargs = env_args.get("env_kwargs", {})
    robots = kwargs.get("robots", ["Panda"] * spec.n_arms)
    robots = [robots] if isinstance(robots, str) else list(robots)
    if robots != ["Panda"] * spec.n_arms:
        raise DpbenchError(f"{where}: recorded with robots {robots}; dpbench's {task} uses {['Panda'] * spec.n_arms}")
    freq = kwargs.get("control_freq", CONTROL_FREQ)
    if int(freq) != CONTROL_FREQ:
        raise DpbenchError(f"{where}: recorded at {freq} Hz; dpbench's robomimic tasks run at {CONTROL_FREQ} Hz")
    ctrl = _find_arm_controller(kwargs.get("controller_configs"))
    if ctrl is None:
        raise DpbenchError(f"{where}: env_args has no controller_configs; cannot tell delta from absolute actions")
    if ctrl.get("type") != "OSC_POSE":
        raise DpbenchError(
            f"{where}: recorded with controller {ctrl.get('type')!r}; dpbench's robomimic tasks use OSC_POSE"
        )
    if "input_type" in ctrl:
        delta = ctrl["input_type"] == "delta"
    else:
        delta = bool(ctrl.get("control_delta", True))
    return "delta" if delta else "abs"


def env_args_for(
    task: str, variant: str, cameras: tuple[str, ...], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """robomimic-style env_args for a dataset collected in our env (absolute actions)."""
    return {
        "env_name": TASK_SPECS[task].robosuite_env,
        "env_version": ROBOSUITE_VERSION,
        "type": 1,
        "env_kwargs": _collector_kwargs(task, cameras),
        "dpbench": {
            "task": task,
            "variant": variant,
            "action_mode": "abs",
            "generator": "dpbench.envs.robomimic.demonstrator",
            "version": COLLECT_VERSION,
            **(extra or {}),
        },
    }


def scripted_path(cache: Path, task: str, variant: str, n_episodes: int, cameras: tuple[str, ...] = ()) -> Path:
    cams = ("_" + "+".join(cameras)) if cameras else ""
    return cache / f"robomimic_{task}_{variant}_v{COLLECT_VERSION}_{n_episodes}ep{cams}.hdf5"


# --------------------------------------------------------------------------- collection workers
_WORKER_ENV: Any = None


def _init_collector(task: str, cameras: tuple[str, ...]) -> None:
    global _WORKER_ENV
    import torch

    torch.set_num_threads(1)
    from .env import RobomimicEnv

    _WORKER_ENV = RobomimicEnv(task, action_mode="abs", cameras=cameras)


def _collect_one(args: tuple[int, str]) -> tuple[int, dict[str, np.ndarray] | None]:
    from .demonstrator import run_episode

    seed, variant = args
    return seed, run_episode(_WORKER_ENV, seed, variant)


def iter_scripted_episodes(
    task: str, variant: str, start_seed: int, cameras: tuple[str, ...], workers: int
) -> Iterator[tuple[int, dict[str, np.ndarray] | None]]:
    """(seed, episode or None) for seeds start_seed, start_seed + 1, ... in order, forever."""
    seeds = ((s, variant) for s in itertools.count(start_seed))
    if workers <= 1:
        _init_collector(task, cameras)
        yield from map(_collect_one, seeds)
        return
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_collector, initargs=(task, cameras)) as pool:
        yield from pool.imap(_collect_one, seeds, chunksize=1)


def collect(
    task: str,
    n_episodes: int,
    path: Path,
    variant: str = "ph",
    cameras: tuple[str, ...] = (),
    start_seed: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the scripted demonstrator until ``n_episodes`` successes; write robomimic hdf5 atomically.

    Returns the collection's statistics (success rate, steps, wall time)."""
    import time

    from tqdm.auto import tqdm

    from dpbench.data.episodes import EpisodeStore, write_hdf5

    from .demonstrator import PLANNERS, VARIANTS

    if task not in TASK_SPECS:
        raise DpbenchError(f"unknown robomimic env '{task}'; choose one of {', '.join(TASK_SPECS)}")
    if task not in PLANNERS:
        raise DpbenchError(
            f"no scripted demonstrator for '{task}' (there are: {', '.join(PLANNERS)}); train on your own robomimic "
            f"hdf5 with --dataset PATH"
        )
    if variant not in VARIANTS:
        raise DpbenchError(f"unknown variant '{variant}'; choose one of {', '.join(VARIANTS)}")
    bad = [c for c in cameras if c not in TASK_SPECS[task].default_cameras]
    if bad:
        raise DpbenchError(
            f"unknown camera(s) {bad} for {task}; choose from {', '.join(TASK_SPECS[task].default_cameras)}"
        )
    t0 = time.perf_counter()
    episodes: list[dict[str, np.ndarray]] = []
    tried, seed = 0, start_seed
    with tqdm(total=n_episodes, desc=f"scripted {task} ({variant}) demos", disable=not progress, unit="ep") as bar:
        for seed, ep in iter_scripted_episodes(task, variant, start_seed, tuple(cameras), workers):
            tried += 1
            if ep is not None:
                ep = dict(ep)
                ep["action"] = ep.pop("actions")
                episodes.append(ep)
                bar.update(1)
            bar.set_postfix(success=f"{len(episodes) / tried:.0%}")
            if len(episodes) >= n_episodes:
                break
            if tried >= 20 and len(episodes) < tried // 10:
                raise DpbenchError(
                    f"the {task} demonstrator succeeded in {len(episodes)} of {tried} episodes; this is a bug, please report it"
                )
    wall = time.perf_counter() - t0
    store = EpisodeStore.from_episodes(episodes, source="scripted")
    stats = {
        "tried": tried,
        "kept": len(episodes),
        "success_rate": round(len(episodes) / tried, 4),
        "seeds": [start_seed, seed],
        "steps": store.n_steps,
        "wall_s": round(wall, 1),
        "steps_per_s": round(sum(len(e["action"]) for e in episodes) / wall, 1),
        "workers": workers,
    }
    write_hdf5(
        store,
        path,
        env_args=env_args_for(task, variant, tuple(cameras), {"cameras": list(cameras), "collection": stats}),
    )
    return stats


def _collector_kwargs(task: str, cameras: tuple[str, ...]) -> dict[str, Any]:
    """The robosuite kwargs RobomimicEnv uses (as JSON-able data), without making an env."""
    from .env import controller_config

    spec = TASK_SPECS[task]
    kwargs: dict[str, Any] = {
        "robots": ["Panda"] * spec.n_arms,
        "controller_configs": controller_config("abs"),
        "control_freq": CONTROL_FREQ,
        "horizon": spec.horizon,
        "ignore_done": True,
        "reward_shaping": False,
        "use_camera_obs": bool(cameras),
    }
    if cameras:
        kwargs.update(camera_names=list(cameras), camera_heights=84, camera_widths=84)
    kwargs.update(dict(spec.extra_kwargs))
    return json.loads(json.dumps(kwargs))
