"""Which rule fits a policy's min/max normalizers (``Policy.fit_statistics``).

- ``range`` (default): every low-dim observation and action dimension's [min, max] over the training
  episodes to [-1, 1]. This is the original code's rule on Push-T (``LinearNormalizer``, ``limits`` mode).
- ``original``: the original code's rule for the task. Push-T: ``range``. robomimic low-dim
  (``dataset/robomimic_replay_lowdim_dataset.py``, ``get_normalizer``, and ``common/normalize_util.py`` in
  real-stanford/diffusion_policy): observations share one scale, ``1 / max|x|`` over every dimension, offset
  0 (``normalizer_from_stat``); delta actions stay as they are (``get_identity_normalizer_from_stat``:
  robomimic's delta actions already lie in [-1, 1]); absolute actions map each arm's position to [-1, 1]
  and leave its rotation (6D) and gripper as they are (``robomimic_abs_action_only_normalizer_from_stat``,
  and its dual-arm twin for Transport). Its image datasets normalize otherwise; not implemented here.
"""

from __future__ import annotations

from dataclasses import dataclass

from dpbench.errors import DpbenchError

NORMALIZERS = ("range", "original")
ABS_ARM_DIMS = 10  # a robomimic absolute action per arm: position 3, rotation 6D 6, gripper 1


@dataclass(frozen=True)
class Normalization:
    """How ``Policy.fit_statistics`` fits the normalizers: ``obs_max_abs``: one scale ``1 / max|x|`` (offset 0)
    for every low-dim observation dimension, else each dimension's range; ``action_range_dims``: the action
    dimensions mapped by their range (None: all), the others left unscaled."""

    obs_max_abs: bool = False
    action_range_dims: tuple[int, ...] | None = None


RANGE = Normalization()


def check_normalizer(rule: str, task: str, image_obs: bool) -> None:
    """Refuse ``train.normalizer=original`` before data loads on Push-T (the same rule as ``range``: it would only
    split its cells from range's) and on robomimic image observations (the original's image normalizers are not
    implemented); ``config.check_train_config`` refuses an unknown rule. DpbenchError."""
    if rule == "original" and task == "pusht":
        raise DpbenchError(
            "train.normalizer=original is the same rule as range on Push-T (the original maps each dimension's "
            "[min, max] to [-1, 1] there); leave it out, so these cells share the range cells' ids"
        )
    if rule == "original" and image_obs:
        raise DpbenchError(
            "train.normalizer=original: the original's robomimic image-dataset normalizers are not implemented "
            "(low_dim only); use train.normalizer=range"
        )


def normalization_for(rule: str, task: str, action_mode: str | None, action_dim: int) -> Normalization:
    """The ``Normalization`` of ``rule`` (``NORMALIZERS``) for a task, the data's action mode (robomimic:
    abs | delta; Push-T: None) and the policy's action size (abs: 10 per arm)."""
    if rule == "range" or action_mode is None:
        return RANGE
    if action_mode == "delta":
        return Normalization(obs_max_abs=True, action_range_dims=())
    arms = range(action_dim // ABS_ARM_DIMS)
    return Normalization(
        obs_max_abs=True, action_range_dims=tuple(a * ABS_ARM_DIMS + d for a in arms for d in range(3))
    )
