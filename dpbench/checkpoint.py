"""Safe checkpoints: weights as safetensors (no code can ride along, nothing is unpickled) plus
plain-JSON metadata (policy, config, spec, env, dataset identity), and loading that refuses a
checkpoint whose shapes do not fit the env it is evaluated on."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dpbench.config import apply_overrides, config_to_dict
from dpbench.errors import DpbenchError, first_line
from dpbench.policies import available_policies, get_policy_class, policy_source, source_digest
from dpbench.policy import Policy
from dpbench.spec import PolicySpec

if TYPE_CHECKING:
    import torch


def save_policy(policy: Policy, path: str | Path, meta: dict[str, Any]) -> Path:
    """Weights as safetensors (no code can ride along) plus plain-JSON metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "policy": policy.name,
        "policy_class": f"{type(policy).__module__}:{type(policy).__qualname__}",
        "config": config_to_dict(policy.config),
        "spec": policy.spec.to_dict(),
        **meta,
    }
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in policy.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"dpbench": json.dumps(header)})
    tmp.replace(path)
    return path


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """A checkpoint's JSON metadata (policy, policy_class, config, spec and the ``meta`` given to ``save_policy``),
    read without loading the weights. Raises DpbenchError when the file is missing, is not a safetensors file
    (dpbench never unpickles), or carries no dpbench metadata."""
    path = Path(path)
    if not path.exists():
        raise DpbenchError(f"{path}: no such checkpoint")
    if path.is_dir():
        if (path / "policy.safetensors").exists():
            raise DpbenchError(f"{path} is a folder; pass {path}/policy.safetensors (or best.safetensors)")
        if (path / "train_state.pt").exists():  # a best.safetensors beside it is training's weights only
            raise DpbenchError(
                f"{path} is an unfinished cell's folder: its policy.safetensors is written when its training ends; "
                "rerun the dpbench run that made it to finish it"
            )
        raise DpbenchError(
            f"{path} is a folder; pass a checkpoint file (a finished cell's OUT/work/<cell>/policy.safetensors or "
            "best.safetensors; its record's `checkpoint` names it)"
        )
    if path.name == "train_state.pt":
        raise DpbenchError(
            f"{path} is training's resume state; evaluate policy.safetensors or best.safetensors beside it"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors says why: a truncated file's header is incomplete
        raise DpbenchError(
            f"{path}: not a readable safetensors checkpoint ({first_line(exc)}): a truncated or corrupt copy, or "
            "another format. dpbench never unpickles checkpoints, since a pickle can run code; copy the file again, "
            "or export the weights with dpbench (or safetensors)"
        ) from None
    if "dpbench" not in meta:
        if {"step", "score"} <= set(meta):  # train.save_best's weights-only file
            raise DpbenchError(
                f"{path}: the best evaluation's weights as training keeps them, without the policy's config (a run "
                "that finished before 2026-12-01, one still training, or one whose best weights were not kept); "
                "evaluate policy.safetensors beside it"
            )
        raise DpbenchError(f"{path}: a safetensors file without dpbench metadata; it was not written by dpbench")
    try:
        parsed = json.loads(meta["dpbench"])
    except json.JSONDecodeError as exc:
        raise DpbenchError(
            f"{path}: its dpbench metadata is not valid JSON ({exc}); the file was edited or damaged"
        ) from None
    if not isinstance(parsed, dict):
        parsed = {}
    spec = parsed.get("spec")
    fields = {"policy": str, "policy_class": str, "config": dict, "spec": dict}
    missing = [k for k, kind in fields.items() if not isinstance(parsed.get(k), kind)]
    if isinstance(spec, dict) and not (isinstance(spec.get("obs_shapes"), dict) and "action_dim" in spec):
        missing.append("spec.obs_shapes/action_dim")
    if missing:  # what load_policy rebuilds the policy from
        raise DpbenchError(f"{path}: its dpbench metadata has no {', '.join(missing)}; the file was edited or damaged")
    return parsed


def load_policy(
    path: str | Path, expect_spec: PolicySpec | None = None, overrides: dict[str, str] | None = None
) -> tuple[Policy, dict[str, Any]]:
    """Rebuild a policy from a checkpoint, refusing one whose shapes don't match ``expect_spec``.

    ``overrides`` (``{"policy.sampler": "ddim", ...}``) change inference-time fields such as the
    sampler; a change that alters the weights' shapes is refused when the weights are loaded.
    """
    meta = read_checkpoint_meta(path)
    spec = PolicySpec.from_dict(meta["spec"])
    if expect_spec is not None and spec != expect_spec:
        raise DpbenchError(
            f"{path}: checkpoint was trained for env '{meta.get('env')}' obs {spec.obs_shapes} action_dim "
            f"{spec.action_dim}, but this env gives obs {expect_spec.obs_shapes} action_dim {expect_spec.action_dim}"
        )
    cls = _saved_class(meta["policy"], meta["policy_class"])
    cfg = apply_overrides(cls.Config(), meta["config"], f"{cls.name} config")
    for key, value in (overrides or {}).items():
        scope, _, name = key.partition(".")
        if scope != "policy" or not name:
            raise DpbenchError(f"override '{key}': a saved policy takes only policy.FIELD=VALUE")
        apply_overrides(cfg, {name: value}, f"{cls.name} config")
    saved = meta.get("policy_source")
    if saved:  # a policy outside dpbench: the weights still fit (checked below), but its code may have changed
        try:
            now = policy_source(cls)
        except DpbenchError:
            now = None
        if source_digest(now) != source_digest(saved):
            print(
                f"[dpbench] {path}: trained by {saved}, but the policy's code is now {now or 'unreadable'}; "
                "scores may differ from its record's. To reproduce them, restore that version of the code",
                file=sys.stderr,
            )
    policy = cls(spec, cfg)
    state = load_file(str(path))
    try:
        policy.load_state_dict(state)
    except RuntimeError:
        config = (
            f"the stored config with {', '.join(f'{k}={v}' for k, v in overrides.items())} (--set changes "
            "inference-time fields only, such as the sampler; drop those that shape the weights)"
            if overrides
            else "the stored config"
        )
        raise DpbenchError(
            f"{path}: weights do not fit policy '{cls.name}' with {config}: {_weights_diff(policy, state)}"
        ) from None
    policy.eval()
    return policy, meta


def _saved_class(name: str, made_by: str) -> type[Policy]:
    """The class that made a checkpoint, by its ``module:Class`` (``made_by``), not by its ``name``, which a
    subclass may share with a built-in (one that kept ``bc``). Only a dpbench class that moved since is found by
    its registered name; another class that no longer imports is an error that says so."""
    try:
        return get_policy_class(made_by)
    except DpbenchError:
        if made_by.startswith("dpbench.") and name in available_policies():
            return get_policy_class(name)
        raise


def _weights_diff(policy: Policy, state: dict[str, torch.Tensor]) -> str:
    """Which tensors a checkpoint lacks, has in excess, or holds in another shape than ``policy`` (3 of each)."""
    own = policy.state_dict()
    parts = []
    for what, keys in (
        ("missing", [k for k in own if k not in state]),
        ("unexpected", [k for k in state if k not in own]),
        (
            "other shape",
            [
                f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                for k in own
                if k in state and state[k].shape != own[k].shape
            ],
        ),
    ):
        if keys:
            parts.append(f"{what} {', '.join(keys[:3])}{f' (+{len(keys) - 3} more)' if len(keys) > 3 else ''}")
    return "; ".join(parts) or "mismatch"
