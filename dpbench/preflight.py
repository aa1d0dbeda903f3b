"""Checks before a cell trains: the dataset's actions and observations against what the env and the
policy expect, and one planning call, so a mismatch fails in seconds with one clear message rather
than as a shape error deep in training or at the first evaluation (minutes to hours later)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from dpbench.contract import check_step_actions, is_builtin, plugin_hint, policy_label
from dpbench.errors import DpbenchError, first_line, raised_at
from dpbench.spec import PolicySpec


def check_actions_fit(where: str, env: str, action_mode: str | None, native_dim: int, actions: np.ndarray) -> None:
    """The dataset's raw actions ``(N, D)`` against the env's native action size ``native_dim`` (before any
    encoding). ``where`` prefixes the message (the dataset's path). Raises DpbenchError on a mismatch."""
    if actions.ndim != 2 or actions.shape[1] != native_dim:
        raise DpbenchError(
            f"{where}actions have shape {tuple(actions.shape[1:])}, but env '{env}' "
            f"({action_mode + ' ' if action_mode else ''}actions) expects ({native_dim},)"
        )


def check_dataset_fits(
    where: str, env: str, arrays: dict[str, np.ndarray], spec: PolicySpec, sources: dict[str, np.ndarray] | None = None
) -> None:
    """The policy-side arrays (``action`` ``(N, D_a)`` and each observation key ``(N, *shape)``) against the
    policy spec; images must be uint8 channels-last ``(N, H, W, 3)``. ``sources``: the dataset's own arrays an
    observation is built from, whose shapes a mismatch names (the user never wrote the policy-side key). Raises
    DpbenchError naming the key."""
    if arrays["action"].shape[1:] != (spec.action_dim,):
        raise DpbenchError(
            f"{where}actions have shape {arrays['action'].shape[1:]}, but env '{env}' expects ({spec.action_dim},)"
        )
    for key, shape in spec.obs_shapes.items():
        got = arrays[key].shape[1:]
        if key in spec.image_keys:
            if arrays[key].dtype != np.uint8:
                raise DpbenchError(
                    f"{where}image '{key}' is {arrays[key].dtype}; dpbench stores images as uint8 0-255 (H, W, 3)"
                )
            if len(got) == 3 and got[0] == 3 and tuple(got[1:]) == tuple(shape[:2]):
                raise DpbenchError(
                    f"{where}image '{key}' is channels-first {tuple(got)}; env '{env}' produces "
                    f"channels-last {tuple(shape)} (H, W, 3). Transpose the dataset's images to (N, H, W, 3)"
                )
        if tuple(got) != tuple(shape):
            built = ", ".join(f"'{k}' {tuple(a.shape[1:])}" for k, a in (sources or {}).items() if k != "action")
            raise DpbenchError(
                f"{where}observation '{key}' has shape {tuple(got)}, env '{env}' expects {tuple(shape)}"
                + (f" (this obs mode reads the dataset's {built})" if built and key not in (sources or {}) else "")
            )


def preflight(policy: Any, arrays: dict[str, np.ndarray]) -> None:
    """One planning call on the dataset's first observation before training, so a policy that breaks
    the contract (a wrong chunk shape, NaN actions) fails in seconds rather than at its first
    evaluation. Leaves torch's RNG, the policy's mode and its rollout state as they were. Raises
    DpbenchError for a broken contract, or for any exception a plugin policy's code raised (naming where)."""
    obs = {k: torch.from_numpy(np.ascontiguousarray(arrays[k][:1])).to(policy.device) for k in policy.spec.obs_shapes}
    was_training = policy.training
    devices = [policy.device] if policy.device.type == "cuda" else []
    policy.eval()
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            policy.reset()
            policy.seed(0)
            check_step_actions(policy, policy.select_action(obs), 1)
    except DpbenchError:
        raise
    except Exception as exc:  # a plugin policy's own code raised: say where, in one line, before any training
        if is_builtin(type(policy)):  # dpbench's own policy: a bug in dpbench, keep the traceback
            raise
        raise DpbenchError(
            f"policy {policy_label(policy)} raised {type(exc).__name__} in its first planning call, before "
            f"training ({raised_at(exc, 2)}): {first_line(exc)}{plugin_hint(exc)}"
        ) from None
    finally:
        policy.reset()
        policy.train(was_training)


def check_buildable(policy_cls: type, spec: PolicySpec, config: Any, overrides: dict[str, str]) -> None:
    """Build the policy once, before any data is read, when ``--set policy.*`` overrides changed its config:
    a value its layers cannot take (``down_dims=1,2`` under GroupNorm's groups, a zero vision width) is then one
    message naming the overrides, not a traceback after the dataset loaded. Raises DpbenchError."""
    given = {k: v for k, v in overrides.items() if k.startswith("policy.")}
    if not given:  # the preset's own config: built in the tests of every registered policy
        return
    try:
        # the seed the cell trains with stays untouched; a probe's warnings (torch's about zero-size layers) would
        # print above the one-line refusal that names their cause
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            policy_cls(spec, config)
    except DpbenchError:
        raise
    except Exception as exc:
        sets = ", ".join(f"{k}={v}" for k, v in given.items())  # a --set or a sweep file's set: gave them
        raise DpbenchError(
            f"policy {policy_cls.name} cannot be built with {sets}: {type(exc).__name__} ({raised_at(exc)}): "
            f"{first_line(exc)}. `dpbench config {policy_cls.name}` lists its fields and defaults"
        ) from None


def check_configs(
    policy_cls: type, spec: PolicySpec, pcfg: Any, tcfg: Any, overrides: dict[str, str], task: str
) -> None:
    """Everything ``dpbench run`` refuses before reading data, in one place so ``dpbench config`` refuses the same:
    the policy config (``check_config``), the train config (``config.check_train_config``, and its normalizer for
    ``task``, ``normalization.check_normalizer``) and a build with the ``policy.*`` overrides (``check_buildable``).
    Raises DpbenchError."""
    from dpbench.config import check_train_config
    from dpbench.data.normalization import check_normalizer

    policy_cls.check_config(pcfg)
    check_train_config(tcfg)
    check_normalizer(tcfg.normalizer, task, image_obs=bool(spec.image_keys))
    check_buildable(policy_cls, spec, pcfg, overrides)
