"""The policy registry: built-in policies, installed entry points (group ``dpbench.policies``),
and ``package.module:ClassName`` references, each checked against the Policy contract."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from dpbench.errors import DpbenchError
from dpbench.policy import Policy

ENTRY_POINT_GROUP = "dpbench.policies"

_BUILTIN: dict[str, str] = {
    "diffusion": "dpbench.diffusion.policy:DiffusionUnetPolicy",
    "diffusion_cnn": "dpbench.diffusion.policy:DiffusionUnetPolicy",
    "diffusion_transformer": "dpbench.diffusion.policy:DiffusionTransformerPolicy",
    "diffusion_flow": "dpbench.diffusion.flow:FlowMatchingPolicy",
    "bc": "dpbench.baselines.bc:BCPolicy",
    "lstm_gmm": "dpbench.baselines.lstm_gmm:LSTMGMMPolicy",
    "ibc": "dpbench.baselines.ibc:IBCPolicy",
    "bet": "dpbench.baselines.bet:BETPolicy",
}


def _load_ref(ref: str) -> type[Policy]:
    module, _, attr = ref.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        local = Path.cwd() / f"{module.split('.')[0]}.py"
        found = getattr(sys.modules.get(module), "__file__", None)
        if local.exists() and found and Path(found).resolve() != local.resolve():
            raise DpbenchError(
                f"cannot import policy '{ref}': '{module}' is {found}, which the standard library or an installed "
                f"package holds under the same name as your {local.name}; rename your file"
            ) from None
        raise DpbenchError(
            f"cannot import policy '{ref}': {exc}. A module:Class reference names an installed module or one in "
            "the working directory (docs/adding_a_policy.md)"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise DpbenchError(f"'{ref}' is not a dpbench Policy subclass (see docs/adding_a_policy.md)")
    missing = []
    if cls.compute_loss is Policy.compute_loss:
        missing.append("compute_loss")
    if cls.predict_chunk is Policy.predict_chunk and cls.predict_action is Policy.predict_action:
        missing.append("predict_chunk (or predict_action)")
    if missing:
        raise DpbenchError(
            f"policy '{cls.name or ref}' breaks the Policy contract: it does not implement {', '.join(missing)}"
        )
    if not cls.name or not cls.presets:
        raise DpbenchError(
            f"policy '{ref}' breaks the Policy contract: it needs a `name` and at least one preset in `presets`"
        )
    return cls


@cache  # per class object: the file as it was when first asked, near its import
def policy_source(cls: type) -> str | None:
    """``"FILE@sha256:HEX12"`` for a policy defined outside dpbench: the file that defines ``cls`` (its name, not
    its path) and the first 12 hex digits of the SHA-256 of its bytes; None for dpbench's own policies, whose
    code a record names by dpbench's commit (``dpbench.source``). A cell's identity includes it
    (``runner.resolve_config``), so editing the file starts new cells instead of resuming or reusing the old
    code's; helper modules the file imports are not covered. Raises DpbenchError when the file cannot be read."""
    module = sys.modules.get(cls.__module__)
    if module is not None and (module.__name__ == "dpbench" or module.__name__.startswith("dpbench.")):
        return None
    try:
        path = Path(inspect.getfile(cls))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except (TypeError, OSError) as exc:
        raise DpbenchError(
            f"cannot read the source of policy {cls.__module__}:{cls.__qualname__} ({exc}); a policy outside "
            "dpbench must be defined in a file, so that its records can name the code that made them"
        ) from None
    return f"{path.name}@sha256:{digest}"


def available_policies() -> dict[str, str]:
    """name -> 'module:Class' for built-ins and installed entry points."""
    names = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        names.setdefault(ep.name, ep.value)
    return names


def get_policy_class(name: str) -> type[Policy]:
    """Resolve ``--policy``: a registered name, an entry point, or ``package.module:ClassName``."""
    if ":" in name:
        # As with `python -m` (and uvicorn's app references), the module may sit in the working directory,
        # which a console script's sys.path lacks; appended, so an installed package of the same name wins.
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.append(cwd)
        return _load_ref(name)
    names = available_policies()
    if name not in names:
        raise DpbenchError(f"unknown policy '{name}'; valid policies: {', '.join(sorted(names))}")
    return _load_ref(names[name])
