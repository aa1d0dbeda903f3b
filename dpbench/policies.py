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


SOURCE_MARK = "@sha256:"


@cache  # per class object: its code as it was when first asked, near its import
def policy_source(cls: type) -> str | None:
    """``"WHAT@sha256:HEX12"`` for a policy defined outside dpbench, None for dpbench's own (a record names
    their code by dpbench's commit, ``dpbench.source``).

    The digest (first 12 hex digits of a SHA-256) covers the source text of every loaded module of the
    policy's top-level package: ``my_policy`` alone for a file ``my_policy.py``, or ``mypkg`` and each
    ``mypkg.*`` module imported so far for an installed package, so helper modules count. Text, not bytes:
    CRLF and LF copies agree. ``WHAT`` names it for people (``my_policy.py``, ``mypkg (3 modules)``); only the
    digest is identity (:func:`source_digest`), so a moved or renamed copy of the same code is the same code.
    A cell's config hash includes the digest (``runner.resolve_config``): editing the code starts new cells
    instead of resuming or reusing the old code's. Base classes from other packages are not covered.

    Raises DpbenchError when the class's own module has no readable source (a class typed into a notebook
    or an interpreter): put it in a ``.py`` file and name it as ``module:Class``."""
    if cls.__module__ == "dpbench" or cls.__module__.startswith("dpbench."):
        return None
    top = cls.__module__.partition(".")[0]
    names = sorted(n for n, m in list(sys.modules.items()) if m is not None and (n == top or n.startswith(top + ".")))
    digest, hashed = hashlib.sha256(), 0
    for name in names:
        try:
            text = inspect.getsource(sys.modules[name])  # through the module's loader: files, zips, eggs
        except (TypeError, OSError):
            if name == cls.__module__:
                raise DpbenchError(
                    f"cannot read the source of policy {cls.__module__}:{cls.__qualname__}, which dpbench needs to "
                    "name the code behind its records: define the class in a .py file and pass --policy module:Class"
                ) from None
            continue  # an empty __init__.py, a namespace package or a compiled extension: no Python text
        digest.update(f"{name}\0{text}\0".encode())
        hashed += 1
    module = sys.modules.get(top)
    single = not hasattr(module, "__path__") and getattr(module, "__file__", None)
    what = Path(single).name if single else f"{top} ({hashed} module{'s' if hashed != 1 else ''})"
    return f"{what}{SOURCE_MARK}{digest.hexdigest()[:12]}"


def source_digest(source: str | None) -> str | None:
    """The digest part of a :func:`policy_source` string: what identity compares."""
    return None if source is None else source.rpartition(SOURCE_MARK)[2]


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
