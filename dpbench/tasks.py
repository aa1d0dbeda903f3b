"""Tasks: an env, its observation modes, its datasets and its evaluation protocol.

A task names its Gymnasium ID (whose registered ``max_episode_steps`` is the one source of the
episode horizon), its observation modes (``dpbench.envs.io.ObsMode``: picklable transforms that
map dataset arrays and env observations to the *same* policy arrays, and policy actions back to
env actions), and the paper's test protocol. A policy never contains task-specific code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

from dpbench.envs import GYM_IDS, PUSHT_ID, episode_steps, gym_id_for
from dpbench.envs.io import ObsMode
from dpbench.envs.pusht.io import MODES as PUSHT_MODES
from dpbench.envs.robomimic.io import MODES as ROBOMIMIC_MODES
from dpbench.errors import DpbenchError, did_you_mean


@dataclass(frozen=True)
class Task:
    """One benchmark task: its env, observation modes, datasets and the paper's test protocol."""

    name: str
    gym_id: str
    obs_modes: dict[str, ObsMode]
    default_obs: str
    default_dataset: str
    datasets: tuple[str, ...]
    test_seed_start: int = 100000
    n_test_episodes: int = 50
    # What the paper's tables report here: "success" (the share of solved episodes, robomimic) or
    # "coverage" (Push-T: the mean over episodes of the best reward, clip(coverage / 0.95, 0, 1)).
    metric: Literal["success", "coverage"] = "success"
    # Held-out test seeds: the selected checkpoint's second opinion (TrainConfig.heldout_episodes).
    # Far from the paper's test seeds (100000-100049) and from the demonstration seeds (0 on).
    heldout_seed_start: int = 200000
    parallel_eval: bool = False  # env steps are costly: evaluate over one process per core
    # Dataset kind -> the paper's cap on training episodes (the original's ``max_train_episodes``).
    paper_max_train_episodes: dict[str, int] = field(default_factory=dict)
    # Tasks whose env can be driven in several action modes (robomimic: abs | delta). The mode
    # comes from the dataset (``action_mode_of``); ``build_mode(obs, action_mode)`` makes its ObsMode.
    action_modes: tuple[str, ...] = ()
    build_mode: Callable[[str, str], ObsMode] | None = None
    action_mode_of: Callable[[dict[str, Any]], str] | None = None
    # Checks a dataset file against the env before training: (path, obs keys) -> an agreement
    # whose ``apply(data)`` maps the file's arrays to the env's layout (robomimic: replayed states).
    verify_dataset: Callable[[Any, tuple[str, ...]], Any] | None = None

    @property
    def max_episode_steps(self) -> int:
        """The episode horizon: the Gymnasium registration's ``max_episode_steps`` (its TimeLimit
        ends every episode there)."""
        return episode_steps(self.gym_id)

    def for_variant(self, variant: str) -> Task:
        """This task as it evaluates policies trained on ``variant`` (ph | mh) demonstrations: the same task
        under the variant's Gymnasium ID, whose horizon may differ (Lift, Can, Square: 400 ph, 500 mh, as in
        the original's task configs). Raises DpbenchError for another variant (``gym_id_for``)."""
        return replace(self, gym_id=gym_id_for(self.name, variant))

    def obs_mode(self, name: str | None, action_mode: str | None = None) -> ObsMode:
        """The ObsMode for obs mode ``name`` (None: ``default_obs``) and, on a task with several action modes,
        ``action_mode`` (None or the first: the prebuilt mode). Raises DpbenchError for an unknown obs or action
        mode."""
        name = name or self.default_obs
        if name not in self.obs_modes:
            raise DpbenchError(
                f"task '{self.name}' has no obs mode '{name}'; choose one of {', '.join(self.obs_modes)}"
                f"{did_you_mean([name], self.obs_modes)}"
            )
        if action_mode is None or self.build_mode is None or action_mode == self.action_modes[0]:
            return self.obs_modes[name]
        if action_mode not in self.action_modes:
            raise DpbenchError(
                f"task '{self.name}' has no action mode '{action_mode}'; choose one of {', '.join(self.action_modes)}"
            )
        return self.build_mode(name, action_mode)

    def max_train_episodes(self, dataset_kind: str, train_episodes: str, explicit: int | None) -> int | None:
        """The cap on training episodes: an explicit one, else the paper's for this dataset kind
        (``train_episodes="paper"``) or none (``"all"``; the runner has checked the value)."""
        if explicit is not None:
            return explicit
        return self.paper_max_train_episodes.get(dataset_kind) if train_episodes == "paper" else None

    def dataset_action_mode(self, dataset_attrs: dict[str, Any]) -> str | None:
        """The action mode a dataset was recorded in (checked against this task), or None."""
        return self.action_mode_of(dataset_attrs) if self.action_mode_of else None


def _robomimic_task(name: str) -> Task:
    gym_id = GYM_IDS[name]
    build = partial(_robomimic_mode, name)
    return Task(
        name=name,
        gym_id=gym_id,
        obs_modes={obs: build(obs, "abs") for obs in ROBOMIMIC_MODES},
        default_obs="low_dim",
        default_dataset="scripted",
        datasets=("scripted", "scripted-mh", "scripted-delta", "scripted-mh-delta"),
        parallel_eval=True,
        action_modes=("abs", "delta"),
        build_mode=build,
        action_mode_of=partial(_robomimic_action_mode, name),
        verify_dataset=partial(_robomimic_verify, name),
    )


def _robomimic_mode(task: str, obs: str, action_mode: str) -> ObsMode:
    return ROBOMIMIC_MODES[obs](task, action_mode)


def _robomimic_verify(task: str, path: Any, keys: tuple[str, ...]) -> Any:
    from dpbench.envs.robomimic.agreement import check_dataset

    return check_dataset(task, path, keys)


def _robomimic_action_mode(task: str, attrs: dict[str, Any]) -> str:
    from dpbench.envs.robomimic.env_args import action_mode_from_env_args

    return action_mode_from_env_args(task, attrs.get("env_args"), attrs.get("path", "the dataset"))


TASKS: dict[str, Task] = {
    "pusht": Task(
        name="pusht",
        gym_id=PUSHT_ID,
        obs_modes={name: mode() for name, mode in PUSHT_MODES.items()},
        default_obs="keypoints",
        default_dataset="human",
        datasets=("human", "scripted"),
        metric="coverage",
        paper_max_train_episodes={"human": 90},  # config/task/pusht_*.yaml: max_train_episodes: 90
    ),
    **{name: _robomimic_task(name) for name in ("lift", "can", "square", "transport", "tool_hang")},
}


def checkpoint_task(meta: dict[str, Any], env: str | None = None) -> Task:
    """The task a checkpoint is evaluated on (``env``, else the one it was trained on), at the horizon of the
    demonstrations it learnt from (``variant_of`` its dataset identity). ``meta``:
    ``dpbench.checkpoint.read_checkpoint_meta``'s dict. Raises DpbenchError for an unknown env."""
    from dpbench.data.registry import variant_of

    name = env or meta.get("env")
    if name is None:
        raise DpbenchError("the checkpoint names no env it was trained on; pass --env")
    return get_task(name).for_variant(variant_of(meta.get("dataset") or {}))


def get_task(name: str) -> Task:
    """The task named ``name`` (pusht, lift, can, square, transport, tool_hang); raises DpbenchError, naming the valid
    ones, for any other."""
    if name not in TASKS:
        raise DpbenchError(f"unknown env '{name}'; valid envs: {', '.join(sorted(TASKS))}{did_you_mean([name], TASKS)}")
    return TASKS[name]
