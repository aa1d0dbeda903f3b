"""The policy contract's checks: what a policy returns is verified before anything reaches an env, and a
policy's failures are reported naming it (its ``module:Class`` when it is a plugin's).

Every check raises ``DpbenchError`` in one line that names the policy and what it broke; the evaluator, the
preflight and ``Policy.select_action`` share them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from dpbench.errors import DpbenchError

if TYPE_CHECKING:
    from dpbench.policy import Policy


def is_builtin(cls: type) -> bool:
    """Whether a policy class is dpbench's own (records name its code by dpbench's commit; an exception in it
    is a dpbench bug), not a plugin's."""
    return cls.__module__ == "dpbench" or cls.__module__.startswith("dpbench.")


def policy_label(policy: Any) -> str:
    """How messages name a policy: its ``name`` in quotes, and for one defined outside dpbench its
    ``module:Class`` too (two files may share a name)."""
    cls = type(policy)
    if is_builtin(cls):
        return f"'{policy.name}'"
    return f"'{policy.name}' ({cls.__module__}:{cls.__qualname__})"


# What Policy.__init__ sets: a plugin that reads one of them without calling it gets an AttributeError naming it
_BASE_ATTRIBUTES = ("spec", "config", "obs_normalizers", "action_normalizer", "obs_feature_dim", "image_encoder")


def plugin_hint(exc: BaseException) -> str:
    """A hint to append to the one-line report of an exception a plugin policy's code raised ("" for none): an
    AttributeError on what ``Policy.__init__`` sets, or torch's "before Module.__init__() call", most likely
    means the subclass's ``__init__`` did not call ``super().__init__(spec, config)`` first."""
    text = str(exc)
    if isinstance(exc, AttributeError) and (
        "Module.__init__()" in text or any(f"attribute '{a}'" in text for a in _BASE_ATTRIBUTES)
    ):
        return " (does its __init__ call super().__init__(spec, config) first?)"
    return ""


def check_tensor(policy: Policy, actions: Any, method: str) -> None:
    if not isinstance(actions, torch.Tensor):
        raise DpbenchError(
            f"policy {policy_label(policy)} broke the contract: {method} must return a torch.Tensor, "
            f"got {type(actions).__name__}"
        )


def check_actions(policy: Policy, actions: Any, batch: int) -> torch.Tensor:
    """Enforce the contract on executed actions (B, T_a, D_a) before anything reaches an env: a tensor
    of that shape, every value finite. Returns it detached; raises DpbenchError naming the policy,
    the expected shape, or the first env with a NaN/inf action."""
    check_tensor(policy, actions, "predict_action")
    expected = (batch, policy.n_action_steps, policy.spec.action_dim)
    if tuple(actions.shape) != expected:
        raise DpbenchError(
            f"policy {policy_label(policy)} broke the contract: predict_action returned shape {tuple(actions.shape)}, "
            f"expected (B, T_a, D_a) = {expected}"
        )
    _check_finite(policy, actions)
    return actions.detach()


def check_step_actions(policy: Policy, actions: Any, batch: int) -> torch.Tensor:
    """Enforce the contract on what ``select_action`` returns, (B, D_a) finite: the base class's queue gives
    that, an overriding ``select_action`` must too. Returns it detached; raises DpbenchError as
    :func:`check_actions` does."""
    check_tensor(policy, actions, "select_action")
    expected = (batch, policy.spec.action_dim)
    if tuple(actions.shape) != expected:
        raise DpbenchError(
            f"policy {policy_label(policy)} broke the contract: select_action returned shape {tuple(actions.shape)}, "
            f"expected (B, D_a) = {expected}, one action per env per step (to plan chunks, implement predict_chunk "
            "and leave select_action to the base class, which queues them)"
        )
    _check_finite(policy, actions)
    return actions.detach()


def _check_finite(policy: Policy, actions: torch.Tensor) -> None:
    finite = torch.isfinite(actions).flatten(1).all(1)
    if not bool(finite.all()):
        bad = int(torch.nonzero(~finite)[0, 0])
        raise DpbenchError(
            f"policy {policy_label(policy)} returned a NaN or inf action (env {bad}); nothing was sent to the env"
        )
