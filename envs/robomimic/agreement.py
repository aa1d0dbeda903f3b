"""Does a robomimic dataset describe the env it will be evaluated in? Replay its states and compare.

robomimic hdf5 stores each demo's simulator states (``data/demo_i/states``: MuJoCo's flattened
``[time, qpos, qvel]``). Resetting the env to a few of them and observing gives exactly what the
env would show a policy at those moments, so every low-dim observation key the file stores must
equal it. A file can be internally consistent and still disagree: robomimic v1.5-style files store
``object`` in robosuite 1.5's order (for can and square the gripper-relative pose first), while
dpbench's env builds robomimic v1.4.1's order, which Diffusion Policy's ``*_abs`` files keep.

``check_dataset`` tries the env's own layout first, then each known alternative; a layout that
explains every checked state is mapped explicitly (``Agreement.apply``) and named in the run's log
and record. Anything else is one ``DpbenchError`` naming the key and its first differing dims.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np

from dpbench.errors import DpbenchError

from .env import RobomimicEnv

ENV_LAYOUT = "robomimic v1.4.1 order (the env's; also Diffusion Policy's *_abs files)"
ROBOSUITE_LAYOUT = "robosuite 1.5 object-state order (robomimic v1.5 files)"
# Recorded observations come from env.step, after mj_step, whose body positions lag its qpos by one
# physics substep (2 ms); replaying a state runs mj_forward. So the check compares early steps, where
# the arm starts from rest and values agree to < 1e-3 (measured on scripted Can demos; a grasped can
# moving at mid-episode differs by up to 3.5e-2). Step 0 is skipped: robosuite 1.5 records the
# gripper-relative poses there as zeros (its observation cache is empty at reset). At step 1, a file
# recorded through robosuite 1.5's env.step (dpbench's demonstrators) carries gripper-relative poses
# computed from poses cached at reset (1.3 cm off for Square's falling nut); one regenerated from
# states carries current ones. The check accepts either replay (RobomimicEnv.observe_state).
# Objects need not start at rest either: Square's nut is dropped at reset and falls 3.5 cm in one
# step around step 2, where recorded and replayed heights differ by 3.8 mm. So each value may also
# differ by MOTION_TOL of how far it moves in the file over the next step.
STEPS = (1, 2)
ATOL = 2e-3
MOTION_TOL = 0.15


@dataclass(frozen=True)
class Agreement:
    """The outcome of a successful check: which layout the file has and how to map it."""

    layout: str
    # key -> the file's columns in the env's order (only keys whose order differs)
    columns: dict[str, tuple[int, ...]] = field(default_factory=dict)
    states_checked: int = 0
    keys_checked: tuple[str, ...] = ()

    def apply(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A copy of ``data`` (arrays (N, D) keyed like the file's obs) in the env's column order."""
        out = dict(data)
        for key, cols in self.columns.items():
            if key in out:
                out[key] = np.ascontiguousarray(out[key][:, list(cols)])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "mapped": {k: list(v) for k, v in self.columns.items()},
            "states_checked": self.states_checked,
            "keys_checked": list(self.keys_checked),
        }


def _layouts(env: Any) -> dict[str, dict[str, np.ndarray]]:
    """Known layouts -> {key: perm}, where the file's column j holds the env's column perm[j]."""
    spec = env.spec_
    layouts: dict[str, dict[str, np.ndarray]] = {ENV_LAYOUT: {}}
    if not spec.object_keys:  # the env's object is robosuite's object-state itself: one layout
        return layouts
    suite = env.robosuite_env
    raw = suite._get_observations(force_update=True)
    offsets, start = {}, 0
    for name in spec.object_keys:
        size = int(np.size(raw[name]))
        offsets[name] = np.arange(start, start + size)
        start += size
    order = [
        n
        for n, ob in suite._observables.items()
        if ob.modality == "object" and ob.is_enabled() and ob.is_active() and n in offsets
    ]
    perm = np.concatenate([offsets[n] for n in order])
    if len(order) == len(offsets) and not np.array_equal(perm, np.arange(start)):
        layouts[ROBOSUITE_LAYOUT] = {"object": perm}
    return layouts


def _row(demo: h5py.Group, key: str, t: int) -> np.ndarray:
    """One step of a demo's stored observation ``key``, flat float64."""
    return np.asarray(demo["obs"][key][t], np.float64).ravel()


class _Sample(NamedTuple):
    """One checked step of a demo."""

    demo: str
    step: int
    state: np.ndarray  # the simulator state at the step
    previous: np.ndarray  # the state one step earlier (the same at step 0)
    stored: dict[str, np.ndarray]  # the file's observation per key, flat
    # |the file's observation at the next step - this one| per key: measured forward, because step 0's
    # gripper-relative poses may be zeros (robosuite 1.5 at reset) and a backward difference the whole value
    motion: dict[str, np.ndarray]


def _samples(path: Path, keys: Sequence[str], n_demos: int) -> list[_Sample]:
    """The ``STEPS`` of the first ``n_demos`` demos."""
    out = []
    with h5py.File(path, "r") as f:
        demos = sorted((k for k in f["data"] if k.startswith("demo_")), key=lambda k: int(k.split("_")[1]))
        for name in demos[:n_demos]:
            demo = f["data"][name]
            if "states" not in demo:
                raise DpbenchError(
                    f"{path}: demo '{name}' has no 'states', so it cannot be checked against the env; robomimic's "
                    "files and `dpbench collect` (collection v3+) store them: re-collect, or add the simulator states"
                )
            n = len(demo["states"])
            for t in sorted({min(t, n - 1) for t in STEPS}):
                out.append(
                    _Sample(
                        name,
                        t,
                        np.asarray(demo["states"][t], np.float64),
                        np.asarray(demo["states"][max(t - 1, 0)], np.float64),
                        {k: _row(demo, k, t) for k in keys},
                        {k: np.abs(_row(demo, k, min(t + 1, n - 1)) - _row(demo, k, t)) for k in keys},
                    )
                )
    return out


def check_dataset(task: str, path: str | Path, keys: Sequence[str], n_demos: int = 5) -> Agreement:
    """Check a robomimic hdf5's low-dim ``keys`` against ``task``'s env by replaying recorded states.

    Returns the ``Agreement`` (its layout and column mapping). Raises DpbenchError when the file has
    no states, its states do not fit the env's model, or an observation disagrees in a way no known
    layout explains (naming the key, demo, step and first differing dims)."""
    path = Path(path)
    keys = tuple(k for k in keys if not k.endswith("_image"))
    samples = _samples(path, keys, n_demos)
    env = RobomimicEnv(task)
    try:
        env.reset(seed=0)
        layouts = _layouts(env)
        size = env.robosuite_env.sim.get_state().flatten().size
        observed, lagged = [], []
        for name, _t, state, previous, _stored, _motion in samples:
            if state.size != size:
                raise DpbenchError(
                    f"{path}: {name}'s simulator states have {state.size} numbers, but env '{task}' has {size}: "
                    "the file was recorded on another model (robosuite version or object set) than this env"
                )
            env_obs = env.observe_state(state)
            observed.append({k: np.asarray(env_obs[k], np.float64).ravel() for k in keys})
            env_obs = env.observe_state(state, previous)
            lagged.append({k: np.asarray(env_obs[k], np.float64).ravel() for k in keys})
    finally:
        env.close()

    def agrees(
        layout: dict[str, np.ndarray], key: str, stored: np.ndarray, env_value: np.ndarray, motion: np.ndarray
    ) -> bool:
        perm = layout.get(key)
        expected = env_value if perm is None else env_value[perm]
        if stored.shape != expected.shape:
            return False
        return bool(np.all(np.abs(stored - expected) <= ATOL + MOTION_TOL * motion))

    for name, layout in layouts.items():
        for replay in (observed, lagged):
            if all(agrees(layout, k, s.stored[k], o[k], s.motion[k]) for s, o in zip(samples, replay) for k in keys):
                columns = {k: tuple(int(i) for i in np.argsort(p)) for k, p in layout.items() if k in keys}
                return Agreement(name, columns, len(samples), keys)

    # No layout explains it: name the first disagreement under the env's own layout, in the replay
    # (current poses, or step's cached ones) that disagrees least.
    def failures(replay: list[dict[str, np.ndarray]]) -> int:
        return sum(not agrees({}, k, s.stored[k], o[k], s.motion[k]) for s, o in zip(samples, replay) for k in keys)

    replay, how = min(((observed, "current poses"), (lagged, "step's cached poses")), key=lambda r: failures(r[0]))
    for (demo, t, _, _, stored, motion), env_obs in zip(samples, replay):
        for k in keys:
            if not agrees({}, k, stored[k], env_obs[k], motion[k]):
                if stored[k].shape != env_obs[k].shape:
                    raise DpbenchError(
                        f"{path}: obs '{k}' has {stored[k].size} dims, env '{task}' computes {env_obs[k].size}"
                    )
                bad = np.nonzero(np.abs(stored[k] - env_obs[k]) > ATOL + MOTION_TOL * motion[k])[0]
                raise DpbenchError(
                    f"{path}: obs '{k}' disagrees with env '{task}' at {demo} step {t} (replayed from its recorded "
                    f"state, {how}) in dims {bad[:6].tolist()}: file {np.round(stored[k][bad[:3]], 4).tolist()}, "
                    f"env {np.round(env_obs[k][bad[:3]], 4).tolist()}. No known layout ({', '.join(layouts)}) "
                    "explains it: the file's feature order, sign or units differ from the env's"
                )
    raise AssertionError("unreachable: every key agreed under the env's layout")
