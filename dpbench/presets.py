"""The presets every policy shares: the evaluation schedule (``budget``), the training length per task
(the robomimic floor and the task and variant scales, ``length_factors``), the smoke preset's training
settings, and the image-observation settings applied over any policy's preset.

A policy's own presets live in its class (``Policy.presets``); this module holds only what is
common to all of them, so a preset has one home: the policy's class for its recipe, here for the
shared schedule and the image encoder.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

EVALS_PER_BUDGET = 20  # evaluations per training budget: one every steps / 20


def budget(steps: int, first_eval: float = 0.5, **train: Any) -> dict[str, Any]:
    """A preset's training settings with the one evaluation schedule every policy shares: an
    evaluation (and a resumable checkpoint) every ``steps / 20`` steps from ``first_eval * steps`` on,
    the last at ``steps``. ``quick`` presets evaluate over the second half (11 evaluations: the
    paper's max and avg-last-10 over the same draws for every policy); ``paper`` presets over the
    whole run (``first_eval=0``, 20 evaluations). "max over evaluations" rises with the number of
    draws, so a policy evaluated more often would get an edge; this keeps the count equal.

    Raises ValueError when ``steps`` is not a multiple of 40: 20 evaluations, each interval an even
    number of steps so that mh's 1.5x scale (``length_factors``) stays whole."""
    if steps % (2 * EVALS_PER_BUDGET):
        raise ValueError(f"budget: steps={steps} must be a multiple of {2 * EVALS_PER_BUDGET}")
    every = steps // EVALS_PER_BUDGET
    return dict(
        steps=steps,
        eval_every=every,
        eval_after=round(first_eval * EVALS_PER_BUDGET) * every,
        checkpoint_every=every,
        **train,
    )


# Training steps per task and demo variant, relative to the presets' budgets (every preset but
# smoke). The original fixes *epochs* for every robomimic task and variant (num_epochs: 5000 in its
# train_*_lowdim_workspace.yaml; task configs leave it), so its steps grow with the data. dpbench's
# budgets are steps, sized on Lift/Can/Square ph, whose demos average 59/155/160 steps (scripted ph,
# 200 demos). Transport's and ToolHang's average 488 and 548: Square's steps would be ~3 epochs there
# against ~10 (the 5,000 x 64 windows DP's quick preset had then), so they take 3x. mh sets hold 300 demos against ph's
# 200 (robomimic's, and scripted-mh): 1.5x. The evaluation schedule scales alike (quick: still 11
# evaluations). Figures: docs/measurements.md, "Training length".
TASK_STEP_SCALE: dict[str, int] = {"transport": 3, "tool_hang": 3}
VARIANT_STEP_SCALE: dict[str, Fraction] = {"ph": Fraction(1), "mh": Fraction(3, 2)}
SCHEDULE_KEYS = frozenset({"steps", "eval_every", "eval_after", "checkpoint_every"})  # what a step scale multiplies


# The robomimic floor, in training windows (steps x batch), before the task and variant scale: on every
# robomimic task a quick preset trains at least 15,000 steps of 64 windows (state observations; image presets
# keep IMAGE_TRAIN_PRESETS; paper presets train far more; other presets are the user's). The original gives
# DP-C, DP-T and LSTM-GMM the same epochs on every robomimic task (num_epochs: 5000 at batch 256 in
# train_diffusion_unet_lowdim_workspace.yaml, train_diffusion_transformer_lowdim_workspace.yaml and
# train_robomimic_lowdim_workspace.yaml), while the quick presets' steps are each policy's knee on Push-T
# (DP-C 5,000, DP-T 11,000, IBC 7,000, LSTM-GMM 15,000). At 5,000
# steps DP-C's Square ph curve still rose at its last evaluation (3 seeds: max 0.913, avg-last-10 0.731); at
# 15,000 seeds 0 and 1 reached 0.98 / 0.956 and 1.00 / 0.966 against LSTM-GMM's 0.98 / 0.967 (3 seeds;
# docs/measurements.md, "Training length"). 15,000 is LSTM-GMM's Push-T knee, not a knee measured on robomimic.
# A policy whose own budget is longer keeps it (BET: 30,000), so no baseline trains less than before.
ROBOMIMIC_FLOOR_STEPS = 15_000  # at the quick presets' batch of 64
MIN_TRAIN_WINDOWS: dict[str, int] = dict.fromkeys(
    ("lift", "can", "square", "transport", "tool_hang"), ROBOMIMIC_FLOOR_STEPS * 64
)


def floor_steps(task: str | None, batch_size: int) -> int:
    """The fewest steps of ``batch_size`` windows a quick preset trains on ``task`` (``MIN_TRAIN_WINDOWS``),
    rounded up to a multiple of 40 so that ``budget`` takes it; 0 for a task without a floor."""
    windows = MIN_TRAIN_WINDOWS.get(task or "", 0)
    step = 2 * EVALS_PER_BUDGET
    return -(-windows // (batch_size * step)) * step if windows else 0


def length_factors(
    task: str | None, variant: str, steps: int, batch_size: int, floor: bool = True
) -> dict[str, Fraction]:
    """Why a cell trains a multiple of its preset's ``steps``: reason -> factor, only factors other than 1, in the
    order they apply: the robomimic floor (with ``floor``: quick presets on state observations, where it
    replaces the schedule by ``budget(floor_steps)``), then the task's and the variant's scale (every preset but
    smoke, the schedule scaled alike). ``config.build_configs`` applies them; ``dpbench config`` prints them."""
    low = floor_steps(task, batch_size) if floor else 0
    factors = {
        f"the robomimic floor, {MIN_TRAIN_WINDOWS.get(task or '', 0) // 64:,} steps of 64 windows": Fraction(
            max(low, steps), steps
        ),
        f"{task}'s ~3x longer demos": Fraction(TASK_STEP_SCALE.get(task or "", 1)),
        f"{variant}'s 300 demos to ph's 200": VARIANT_STEP_SCALE[variant],
    }
    return {reason: f for reason, f in factors.items() if f != 1}


def scale_schedule(train: dict[str, Any], factor: Fraction) -> dict[str, Any]:
    """``train`` settings with the training length and its evaluation/checkpoint schedule ``factor``
    times longer (warm-up, learning rate and batch size unchanged). Raises ValueError where a scaled
    value is not a whole number of steps."""
    out = dict(train)
    for key in SCHEDULE_KEYS & out.keys():
        scaled = Fraction(out[key]) * factor
        if scaled.denominator != 1:
            raise ValueError(f"scale_schedule: {key}={out[key]} x {factor} is not a whole number of steps")
        out[key] = int(scaled)
    return out


# The smoke preset's training settings, shared by every policy: a few steps and a 2-episode
# evaluation, so a whole run takes seconds (tests).
SMOKE_TRAIN: dict[str, Any] = dict(
    steps=6, batch_size=8, warmup_steps=1, eval_every=3, checkpoint_every=3, eval_episodes=2, heldout_episodes=2
)

# The image encoder per preset, shared by all policies (``VisionConfig`` fields): ``paper`` is
# ResNet-18 at the paper's crop; ``quick`` halves the resolution and narrows the network for speed
# (benchmarks/bench_vision.py: 821 training images/s on 2 cores), its score/time trade-off not yet
# tuned; ``smoke`` is tiny.
VISION_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "quick": dict(widths=(16, 32, 64, 128), blocks=(1, 1, 1, 1), stem_pool=False, downsample=2),
    "smoke": dict(widths=(8, 16), blocks=(1, 1), stem_pool=False, downsample=4, keypoints=8, feature_dim=16),
}

# Training settings that change with image observations, applied over every policy's own preset.
# ``quick`` is a fixed CPU budget chosen from image DP's score against training steps on Push-T
# (docs/measurements.md): max 0.34 at 3000 steps, 0.57 at 9000 (~37 min per seed on one core),
# 0.63 at 18000. Evaluations follow the shared schedule: every 450 steps from step 4500.
IMAGE_TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "quick": budget(9000),
}
