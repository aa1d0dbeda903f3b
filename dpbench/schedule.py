"""The one evaluation schedule, shared by every policy's presets (and the image-observation presets).

Kept apart from ``dpbench.policy`` so that ``dpbench.vision`` can use it without an import cycle.
"""

from __future__ import annotations

from typing import Any

EVALS_PER_BUDGET = 20  # evaluations per training budget: one every steps / 20


def budget(steps: int, first_eval: float = 0.5, **train: Any) -> dict[str, Any]:
    """A preset's training settings with the one evaluation schedule every policy shares: an
    evaluation (and a resumable checkpoint) every ``steps / 20`` steps from ``first_eval * steps`` on,
    the last at ``steps``. ``quick`` presets evaluate over the second half (11 evaluations: the
    paper's max and avg-last-10 over the same draws for every policy); ``paper`` presets over the
    whole run (``first_eval=0``, 20 evaluations). "max over evaluations" rises with the number of
    draws, so a policy evaluated more often would get an edge; this keeps the count equal."""
    if steps % EVALS_PER_BUDGET:
        raise ValueError(f"budget: steps={steps} must be a multiple of {EVALS_PER_BUDGET}")
    every = steps // EVALS_PER_BUDGET
    return dict(
        steps=steps,
        eval_every=every,
        eval_after=int(round(first_eval * EVALS_PER_BUDGET)) * every,
        checkpoint_every=every,
        **train,
    )
