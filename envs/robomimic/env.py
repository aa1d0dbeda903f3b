"""The robomimic task suite (Lift, Can, Square, Transport, ToolHang) on robosuite 1.5 + mujoco 3.

Each task is a ``gymnasium.Env`` over a robosuite env with the Panda arm(s), 20 Hz control and
the OSC_POSE controller, in ``action_mode="abs"`` (world-frame position + axis-angle + gripper,
the paper's position control) or ``"delta"`` (robosuite's default scaled deltas, the action
space of the official robomimic datasets). robosuite is imported when an env is made, never
when dpbench is imported.

Observations are a dict keyed like robomimic's datasets, float32:
``object``, ``robot0_eef_pos`` (3), ``robot0_eef_quat`` (4, x-y-z-w), ``robot0_gripper_qpos`` (2),
the same robot1 keys for Transport, and with ``cameras`` the uint8 images ``<camera>_image``
(H, W, 3), rendered offscreen in robosuite's OpenGL convention (upside down, as in robomimic's
files). ``TaskSpec.lowdim_keys`` gives the order in which dpbench flattens them; the flat sizes are
19 / 23 / 23 / 59 / 53 for lift / can / square / transport / tool_hang.

Offscreen rendering needs ``MUJOCO_GL``: dpbench sets ``egl`` unless it is already set
(``MUJOCO_GL=osmesa`` also works after ``apt-get install libosmesa6``).
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dpbench.errors import DpbenchError

from .. import episode_steps, gym_id_for
from .rotation import ARM_ABS_DIM, quat_to_matrix

MUJOCO_RANGE = ((3, 3), (3, 10))  # robosuite 1.5.2 works with mujoco >= 3.3, < 3.10
ROBOSUITE_VERSION = "1.5.2"
CONTROL_FREQ = 20
ACTION_MODES = ("abs", "delta")
INSTALL_HINT = "pip install -e '.[robosuite]' (robosuite==1.5.2 with mujoco>=3.3,<3.10)"


@dataclass(frozen=True)
class TaskSpec:
    """One robomimic task: its robosuite env, robots, observation sizes and default cameras.

    Its episode length is the Gymnasium registration's (:meth:`horizon`), not a field.
    """

    name: str
    robosuite_env: str
    n_arms: int
    object_dim: int
    default_cameras: tuple[str, ...]
    extra_kwargs: tuple[tuple[str, Any], ...] = ()
    # robosuite observables that make up ``object``, in robomimic's order; () = robosuite 1.5's
    # own ``object-state`` (the same order for lift). robosuite 1.5 reorders can's, square's,
    # transport's and tool_hang's (read against robosuite's pre-1.5 env sources, 2026-11-30).
    object_keys: tuple[str, ...] = ()

    def horizon(self, variant: str = "ph") -> int:
        """The episode length in control steps (20 Hz) for policies trained on ``variant`` (ph | mh)
        demonstrations: ``gymnasium.spec(gym_id).max_episode_steps`` of the task's registration for
        that variant (``dpbench.envs.gym_id_for``): 400 (ph) / 500 (mh) for Lift, Can and Square, 700
        for Transport and ToolHang."""
        return episode_steps(gym_id_for(self.name, variant))

    @property
    def lowdim_keys(self) -> tuple[str, ...]:
        """The observation keys dpbench flattens into ``low_dim``, in order."""
        keys = ["object"]
        for arm in range(self.n_arms):
            keys += [f"robot{arm}_eef_pos", f"robot{arm}_eef_quat", f"robot{arm}_gripper_qpos"]
        return tuple(keys)

    @property
    def key_dims(self) -> dict[str, int]:
        """Observation key -> its flat size."""
        dims = {"object": self.object_dim}
        for arm in range(self.n_arms):
            dims |= {f"robot{arm}_eef_pos": 3, f"robot{arm}_eef_quat": 4, f"robot{arm}_gripper_qpos": 2}
        return dims

    @property
    def lowdim_dim(self) -> int:
        """The flat low-dim observation size (19 / 23 / 23 / 59 / 53)."""
        return sum(self.key_dims.values())

    @property
    def action_dim(self) -> int:
        """robosuite's native action size, the same in both action modes: 7 per arm
        (position 3, axis-angle 3, gripper 1)."""
        return ARM_ABS_DIM * self.n_arms


TASK_SPECS: dict[str, TaskSpec] = {
    "lift": TaskSpec("lift", "Lift", 1, 10, ("agentview", "robot0_eye_in_hand")),
    "can": TaskSpec(
        "can",
        "PickPlaceCan",
        1,
        14,
        ("agentview", "robot0_eye_in_hand"),
        object_keys=("Can_pos", "Can_quat", "Can_to_robot0_eef_pos", "Can_to_robot0_eef_quat"),
    ),
    "square": TaskSpec(
        "square",
        "NutAssemblySquare",
        1,
        14,
        ("agentview", "robot0_eye_in_hand"),
        object_keys=("SquareNut_pos", "SquareNut_quat", "SquareNut_to_robot0_eef_pos", "SquareNut_to_robot0_eef_quat"),
    ),
    "transport": TaskSpec(
        "transport",
        "TwoArmTransport",
        2,
        41,
        ("shouldercamera0", "shouldercamera1", "robot0_eye_in_hand", "robot1_eye_in_hand"),
        (("env_configuration", "single-arm-opposed"),),
        # robomimic's order (robosuite before 1.5, e.g. the v1.4-era two_arm_transport.py sensor list);
        # robosuite 1.5 moves the two in-bin flags before the gripper-relative positions.
        object_keys=(
            "payload_pos",
            "payload_quat",
            "trash_pos",
            "trash_quat",
            "lid_handle_pos",
            "lid_handle_quat",
            "target_bin_pos",
            "trash_bin_pos",
            "gripper0_to_payload",
            "gripper0_to_lid_handle",
            "gripper1_to_payload",
            "gripper1_to_trash",
            "payload_in_target_bin",
            "trash_in_trash_bin",
        ),
    ),
    "tool_hang": TaskSpec(
        "tool_hang",
        "ToolHang",
        1,
        44,
        ("sideview", "robot0_eye_in_hand"),
        # robomimic's order: per object pose then pose in the eef frame (robosuite 1.5 puts the relative
        # pose first, as for can and square), then the two assembly flags.
        object_keys=tuple(
            f"{obj}_{part}"
            for obj in ("base", "frame", "tool")
            for part in ("pos", "quat", "to_robot0_eef_pos", "to_robot0_eef_quat")
        )
        + ("frame_is_assembled", "tool_on_frame"),
    ),
}


def check_mujoco() -> str:
    """Return the installed mujoco version, or raise one clear error naming the versions that work."""
    try:
        version = metadata.version("mujoco")
    except metadata.PackageNotFoundError:
        raise DpbenchError(
            f"the robomimic tasks need robosuite and mujoco, which are not installed: {INSTALL_HINT}"
        ) from None
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    (lo, hi) = MUJOCO_RANGE
    if not (lo <= parts < hi):
        raise DpbenchError(
            f"mujoco {version} is installed, but robosuite {ROBOSUITE_VERSION} works only with mujoco>=3.3,<3.10 "
            f"(3.10+ and 4.x break it): pip install 'mujoco>=3.3,<3.10'"
        )
    return version


def import_robosuite() -> Any:
    """Import robosuite quietly (its start-up INFO/WARNING lines go), after checking versions."""
    check_mujoco()
    os.environ.setdefault("MUJOCO_GL", "egl")
    logger = logging.getLogger("robosuite_logs")
    if not getattr(logger, "_dpbench_quiet", False):
        logger.addFilter(lambda record: record.levelno >= logging.ERROR)
        logger._dpbench_quiet = True  # type: ignore[attr-defined]
    try:
        import robosuite
    except ImportError as exc:
        raise DpbenchError(f"could not import robosuite ({exc}): {INSTALL_HINT}") from None
    if robosuite.__version__ != ROBOSUITE_VERSION:
        raise DpbenchError(
            f"robosuite {robosuite.__version__} is installed; "
            f"dpbench's robomimic tasks need {ROBOSUITE_VERSION}: {INSTALL_HINT}"
        )
    return robosuite


def controller_config(action_mode: str) -> dict[str, Any]:
    """robosuite 1.5's composite config for one arm's OSC_POSE, set explicitly.

    robosuite 1.5 ignores the 1.4-style ``control_delta`` flag, so the mode must be spelled as
    ``input_type`` (``delta`` | ``absolute``) and ``input_ref_frame`` (``base`` | ``world``).
    """
    if action_mode not in ACTION_MODES:
        raise DpbenchError(f"unknown action_mode {action_mode!r}; choose one of {', '.join(ACTION_MODES)}")
    import_robosuite()
    from robosuite.controllers import load_composite_controller_config

    cfg = load_composite_controller_config(controller="BASIC", robot="Panda")
    arm = dict(cfg["body_parts"]["right"])
    if action_mode == "abs":
        arm.update(input_type="absolute", input_ref_frame="world")
    else:
        arm.update(input_type="delta", input_ref_frame="base")
    return {"type": "BASIC", "body_parts": {"right": arm}}


class RobomimicEnv(gym.Env):
    """A robomimic task behind the Gymnasium API. See the module docstring for spaces.

    ``reset(seed=s)`` always gives the same initial object and robot poses; the paper's test
    initial conditions are seeds 100000 + i. ``info["is_success"]`` is the task's own success
    check; the reward is sparse (1.0 on success) and the episode terminates on success.
    ``variant`` (ph | mh) is the demonstrations a policy on it was trained on: it sets the horizon
    (:attr:`max_episode_steps`, robosuite's ``horizon``), as the original's configs do.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_FREQ}

    def __init__(
        self,
        task: str = "lift",
        action_mode: str = "abs",
        cameras: tuple[str, ...] | list[str] | None = None,
        image_size: int = 84,
        render_mode: str | None = None,
        render_size: int = 256,
        variant: str = "ph",
    ) -> None:
        if task not in TASK_SPECS:
            raise DpbenchError(f"unknown robomimic task {task!r}; choose one of {', '.join(TASK_SPECS)}")
        if render_mode not in (None, "rgb_array"):
            raise DpbenchError(f"unsupported render_mode {render_mode!r}; robomimic tasks render 'rgb_array' only")
        self.spec_ = TASK_SPECS[task]
        self.task = task
        self.action_mode = action_mode
        self.cameras = tuple(cameras or ())
        self.image_size = image_size
        self.render_mode = render_mode
        self.render_size = render_size
        self.variant = variant
        self.max_episode_steps = self.spec_.horizon(variant)  # the registration's, for this variant
        suite = import_robosuite()
        offscreen = bool(self.cameras) or render_mode == "rgb_array"
        kwargs: dict[str, Any] = dict(
            robots=["Panda"] * self.spec_.n_arms if self.spec_.n_arms > 1 else "Panda",
            controller_configs=controller_config(action_mode),
            has_renderer=False,
            has_offscreen_renderer=offscreen,
            use_camera_obs=bool(self.cameras),
            control_freq=CONTROL_FREQ,
            horizon=self.max_episode_steps,  # robosuite's episode length; the registration's
            ignore_done=True,  # the Gymnasium TimeLimit ends episodes, not robosuite
            reward_shaping=False,
        )
        if self.cameras:
            kwargs.update(camera_names=list(self.cameras), camera_heights=image_size, camera_widths=image_size)
        kwargs.update(dict(self.spec_.extra_kwargs))
        try:
            self._env = suite.make(self.spec_.robosuite_env, **kwargs)
        except Exception as exc:
            hint = (
                " (offscreen rendering failed: set MUJOCO_GL=egl, or MUJOCO_GL=osmesa after apt-get install libosmesa6)"
                if offscreen
                else ""
            )
            raise DpbenchError(
                f"could not create robosuite env {self.spec_.robosuite_env}: {type(exc).__name__}: {exc}{hint}"
            ) from None
        self.env_kwargs = kwargs  # recorded in collected datasets' env_args

        low, high = self._env.action_spec
        self.action_space = spaces.Box(
            low=np.asarray(low, np.float32), high=np.asarray(high, np.float32), dtype=np.float32
        )
        if action_mode == "abs":  # world-frame targets (m, within reach of the table), axis-angle, gripper
            per_arm = np.array([2.0, 2.0, 2.0, np.pi, np.pi, np.pi, 1.0], np.float32)
            bound = np.tile(per_arm, self.spec_.n_arms)
            self.action_space = spaces.Box(low=-bound, high=bound, dtype=np.float32)
        obs_spaces: dict[str, spaces.Space] = {
            k: spaces.Box(-np.inf, np.inf, shape=(d,), dtype=np.float32) for k, d in self.spec_.key_dims.items()
        }
        for cam in self.cameras:
            obs_spaces[f"{cam}_image"] = spaces.Box(0, 255, shape=(image_size, image_size, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(obs_spaces)

    # ------------------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        # gymnasium.make gives the unwrapped env its spec but not the TimeLimit: look up the registration
        registered = gym.registry.get(self.spec.id) if self.spec is not None else None
        if registered is not None and registered.max_episode_steps not in (None, self.max_episode_steps):
            raise DpbenchError(
                f"{self.spec.id} ends episodes at {registered.max_episode_steps} steps, but policies trained on "
                f"{self.variant} demonstrations run {self.max_episode_steps}: make it as gymnasium.make("
                f"dpbench.envs.gym_id_for({self.spec_.name!r}, {self.variant!r})) = "
                f"{gym_id_for(self.spec_.name, self.variant)!r}"
            )
        # robosuite's placement samplers and robot init noise share env.rng: reseed it in place.
        state = np.random.default_rng(int(self.np_random.integers(2**63 - 1))).bit_generator.state
        self._env.rng.bit_generator.state = state
        self._env.reset()
        if self._env.has_offscreen_renderer:
            # A hard reset rebuilds the sim and its render context; the old GL context sits in a
            # reference cycle until the garbage collector runs (~340 MB each with EGL): free it now.
            gc.collect()
        # robosuite 1.5 computes gripper-relative object poses from a cache that is still empty
        # at reset (they read as zeros for can and square); observe once more with it filled.
        raw = self._env._get_observations(force_update=True)
        self._last_raw = raw
        return self._observe(raw), {"is_success": False}

    def observe_state(self, state: np.ndarray, previous: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The observation at a recorded simulator state (robomimic's ``states``: MuJoCo's flattened
        ``[time, qpos, qvel]``, as ``sim.get_state().flatten()`` gives). Moves the env there.

        Without ``previous``, every value is computed at ``state``. With ``previous`` (the state one
        control step earlier), robosuite's pose cache holds ``previous``'s poses first, as it does when
        ``step`` observes: at the first step after reset, robosuite 1.5 returns Square's nut-to-gripper
        pose computed with the nut pose cached at reset (the dropped nut has fallen ~1 cm since), and
        this replay reproduces it (tests/test_robomimic.py)."""
        sim = self._env.sim
        if previous is not None:
            sim.set_state_from_flattened(np.asarray(previous, np.float64))
            sim.forward()
            self._env._get_observations(force_update=True)
            self._env._get_observations(force_update=True)
        sim.set_state_from_flattened(np.asarray(state, np.float64))
        sim.forward()
        if previous is None:
            self._env._get_observations(force_update=True)  # fill robosuite's pose cache first, as at reset
        raw = self._env._get_observations(force_update=True)
        self._last_raw = raw
        return self._observe(raw)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (self.spec_.action_dim,):
            raise DpbenchError(f"{self.task}: action has shape {action.shape}, expected ({self.spec_.action_dim},)")
        if not np.all(np.isfinite(action)):
            raise DpbenchError(
                f"{self.task}: NaN or inf in the action {action.tolist()}; nothing was sent to the simulator"
            )
        raw, _, _, _ = self._env.step(action)
        self._last_raw = raw
        success = bool(self._env._check_success())
        return self._observe(raw), float(success), success, False, {"is_success": success}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        camera = self.cameras[0] if self.cameras else self.spec_.default_cameras[0]
        frame = self._env.sim.render(width=self.render_size, height=self.render_size, camera_name=camera)
        return np.ascontiguousarray(frame[::-1])  # OpenGL rows run bottom-up

    def close(self) -> None:
        env = getattr(self, "_env", None)
        if env is not None:
            env.close()
            self._env = None

    # ------------------------------------------------------------------------------ helpers
    @property
    def robosuite_env(self) -> Any:
        """The wrapped robosuite env (demonstrators read object poses from it)."""
        return self._env

    def control_position(self, arm: int = 0) -> np.ndarray:
        """The grip site's current world position (3,), in m: the point absolute actions command (a
        copy, read from the simulator: later steps do not change it)."""
        robot = self._env.robots[arm]
        return np.array(self._env.sim.data.site_xpos[robot.eef_site_id["right"]], np.float64)

    def control_rotation(self, arm: int = 0) -> np.ndarray:
        """The current orientation (3, 3) of the frame that absolute actions command: the grip
        site. ``robot0_eef_quat`` (robomimic's key) is the hand body, 90 degrees about z from it."""
        return quat_to_matrix(np.asarray(self._last_raw[f"robot{arm}_eef_quat_site"], np.float64))

    def _observe(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        keys = self.spec_.object_keys
        obj = np.concatenate([np.ravel(raw[k]) for k in keys]) if keys else raw["object-state"]
        obs = {"object": np.asarray(obj, np.float32)}
        for arm in range(self.spec_.n_arms):
            for part in ("eef_pos", "eef_quat", "gripper_qpos"):
                key = f"robot{arm}_{part}"
                obs[key] = np.asarray(raw[key], np.float32)
        for cam in self.cameras:
            obs[f"{cam}_image"] = np.asarray(raw[f"{cam}_image"], np.uint8)
        return obs
