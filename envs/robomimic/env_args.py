"""A robomimic dataset's ``env_args``: checking a file's against our env, and describing our env's.

A robomimic hdf5 file's ``data.attrs["env_args"]`` (JSON) says which robosuite env and
controller recorded it. dpbench accepts the official robomimic files (v1.4.1, robosuite 1.4
style: ``control_delta``; v1.5: composite ``body_parts``), Diffusion Policy's ``*_abs.hdf5``
conversions, and its own collections (``dpbench.data.collect``, whose ``env_args`` start with
:func:`env_args_for`), and derives the action mode (``delta`` or ``abs``) from it.
"""

from __future__ import annotations

import json
from typing import Any

from dpbench.errors import DpbenchError

from .env import CONTROL_FREQ, ROBOSUITE_VERSION, TASK_SPECS, controller_config


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
    """Check a dataset's env_args against ``task`` and return its action mode, ``"abs"`` or ``"delta"``.

    Args:
        task: a robomimic task name (a key of ``TASK_SPECS``).
        env_args: the file's parsed ``data.attrs["env_args"]`` (a dict; None or empty if absent).
        where: how error messages name the file.

    Raises:
        DpbenchError: no env_args, or a different robosuite env, robots, control rate or
            controller type than the task's, or no controller config to tell the mode from.
    """
    spec = TASK_SPECS[task]
    if not env_args:
        raise DpbenchError(
            f"{where}: no data.attrs['env_args'], so its env and controller are unknown; dpbench reads robomimic "
            f"hdf5 files (official low_dim.hdf5 v1.4.1/v1.5, or `dpbench collect --env {task}`)"
        )
    name = env_args.get("env_name")
    if name != spec.robosuite_env:
        raise DpbenchError(
            f"{where}: recorded on robosuite env '{name}', but env '{task}' is {spec.robosuite_env}; "
            f"pass the {task} dataset"
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
    delta = ctrl["input_type"] == "delta" if "input_type" in ctrl else bool(ctrl.get("control_delta", True))
    return "delta" if delta else "abs"


def env_args_for(
    task: str, cameras: tuple[str, ...] = (), action_mode: str = "abs", variant: str = "ph"
) -> dict[str, Any]:
    """robomimic-style env_args of our env in ``action_mode`` (abs | delta) recording ``cameras`` (84x84),
    for ``variant`` (ph | mh) demonstrations.

    Returns ``{"env_name", "env_version", "type": 1, "env_kwargs"}``, JSON-able, without making an
    env: ``env_kwargs`` are the robosuite kwargs that matter to a dataset (robots, the absolute
    OSC_POSE controller, 20 Hz, robosuite's ``horizon`` = the variant's registered ``max_episode_steps``, the
    cameras and the task's extra kwargs). Importing robosuite (for the controller config) is needed.
    """
    spec = TASK_SPECS[task]
    kwargs: dict[str, Any] = {
        "robots": ["Panda"] * spec.n_arms,
        "controller_configs": controller_config(action_mode),
        "control_freq": CONTROL_FREQ,
        "horizon": spec.horizon(variant),
        "ignore_done": True,
        "reward_shaping": False,
        "use_camera_obs": bool(cameras),
    }
    if cameras:
        kwargs.update(camera_names=list(cameras), camera_heights=84, camera_widths=84)
    kwargs.update(dict(spec.extra_kwargs))
    return {
        "env_name": spec.robosuite_env,
        "env_version": ROBOSUITE_VERSION,
        "type": 1,
        "env_kwargs": json.loads(json.dumps(kwargs)),
    }
