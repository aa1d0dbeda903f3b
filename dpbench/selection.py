"""The checkpoint the max selected, after a cell's training: rewritten as a full checkpoint, so ``dpbench eval``
re-scores it like the final one, and scored on held-out test seeds the selection never saw (the record's
``heldout``; docs/DESIGN.md, "Three numbers per run, and a selection-free one")."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from dpbench.checkpoint import save_policy
from dpbench.evaluate import evaluate
from dpbench.metrics import best_evaluation
from dpbench.train import BEST_FILE, load_best

if TYPE_CHECKING:  # the runner calls these with its cell
    from dpbench.runner import PreparedCell


def export_best(
    cell: PreparedCell, eval_policy: Any, history: list[dict[str, Any]], meta: dict[str, Any]
) -> tuple[Any, dict[str, Any]] | None:
    """The policy with the weights the max selected (``best.safetensors``) and that history entry; the file is
    rewritten as a full checkpoint (``meta`` plus its ``step`` and ``score``; ``checkpoint.save_policy``), so
    ``dpbench eval`` re-scores the selected weights like the final ones. None when the run has no evaluation
    or kept no weights of its best one (a run resumed from a checkpoint older than that evaluation)."""
    chosen = best_evaluation(history)
    if chosen is None:
        return None
    best = load_best(cell.workdir / BEST_FILE)
    if best is None or best[1] != chosen["step"]:
        if cell.tcfg.heldout_episodes > 0:
            print(
                f"[dpbench] {cell.cell_id}: the weights of the best evaluation (step {chosen['step']}) were not "
                "kept; the record gets no held-out score (delete its work dir and rerun for one)"
            )
        return None
    policy = copy.deepcopy(eval_policy)
    policy.load_state_dict(best[0])
    save_policy(policy, cell.workdir / BEST_FILE, {**meta, "step": chosen["step"], "score": chosen["score"]})
    return policy, chosen


def heldout_evaluation(cell: PreparedCell, policy: Any, chosen: dict[str, Any]) -> dict[str, Any] | None:
    """Score the selected checkpoint (``export_best``) on ``train.heldout_episodes`` fresh test seeds from
    ``Task.heldout_seed_start``: the selection never saw them, so this number carries no selection bias.
    None when disabled (0 episodes)."""
    task, n = cell.task, cell.tcfg.heldout_episodes
    if n <= 0:
        return None
    spec = cell.spec
    res = evaluate(
        policy,
        task,
        cell.mode,
        n_episodes=n,
        seed_start=task.heldout_seed_start,
        sampling_seed=spec.seed,
        progress=spec.progress,
        desc=f"{spec.policy}/{task.name} seed {spec.seed} held-out",
    )
    return {
        "step": chosen["step"],
        "selected_score": chosen["score"],
        "seed_start": task.heldout_seed_start,
        **res.to_dict(),
    }
