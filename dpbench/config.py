"""Typed configs: the fields every policy config has, the shared training loop's settings, and how
presets, task recipes and ``--set`` overrides become one config.

Every config is a dataclass. A field's documentation is the comment beside it (and any comment
lines right above it); ``dpbench.config_docs`` reads them and ``dpbench config POLICY`` prints them
with their values, so the source is the one place a field is explained.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dpbench.data.normalization import NORMALIZERS
from dpbench.errors import DpbenchError, did_you_mean
from dpbench.presets import (
    EVALS_PER_BUDGET,
    IMAGE_TRAIN_PRESETS,
    MIN_TRAIN_WINDOWS,
    SCHEDULE_KEYS,
    VISION_PRESETS,
    budget,
    floor_steps,
    length_factors,
    scale_schedule,
)
from dpbench.vision import VisionConfig

if TYPE_CHECKING:
    from dpbench.policy import Policy


@dataclasses.dataclass
class PolicyConfig:
    """Fields every policy config has: the observation/action windows (paper Fig. 3)."""

    n_obs_steps: int = 2  # T_o: observation steps the policy is conditioned on (paper: 2)
    horizon: int = 16  # T_p: steps in the predicted action chunk, also the training window (paper: 16)
    n_action_steps: int = 8  # T_a: actions executed before replanning (paper: 8)
    # The image encoder; set for image observations only (dpbench.presets.VISION_PRESETS).
    vision: VisionConfig | None = None


@dataclasses.dataclass
class TrainConfig:
    """The shared training loop's settings (one optimizer step = one batch)."""

    steps: int = 20000  # optimizer steps in the run
    batch_size: int = 256  # training windows per step (the original: 256)
    lr: float = 1e-4  # peak AdamW learning rate (the original's DP: 1e-4)
    weight_decay: float = 1e-6  # AdamW weight decay (the original's DP UNet: 1e-6)
    betas: tuple[float, float] = (0.95, 0.999)  # AdamW betas (the original's DP UNet: 0.95, 0.999)
    warmup_steps: int = 500  # linear learning-rate warm-up, in steps (the original: 500)
    lr_schedule: str = "cosine"  # "cosine" (decay to 0 over `steps`, the original's) | "constant"
    ema: bool = True  # evaluate an exponential moving average of the weights (the original's EMAModel)
    ema_power: float = 0.75  # EMA warm-up: decay = 1 - (1 + step) ** -power (the original: 0.75)
    ema_max_decay: float = 0.9999  # the EMA decay's ceiling (the original: 0.9999)
    eval_every: int = 2000  # steps between evaluations (presets: steps / 20, dpbench.presets.budget)
    eval_after: int = 0  # first step at which periodic evaluation starts (the last step is always evaluated)
    eval_episodes: int = 50  # test episodes per evaluation (the paper: 50, seeds 100000 on)
    # After training, the checkpoint the max selects is scored on this many fresh test seeds
    # (Task.heldout_seed_start on), which no selection saw: the record's "heldout" (0: skip).
    heldout_episodes: int = 200
    checkpoint_every: int = 2000  # steps between resumable checkpoints
    # The data protocol (the original's dataset configs): validation split and training subset are
    # drawn with ``split_seed``, the same for every training seed (dpbench.data.sampler.split_episodes).

    val_ratio: float = 0.02  # fraction of episodes held out (never trained on); the original: 0.02
    split_seed: int = 42  # the original's dataset ``seed: 42``
    # "paper": the task's paper cap on training episodes (human Push-T: 90, Task.paper_max_train_episodes);
    # "all": every non-validation episode (`dpbench run --all-episodes`).
    train_episodes: str = "paper"
    max_train_episodes: int | None = None  # an explicit cap; overrides train_episodes when set
    grad_clip: float | None = None  # clip the gradient's global norm to this (None: no clipping)
    # How the observation and action normalizers are fitted (dpbench.data.normalization): "range", each
    # dimension's [min, max] to [-1, 1] (the original's rule on Push-T); "original", the original code's rule
    # for the task (robomimic low_dim: one 1/max|x| scale for all observations, delta actions unscaled,
    # absolute actions' positions only). Left out of the config hash at "range", so older cells keep theirs.
    normalizer: str = "range"


# ------------------------------------------------------------------------------- --set parsing
NONE_WORDS = ("none", "null")
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def type_name(tp: Any) -> str:
    """A declared field type as ``dpbench config`` and --set errors print it (``int``, ``tuple[int, ...]``)."""
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("dpbench.vision.", "")


def _nested_dataclass(tp: Any) -> type | None:
    """The dataclass a field holds (``VisionConfig`` for ``VisionConfig | None``), else None."""
    for t in (tp, *typing.get_args(tp)):
        if isinstance(t, type) and dataclasses.is_dataclass(t):
            return t
    return None


def parse_value(text: str, tp: Any) -> Any:
    """Parse a ``--set`` string by the config field's declared type: int, float, bool, str, tuples
    (``tuple[int, ...]`` and fixed-length ones, written ``a,b,c``, optionally in ``()`` or ``[]``) and
    optionals (``none``/``null``).
    Raises ValueError naming the expected type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() in NONE_WORDS:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return parse_value(text, option)
            except ValueError:
                continue
        raise ValueError(f"expected {type_name(tp)}, got {text!r}")
    if tp is bool:
        word = text.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError(f"expected a boolean (true/false), got {text!r}")
    if tp in (int, float, str):
        try:
            return tp(text.strip()) if tp is not str else text
        except ValueError:
            raise ValueError(f"expected {tp.__name__}, got {text!r}") from None
    if origin is tuple:
        # "32,64", "(32, 64)" and "[32, 64]" all mean the same tuple
        items = [v.strip() for v in text.strip().strip("()[]").split(",") if v.strip()]
        kinds = [args[0]] * len(items) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(kinds) != len(items):
            raise ValueError(f"expected {len(kinds)} comma-separated values ({type_name(tp)}), got {text!r}")
        try:
            return tuple(parse_value(v, k) for v, k in zip(items, kinds))
        except ValueError as exc:
            raise ValueError(f"{exc}; write {type_name(tp)} as comma-separated values, e.g. 32,64") from None
    raise ValueError(f"cannot set a field of type {type_name(tp)} from the command line")


def apply_overrides(cfg: Any, overrides: dict[str, Any], where: str) -> Any:
    """Set config fields from ``{"field": value}`` (``"nested.field"`` reaches into a nested dataclass such
    as ``vision``). String values (``--set``) are parsed by the field's declared type; JSON lists become
    tuples and JSON objects fill a nested dataclass. Raises DpbenchError naming the field and its type."""
    hints = typing.get_type_hints(type(cfg))
    fields = {f.name for f in dataclasses.fields(cfg)}
    for key, value in overrides.items():
        head, dot, rest = key.partition(".")
        if head not in fields:
            raise DpbenchError(
                f"{where} has no field '{key}'; fields: {', '.join(sorted(fields))}{did_you_mean([head], fields)}"
            )
        nested = _nested_dataclass(hints[head])
        if nested is not None:
            if dot:
                if getattr(cfg, head) is None:
                    hint = " (e.g. --obs image)" if head == "vision" else ""
                    raise DpbenchError(
                        f"'{key}': {head} settings apply only to image observations{hint}"
                        if head == "vision"
                        else f"'{key}': {where}.{head} is not set for this run"
                    )
                apply_overrides(getattr(cfg, head), {rest: value}, f"{where}.{head}")
            else:
                empty = value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS)
                setattr(cfg, head, None if empty else apply_overrides(nested(), dict(value), f"{where}.{head}"))
            continue
        if dot:
            raise DpbenchError(f"{where}.{head} has no fields of its own ('{key}')")
        if isinstance(value, str):
            try:
                value = parse_value(value, hints[head])
            except ValueError as exc:
                raise DpbenchError(f"bad value for {where}.{key} ({type_name(hints[head])}): {exc}") from None
        elif isinstance(value, list):
            value = tuple(value)
        setattr(cfg, head, value)
    return cfg


def build_configs(
    policy_cls: type[Policy],
    preset: str,
    overrides: dict[str, str] | None = None,
    image_obs: bool = False,
    task: str | None = None,
    variant: str = "ph",
) -> tuple[PolicyConfig, TrainConfig]:
    """Preset, then the policy's ``task_overrides`` for ``task`` (every preset but smoke), the robomimic floor
    (state observations: at least 15,000 steps of 64 windows on a robomimic task) and
    the step scale of ``task`` and its demos' ``variant`` (ph | mh; ``presets.length_factors``: Transport and
    ToolHang 3x, mh 1.5x, as the original fixes epochs, not steps), each scaling the evaluation schedule alike; then
    ``--set policy.x=..`` / ``--set train.y=..`` overrides. With ``image_obs`` the policy config also
    gets the preset's image encoder (``--set policy.vision.x=..``). Raises DpbenchError for an unknown
    preset or field, or a value of the wrong type."""
    if preset not in policy_cls.presets:
        raise DpbenchError(
            f"policy '{policy_cls.name}' has no preset '{preset}'; choose one of {', '.join(policy_cls.presets)}"
            f"{did_you_mean([preset], policy_cls.presets)}"
        )
    # a typo in a plugin's own presets (or task_overrides) names where it is, not only the field
    pcfg = apply_overrides(
        policy_cls.Config(),
        _preset_settings(policy_cls, preset, task)[0],
        f"{policy_cls.name} config (preset {preset!r})",
    )
    if image_obs:
        pcfg.vision = apply_overrides(VisionConfig(), dict(VISION_PRESETS.get(preset, {})), "vision config")
    tcfg = preset_train_config(policy_cls, preset, image_obs, task)
    if preset != "smoke":  # the original's epochs, not its steps: the robomimic floor, then the task's scale
        tcfg = _training_length(tcfg, preset, task, variant, image_obs, f"{policy_cls.name} preset {preset!r}")
    pol_cli, train_cli = {}, {}
    for key, value in (overrides or {}).items():
        scope, _, name = key.partition(".")
        if scope == "policy" and name:
            pol_cli[name] = value
        elif scope == "train" and name:
            train_cli[name] = value
        else:
            raise DpbenchError(f"override '{key}' must look like policy.FIELD=VALUE or train.FIELD=VALUE")
    return apply_overrides(pcfg, pol_cli, f"{policy_cls.name} config"), apply_overrides(tcfg, train_cli, "train config")


def _preset_settings(policy_cls: type[Policy], preset: str, task: str | None) -> tuple[dict, dict]:
    """(policy, train) settings of ``preset``, with the policy's ``task_overrides`` for ``task`` over them (every
    preset but smoke); fresh dicts."""
    pol_over, train_over = policy_cls.presets[preset]
    task_pol, task_train = policy_cls.task_overrides.get(task or "", ({}, {})) if preset != "smoke" else ({}, {})
    return {**pol_over, **task_pol}, {**train_over, **task_train}


def preset_train_config(
    policy_cls: type[Policy], preset: str, image_obs: bool = False, task: str | None = None
) -> TrainConfig:
    """The train config a preset gives before the cell's length (``_training_length``) and ``--set``: the preset's,
    then the policy's ``task_overrides`` for ``task`` (every preset but smoke), then with ``image_obs`` the shared
    image schedule (``presets.IMAGE_TRAIN_PRESETS``). The caller has checked that the preset exists."""
    train_over = _preset_settings(policy_cls, preset, task)[1]
    if image_obs:
        train_over |= IMAGE_TRAIN_PRESETS.get(preset, {})
    return apply_overrides(TrainConfig(), train_over, f"train config ({policy_cls.name} preset {preset!r})")


def length_reasons(
    policy_cls: type[Policy], preset: str, task: str | None, variant: str = "ph", image_obs: bool = False
) -> tuple[int, dict[str, Fraction]]:
    """(the preset's own steps, reason -> factor) for a cell that trains longer than its preset: what
    ``build_configs`` multiplied (``presets.length_factors``); ``dpbench config`` prints it. ({} for smoke.)"""
    base = preset_train_config(policy_cls, preset, image_obs, task)
    if preset == "smoke":
        return base.steps, {}
    return base.steps, length_factors(task, variant, base.steps, base.batch_size, floor_applies(preset, image_obs))


def describe_length(
    cls: type[Policy], preset: str, task: str, variant: str, image: bool, overrides: dict[str, str], tcfg: TrainConfig
) -> str:
    """Why ``dpbench config``'s cell trains ``tcfg.steps``: the preset's steps times each factor that
    ``presets.length_factors`` applies, or why none does (so a user can tell an applied floor from a forgotten one)."""
    if "train.steps" in overrides:
        return f"{tcfg.steps} steps, as --set train.steps asks (no floor or task scale applies to a set length)"
    base, factors = length_reasons(cls, preset, task, variant, image)
    tail = (
        f"; --set train.batch_size keeps the steps: {tcfg.steps * tcfg.batch_size:,} windows of training"
        if "train.batch_size" in overrides
        else ""
    )
    if factors:
        why = " x ".join(f"{f} ({reason})" for reason, f in factors.items())
        return f"the {preset} preset's {base} steps x {why} = {tcfg.steps}, its evaluation schedule scaled alike{tail}"
    if preset == "smoke":
        return f"the smoke preset's {base} steps (smoke is never scaled){tail}"
    if task in MIN_TRAIN_WINDOWS and floor_applies(preset, image):
        floor = MIN_TRAIN_WINDOWS[task] // 64
        why = f"at or above the robomimic floor ({floor:,} steps of 64 windows), and no task or variant scale"
    elif task in MIN_TRAIN_WINDOWS:
        why = "the robomimic floor lifts quick presets on state observations only, and no task or variant scale"
    else:
        why = f"no robomimic floor ({task} is not a robomimic task), and no task or variant scale"
    return f"the {preset} preset's {base} steps, unscaled: {why} (dpbench.presets){tail}"


def floor_applies(preset: str, image_obs: bool) -> bool:
    """Whether the robomimic floor (``presets.MIN_TRAIN_WINDOWS``) lifts this preset: quick, state observations."""
    return preset == "quick" and not image_obs


def _training_length(
    tcfg: TrainConfig, preset: str, task: str | None, variant: str, image_obs: bool, where: str
) -> TrainConfig:
    """``tcfg`` at its cell's length (``presets.length_factors``): under the robomimic floor, the floor's
    ``budget`` schedule at the preset's first-evaluation fraction; then the task's and variant's scale, schedule
    (its defaults too, so the evaluation count stays) scaled alike. Raises DpbenchError where a scaled value is
    not a whole number of steps."""
    low = floor_steps(task, tcfg.batch_size) if floor_applies(preset, image_obs) else 0
    if tcfg.steps < low:
        first = round(EVALS_PER_BUDGET * tcfg.eval_after / tcfg.steps) / EVALS_PER_BUDGET
        tcfg = dataclasses.replace(
            tcfg, **{k: v for k, v in budget(low, first_eval=first).items() if k in SCHEDULE_KEYS}
        )
    factor = math.prod(
        length_factors(task, variant, tcfg.steps, tcfg.batch_size, floor=False).values(), start=Fraction(1)
    )
    if factor == 1:
        return tcfg
    try:
        return dataclasses.replace(tcfg, **scale_schedule({k: getattr(tcfg, k) for k in SCHEDULE_KEYS}, factor))
    except ValueError as exc:
        raise DpbenchError(f"{where} on {task} ({variant}): {exc}") from None


_AT_LEAST_ONE = ("steps", "batch_size", "eval_every", "checkpoint_every", "eval_episodes")
_AT_LEAST_ZERO = ("warmup_steps", "eval_after", "heldout_episodes")


def check_train_config(tcfg: TrainConfig) -> None:
    """Refuse a train config no run can use, before any data is read: ``dpbench run``, ``dpbench config`` and
    the sweep's cells all call it. Raises DpbenchError for an unknown ``train_episodes`` or ``lr_schedule``, a
    count or rate out of its range (zero steps, a zero evaluation interval, a nan learning rate), or a run that
    ends before its first periodic evaluation (its max and avg-last-10 would both be the last step's score)."""
    if tcfg.train_episodes not in ("paper", "all"):
        raise DpbenchError(f"train.train_episodes must be 'paper' or 'all', got {tcfg.train_episodes!r}")
    if tcfg.normalizer not in NORMALIZERS:
        raise DpbenchError(f"train.normalizer must be one of {', '.join(NORMALIZERS)}, got {tcfg.normalizer!r}")
    if tcfg.lr_schedule not in ("cosine", "constant"):
        raise DpbenchError(f"train.lr_schedule must be 'cosine' or 'constant', got {tcfg.lr_schedule!r}")
    bad = [f"train.{k}={getattr(tcfg, k)} (must be >= 1)" for k in _AT_LEAST_ONE if getattr(tcfg, k) < 1]
    bad += [f"train.{k}={getattr(tcfg, k)} (must be >= 0)" for k in _AT_LEAST_ZERO if getattr(tcfg, k) < 0]
    if not 0 < tcfg.lr < math.inf:  # a chained `not` also refuses nan
        bad.append(f"train.lr={tcfg.lr} (must be > 0 and finite)")
    if not 0 <= tcfg.weight_decay < math.inf:
        bad.append(f"train.weight_decay={tcfg.weight_decay} (must be >= 0 and finite)")
    if len(tcfg.betas) != 2 or not all(0 <= b < 1 for b in tcfg.betas):
        bad.append(f"train.betas={','.join(map(str, tcfg.betas))} (AdamW's two decay rates, each 0 <= beta < 1)")
    if not 0 <= tcfg.ema_max_decay <= 1:
        bad.append(f"train.ema_max_decay={tcfg.ema_max_decay} (a decay rate: 0 <= ema_max_decay <= 1)")
    if not 0 <= tcfg.ema_power < math.inf:
        bad.append(f"train.ema_power={tcfg.ema_power} (must be >= 0 and finite: decay = 1 - (1 + step) ** -power)")
    if not 0 <= tcfg.val_ratio < 1:
        bad.append(f"train.val_ratio={tcfg.val_ratio} (a fraction of the episodes: 0 <= val_ratio < 1)")
    if tcfg.max_train_episodes is not None and tcfg.max_train_episodes < 1:
        bad.append(f"train.max_train_episodes={tcfg.max_train_episodes} (must be >= 1, or None for no cap)")
    if tcfg.grad_clip is not None and not tcfg.grad_clip > 0:
        bad.append(f"train.grad_clip={tcfg.grad_clip} (must be > 0, or None for no clipping)")
    if bad:
        raise DpbenchError(f"no run can use {'; '.join(bad)}")
    if tcfg.steps <= tcfg.eval_after:
        raise DpbenchError(
            f"train.steps={tcfg.steps} ends before the first periodic evaluation (train.eval_after={tcfg.eval_after}), "
            "so max and avg-last-10 would both be the last step's score. Set the schedule too, e.g. the presets' rule "
            f"(an evaluation every steps/20 from steps/2): train.eval_after={tcfg.steps // 2} and "
            f"train.eval_every={max(tcfg.steps // 20, 1)} (--set KEY=VALUE, or under a sweep file's set:)"
        )


def config_to_dict(cfg: Any, full: bool = False) -> dict[str, Any]:
    """Plain JSON data; an unset image encoder and the default normalizer are left out (unless ``full``), so
    configs hash as before those fields."""
    out = json.loads(json.dumps(dataclasses.asdict(cfg)))
    if full:
        return out
    if out.get("vision", 0) is None:
        del out["vision"]
    if out.get("normalizer") == "range":  # the default since before the field: hashes stay as they were
        del out["normalizer"]
    return out
