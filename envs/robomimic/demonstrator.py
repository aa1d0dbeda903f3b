"""Scripted demonstrators for the robomimic tasks: absolute (world-frame) OSC_POSE targets, recorded
as absolute actions, or, in an env with ``action_mode="delta"``, as the delta actions that command the
same targets (robomimic's own datasets' velocity-style actions).

A demonstration is a list of :class:`Waypoint` s per arm, planned from the object poses at reset
(a step may also be planned when the arm reaches it, from the poses then); the executor
interpolates between them (linear in position, geodesic in rotation) and each step's
interpolated target *is* the recorded action, so actions are smooth and exactly what the
controller was told. Two variants, like robomimic's datasets:

* ``ph`` (proficient human): one consistent strategy, fixed speeds.
* ``mh`` (multi-human): per episode, a randomly chosen strategy (a grasp mode that differs by a
  symmetry of the object, a via-point on one side or the other), random speeds and small grasp
  offsets. The modes are exact alternatives, so a policy that averages them (unimodal MSE)
  grasps or moves in between and fails, which is what the paper's mh datasets test.

Only successful episodes are kept (the executor returns ``None`` otherwise). Each task's
planner is one ``Planner`` subclass in :mod:`dpbench.envs.robomimic.planners` (``PLANNERS`` lists
them); the waypoints and their interpolation and state triggers are
:mod:`dpbench.envs.robomimic.waypoints`. This module is the executor, :func:`run_episode`, which
returns episodes in memory; ``dpbench.data.collect`` runs it over seeds and writes the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .env import RobomimicEnv
from .planners import PLANNERS
from .rotation import axis_angle_to_matrix, matrix_to_axis_angle
from .waypoints import MAX_WAIT, OPEN, Step, Waypoint, segment, triggered

# The version of the demonstrations (stored in each collected file's env_args, and part of the
# cache's file names): bump it when a demonstrator changes, so stale caches are not reused.
# v3: demos store `states`; v4: state-triggered grasps and releases.
COLLECT_VERSION = 4
# robosuite's OSC_POSE delta scaling (controller output_max for input 1): metres and radians per unit.
DELTA_POS_SCALE, DELTA_ROT_SCALE = 0.05, 0.5


def delta_action(env: RobomimicEnv, target: np.ndarray, arm: int = 0) -> np.ndarray:
    """The delta OSC_POSE action (7,) that commands the absolute ``target`` (7,: world position in m,
    axis-angle of the grip site, gripper) for arm ``arm`` from its current pose: robosuite's delta controller
    sets its goal to ``current + output_max * a`` in the robot base frame (position) and
    ``R(output_max * a) @ R_current`` (rotation), so ``a = (target - current) / output_max``, clipped to
    [-1, 1] (a step beyond 5 cm or 0.5 rad is reached over several steps)."""
    rs = env.robosuite_env
    robot = rs.robots[arm]
    base = rs.sim.data.body_xmat[rs.sim.model.body_name2id(robot.robot_model.root_body)].reshape(3, 3)
    pos = env.control_position(arm)
    dpos = base.T @ (target[:3] - pos) / DELTA_POS_SCALE
    drot_world = axis_angle_to_matrix(target[3:6]) @ env.control_rotation(arm).T
    drot = matrix_to_axis_angle(base.T @ drot_world @ base) / DELTA_ROT_SCALE
    return np.concatenate([np.clip(dpos, -1, 1), np.clip(drot, -1, 1), target[6:7]]).astype(np.float64)


@dataclass
class ArmCursor:
    """One arm's progress through its planned steps, one absolute target (7,) per control step.

    A step is a :class:`Waypoint`, or a callable ``env -> list[Step]`` expanded when the arm
    reaches it (a pose that depends on where an object is by then, e.g. after a handover); it may
    return more callables, or nothing. Each waypoint is reached over its interpolated segment, then
    held until its state trigger fires (at most ``MAX_WAIT`` steps); a waypoint with ``after`` holds
    the arm's last target until the named label is done (by either arm)."""

    arm: int
    steps: list[Step]
    pos: np.ndarray  # where the next segment starts: the last completed waypoint's pose
    rot: np.ndarray
    last: np.ndarray  # the target held while blocked, or once every step is done
    wp: Waypoint | None = None
    targets: list[np.ndarray] = field(default_factory=list)
    i: int = 0
    waited: int = 0

    @property
    def done(self) -> bool:
        return self.wp is None and not self.steps

    def next_target(self, env: RobomimicEnv, history: list[dict[str, np.ndarray]], labels: set[str]) -> np.ndarray:
        """This control step's target; advances the cursor (``labels``: completed labels, updated here)."""
        while True:
            if self.wp is not None:
                if self.i < len(self.targets):
                    self.i += 1
                    return self.targets[self.i - 1]
                if self.waited < MAX_WAIT and not triggered(self.wp, history, self.arm):
                    self.waited += 1
                    return self.targets[-1]
                if self.wp.label:
                    labels.add(self.wp.label)
                start = env.control_position(self.arm) if self.wp.from_hand else self.wp.pos
                self.pos, self.rot, self.last = start.astype(np.float64), self.wp.rot, self.targets[-1]
                self.wp = None
            if not self.steps:
                return self.last
            step = self.steps[0]
            if callable(step):
                self.steps[:1] = step(env)
                continue
            if step.after and step.after not in labels:
                return self.last
            self.wp, self.targets, self.i, self.waited = self.steps.pop(0), segment(self.pos, self.rot, step), 0, 0


def run_episode(env: RobomimicEnv, seed: int, variant: str = "ph", hold_steps: int = 0) -> dict[str, np.ndarray] | None:
    """One scripted episode from ``reset(seed=seed)``; the recorded arrays, or None on failure.

    The episode ends at the first successful step (plus ``hold_steps``), like robomimic's
    demonstrations, when every arm has done its steps, or after the variant's horizon
    (``TaskSpec.horizon(variant)``: a failure; ``env``'s own variant does not limit it, since robosuite
    runs with ``ignore_done``). The arrays are
    ``actions`` (T, 7 * n_arms) OSC_POSE actions: absolute (world-frame position in m, axis-angle,
    gripper) in an ``action_mode="abs"`` env, else the delta actions that command the same targets
    (:func:`delta_action`), ``states`` (T, S: the simulator state before each action, robomimic's ``states``) and
    one per observation key (T, ...), where ``obs[t]`` is what the policy saw when it chose
    ``actions[t]``. The planner's generator is ``default_rng(seed)`` (ph) or
    ``default_rng(seed + 7_919_000)`` (mh), so a seed and variant fix the episode.

    Raises:
        ValueError: no planner for ``env.task``, or a ``variant`` it does not have (ToolHang: ph only).
    """
    if env.task not in PLANNERS:
        raise ValueError(f"no scripted demonstrator for {env.task!r}")
    # the planner checks the variant; built before the reset, so a wrong one costs no simulation
    planner = PLANNERS[env.task](variant, np.random.default_rng(seed + (0 if variant == "ph" else 7_919_000)))
    obs, _ = env.reset(seed=seed)
    cursors = []
    for arm, steps in enumerate(planner.plan_arms(env, obs)):
        pos, rot = obs[f"robot{arm}_eef_pos"].astype(np.float64), env.control_rotation(arm)
        hold = np.concatenate([pos, matrix_to_axis_angle(rot), [OPEN]])
        cursors.append(ArmCursor(arm, list(steps), pos, rot, hold))
    max_steps = env.spec_.horizon(variant)
    record: dict[str, list[np.ndarray]] = {"actions": [], "states": []}
    history = [obs]  # the observations so far, for the state triggers
    labels: set[str] = set()
    success_at = None
    while len(record["actions"]) < max_steps:
        targets = [c.next_target(env, history, labels) for c in cursors]
        if all(c.done for c in cursors):
            break
        for k, v in obs.items():
            record.setdefault(k, []).append(v)
        record["states"].append(env.robosuite_env.sim.get_state().flatten())
        if env.action_mode == "abs":
            action = np.concatenate(targets)
        else:
            action = np.concatenate([delta_action(env, t, arm) for arm, t in enumerate(targets)])
        record["actions"].append(action)
        obs, _, _, _, info = env.step(action)
        history.append(obs)
        if info["is_success"] and success_at is None:
            success_at = len(record["actions"])
        if success_at is not None and len(record["actions"]) >= success_at + hold_steps:
            break
    if success_at is None:
        return None
    return {k: np.stack(v) for k, v in record.items()}
