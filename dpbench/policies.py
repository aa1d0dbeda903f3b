"""The policy registry: built-in policies, installed entry points (group ``dpbench.policies``),
and ``package.module:ClassName`` references, each checked against the Policy contract."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.resources
import inspect
import os
import sys
from collections.abc import Iterable, Iterator
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from dpbench.contract import is_builtin
from dpbench.errors import DpbenchError, guess_names, guesses_text, raised_at
from dpbench.host import environment_info
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
    """The Policy class ``ref`` (``package.module:ClassName``) names, checked by ``_check_class``.

    Raises DpbenchError, one line each: the module is not there (or a working-directory file is shadowed by
    another module of its name); importing it failed (a missing package, a bad import, a syntax error, its
    own top-level code raising or exiting), at the file and line; it has no such class (its Policy classes
    listed, with the one a typo means); the class breaks the Policy contract."""
    module, _, attr = ref.partition(":")
    try:
        imported = importlib.import_module(module)
    except SyntaxError as exc:
        raise DpbenchError(
            f"cannot import policy '{ref}': {exc.msg} at {Path(exc.filename or '?').name}:{exc.lineno}"
        ) from None
    except ImportError as exc:  # ModuleNotFoundError included
        if exc.name and module != exc.name and not module.startswith(exc.name + "."):
            # the module was found; an import inside it failed (a missing package, a name its module lacks)
            raise DpbenchError(
                f"cannot import policy '{ref}': importing '{module}' failed at {raised_at(exc)}: {exc} "
                "(install that package, or fix the import)"
            ) from None
        raise _not_found(ref, module, exc) from None
    except SystemExit as exc:  # a script's sys.exit at import would end dpbench itself (`dpbench list` included)
        raise DpbenchError(
            f"cannot import policy '{ref}': importing '{module}' called sys.exit({exc.code!r}) at {raised_at(exc)}; "
            'a policy module must not exit at import (put script code under `if __name__ == "__main__":`)'
        ) from None
    except Exception as exc:  # the module's own top-level code raised
        hint = (
            "; give every config field a default (dpbench builds a config from its defaults, then the preset, then "
            "--set)"
            if isinstance(exc, TypeError) and "non-default argument" in str(exc)
            else ""
        )
        raise DpbenchError(
            f"cannot import policy '{ref}': importing '{module}' raised {type(exc).__name__}: {exc} at "
            f"{raised_at(exc)}{hint}"
        ) from None
    try:
        cls = getattr(imported, attr)
    except AttributeError:  # a module of that name is there, the class is not: a shadowed file, a typo?
        raise _shadowed(ref, module) or _no_class(ref, imported, attr) from None
    except Exception as exc:  # the module's own __getattr__ (a lazy loader) raised
        raise DpbenchError(
            f"cannot import policy '{ref}': looking up '{attr}' in '{module}' raised {type(exc).__name__}: {exc} "
            f"at {raised_at(exc)}"
        ) from None
    return _check_class(ref, cls)


def _shadowed(ref: str, module: str) -> DpbenchError | None:
    """The error for a working-directory file that another module of its name (the standard library's, an
    installed package's) shadows; None when ``module`` is not such a file."""
    local = Path.cwd() / f"{module.split('.')[0]}.py"
    found = getattr(sys.modules.get(module), "__file__", None)
    if local.exists() and found and Path(found).resolve() != local.resolve():
        return DpbenchError(
            f"cannot import policy '{ref}': '{module}' is {found}, which the standard library or an installed "
            f"package holds under the same name as your {local.name}; rename your file"
        )
    return None


def _not_found(ref: str, module: str, exc: Exception) -> DpbenchError:
    """The error for a module that is not there (``exc`` says which), or a working-directory file shadowed by
    another module of its name."""
    return _shadowed(ref, module) or DpbenchError(
        f"cannot import policy '{ref}': {exc}. A module:Class reference names an installed module or one in "
        f"the working directory ({Path.cwd()}; or set PYTHONPATH; docs/adding_a_policy.md)"
    )


def _no_class(ref: str, module: ModuleType, attr: str) -> DpbenchError:
    """The error for a module that imports but has no ``attr``: it names the module's file and the Policy classes
    it holds, with the one ``attr`` likely means (``BCPolcy`` -> ``BCPolicy``)."""
    held = sorted(
        n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, Policy) and v is not Policy
    )
    what = f"module '{module.__name__}' ({getattr(module, '__file__', None) or 'no file'})"
    listed = f"the Policy classes {', '.join(held)}" if held else "no Policy subclass"
    if not attr:
        return DpbenchError(
            f"cannot import policy '{ref}': no class after the ':' (module:ClassName); {what} holds {listed}"
        )
    guess = guesses_text(guess_names([attr], held), 1)
    return DpbenchError(f"cannot import policy '{ref}': {what} has no '{attr}'; it holds {listed}{guess}")


def _check_class(ref: str, cls: Any) -> type[Policy]:
    """``cls`` if it is a Policy subclass that keeps the contract's class-level parts; else DpbenchError."""
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
    if not any("Config" in vars(k) for k in cls.__mro__ if k is not Policy):
        # else the base PolicyConfig trains: a config dataclass the class forgot to name is silently ignored
        raise DpbenchError(
            f"policy '{ref}' names no config class: write `Config = YourConfig` in the class body (your "
            "PolicyConfig dataclass; `Config = PolicyConfig` if it has no fields of its own). Without it the base "
            "PolicyConfig's fields and defaults train, whatever config class your module defines"
        )
    _check_config_class(ref, cls.Config)
    return cls


def _check_config_class(ref: str, config: type) -> None:
    """A policy's ``Config`` must be a dataclass in its own right, every field annotated: without the decorator,
    or without a type, a field silently is not one (the base's value trains, and --set, the config hash and
    ``dpbench config`` never see it). Raises DpbenchError saying how to write it."""
    own = vars(config)
    if "__dataclass_fields__" not in own:
        raise DpbenchError(
            f"policy '{ref}': its Config class {config.__qualname__} is not a dataclass; put @dataclasses.dataclass "
            "above it (without it, its fields are silently its base's)"
        )
    annotated = set(own.get("__annotations__", {}))
    bare = [
        name
        for name, value in own.items()
        if not name.startswith("_")
        and name not in annotated
        and not callable(value)
        and not isinstance(value, (property, classmethod, staticmethod))
    ]
    if bare:
        name = bare[0]
        raise DpbenchError(
            f"policy '{ref}': {config.__qualname__}.{name} has no type annotation, so it is not a config field; "
            f"write it as `{name}: {type(own[name]).__name__} = {own[name]!r}`"
        )
    # dpbench builds a config from its defaults, then the preset, then --set: a field without one cannot be built
    missing = [
        f.name
        for f in dataclasses.fields(config)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        name = missing[0]
        raise DpbenchError(
            f"policy '{ref}': {config.__qualname__}.{name} has no default; give every config field one (e.g. "
            f"`{name}: float = 0.1`): dpbench builds the config from its defaults, then the preset's values, then "
            "--set"
        )


SOURCE_MARK = "@sha256:"


@cache  # per class object: its code as it was when first asked, near its import
def policy_source(cls: type) -> str | None:
    """``"WHAT@sha256:HEX12"`` for a policy defined outside dpbench, None for dpbench's own (a record names
    their code by dpbench's commit, ``dpbench.source``).

    The digest (first 12 hex digits of a SHA-256) covers the source text of the policy's top-level module:
    the file ``my_policy.py`` for ``my_policy:Class``, or every ``.py`` file of the package for
    ``mypkg.policy:Class`` (helper modules count, whether or not loaded yet, so every process computes the
    same digest; hidden and symlinked folders do not; in a namespace package, the outermost regular
    package below it, or the module's own file). Text, not bytes: CRLF and LF copies agree; read through
    the import system, so zipped packages work. ``WHAT`` names it for people (``my_policy.py``,
    ``mypkg (3 files)``); only the digest is identity (:func:`source_digest`), so a moved or renamed copy of
    the same code is the same code. A cell's config hash includes the digest (``runner.resolve_config``):
    editing the code starts new cells instead of resuming or reusing the old code's. Base classes from other
    packages are not covered.

    Raises DpbenchError when the class's module has no readable source (a class typed into a notebook or
    an interpreter): put it in a ``.py`` file and name it as ``module:Class``."""
    if is_builtin(cls):
        return None
    root, module = _code_root(cls.__module__)
    digest = hashlib.sha256()
    try:
        if hasattr(module, "__path__"):  # a package: all its Python files, in a fixed order
            files = sorted(_python_files(importlib.resources.files(root)))
            for rel, text in files:
                digest.update(f"{rel}\0{text}\0".encode("utf-8", "surrogateescape"))
            what = f"{root} ({len(files)} file{'s' if len(files) != 1 else ''})"
        else:
            digest.update(inspect.getsource(module).encode("utf-8", "surrogateescape"))
            what = Path(getattr(module, "__file__", None) or f"{root}.py").name
    except (TypeError, OSError, UnicodeDecodeError):
        raise DpbenchError(
            f"cannot read the source of policy {cls.__module__}:{cls.__qualname__}, which dpbench needs to name "
            "the code behind its records: define the class in a .py file and pass --policy module:Class"
        ) from None
    return f"{what}{SOURCE_MARK}{digest.hexdigest()[:12]}"


def _code_root(module: str) -> tuple[str, Any]:
    """The outermost regular package holding ``module`` (name, module object), or ``module`` itself when it
    is top-level or sits directly in a namespace package: a namespace's other portions (other folders of
    that name on sys.path) are other people's code, and differ between machines."""
    parts = module.split(".")
    for i in range(1, len(parts)):
        name = ".".join(parts[:i])
        found = sys.modules.get(name)
        if found is not None and hasattr(found, "__path__") and getattr(found, "__file__", None):
            return name, found
    return module, sys.modules.get(module)


def _python_files(folder: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(relative path, text) of each ``.py`` file under an ``importlib.resources`` folder, recursively; not in
    hidden folders (.ipynb_checkpoints, .git), __pycache__ or symlinked folders. Undecodable bytes are kept
    (surrogateescape), so a legacy-encoded file hashes instead of failing."""
    for entry in folder.iterdir():
        rel = f"{prefix}{entry.name}"
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if entry.name != "__pycache__" and not (isinstance(entry, Path) and entry.is_symlink()):
                yield from _python_files(entry, rel + "/")
        elif entry.name.endswith(".py"):
            yield rel, entry.read_text(encoding="utf-8", errors="surrogateescape")


def source_digest(source: str | None) -> str | None:
    """The digest part of a :func:`policy_source` string: what identity compares."""
    return None if source is None else source.rpartition(SOURCE_MARK)[2]


@cache  # once per process and entry point
def _warn_shadowed(name: str, value: str) -> None:
    print(
        f"[dpbench] warning: entry point '{name}' ({value}) is ignored: '{name}' is a built-in policy; register "
        "yours under another name",
        file=sys.stderr,
    )


def available_policies() -> dict[str, str]:
    """name -> 'module:Class' for built-ins and installed entry points (one named like a built-in is ignored,
    with a warning)."""
    names = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _BUILTIN and ep.value != _BUILTIN[ep.name]:
            _warn_shadowed(ep.name, ep.value)
        names.setdefault(ep.name, ep.value)
    return names


def load_problem(name: str, ref: str) -> str:
    """Why the registered policy ``name`` (at ``ref``) does not load: "" when it does, and for the built-ins, which
    the tests load. ``dpbench list`` and the unknown-name errors use it so a broken plugin is not offered as usable."""
    if ref.startswith("dpbench."):
        return ""
    try:
        get_policy_class(name)
    except DpbenchError as exc:
        return str(exc)
    return ""


def valid_policies_text(names: dict[str, str]) -> str:
    """``names`` (name -> 'module:Class', from ``available_policies``) sorted and joined for an error message, an
    installed one that does not load marked so."""
    return ", ".join(f"{n} (does not load)" if load_problem(n, names[n]) else n for n in sorted(names))


def paper_labels() -> dict[str, str]:
    """The paper's row labels (LSTM-GMM, IBC, BET, DP-C, DP-T), which tables print, -> the built-in policy each names
    (DP-C -> diffusion, the name records use; diffusion_cnn is its alias)."""
    from dpbench.paper_cells import ROW_LABELS  # here: paper_cells imports results, which imports this module

    canonical = {ref: name for name, ref in reversed(_BUILTIN.items())}  # an alias's class -> its first name
    return {label: canonical[_BUILTIN[row]] for row, label in ROW_LABELS.items() if row in _BUILTIN}


def policy_hint(unknown: list[str]) -> str:
    """The end of a message about ``unknown`` policy names: per name, the registered one it spells another way
    (the paper's 'DP-C', 'lstm-gmm', a typo; ``errors.guess_names``), else ``module:Class`` for a dotted
    ``module.Class``; then, for any name left, how to name one's own class."""
    guesses = guess_names(unknown, available_policies(), paper_labels())
    for name in unknown:
        module, dot, cls = name.rpartition(".")
        if name not in guesses and dot:
            guesses[name] = f"{module}:{cls}"
    left = [n for n in unknown if n not in guesses]
    own = "your own class: name it as module:Class (docs/adding_a_policy.md)"
    if not left:
        return guesses_text(guesses, len(unknown))
    if len(left) == len(unknown):
        return f"; {own}"
    return f"{guesses_text(guesses, len(unknown))}; {', '.join(map(repr, left))}: {own}"


def get_policy_class(name: str) -> type[Policy]:
    """Resolve ``--policy``: a registered name, an entry point, or ``package.module:ClassName``."""
    if ":" in name:
        module = name.partition(":")[0]
        if "/" in module or "\\" in module or module.endswith(".py"):  # a file's path, not a module's name
            path = Path(module)
            stem = path.name.removesuffix(".py")
            where = "" if path.parent == Path(".") else f"run from {path.parent} (or add it to PYTHONPATH) and "
            raise DpbenchError(
                f"--policy takes a module's name, not a file's path ('{module}'): {where}pass "
                f"{stem}:{name.partition(':')[2]}"
            )
        # As with `python -m` (and uvicorn's app references), the module may sit in the working directory,
        # which a console script's sys.path lacks; appended, so an installed package of the same name wins.
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.append(cwd)
        return _load_ref(name)
    names = available_policies()
    if name not in names:
        raise DpbenchError(
            f"unknown policy '{name}'; valid policies: {valid_policies_text(names)}{policy_hint([name])}"
        )
    cls = _load_ref(names[name])
    # records, cell ids and checkpoints name a registered policy by its class's `name` (built-ins have aliases)
    if name not in _BUILTIN and cls.name != name:
        raise DpbenchError(
            f"entry point '{name}' loads {names[name]}, whose `name` is '{cls.name}': records and checkpoints would "
            f"label it '{cls.name}'{' (a built-in policy)' if cls.name in _BUILTIN else ''}; set `name = "
            f"\"{name}\"` in the class, or register it under '{cls.name}'"
        )
    return cls


def record_policy_names(policies: list[str], held: Iterable[str]) -> list[str]:
    """The policy names that records of the ``--policy`` selection carry: each name as given, and the class's
    ``name`` of a registered alias (diffusion_cnn -> diffusion) or of a ``module:Class`` reference (imported, so a
    broken one is a DpbenchError); a reference that records in ``held`` name as given needs no import (the table
    reads records, not the policy's code)."""
    registered, held = available_policies(), set(held)
    resolve = [n for n in policies if n in registered or (":" in n and n not in held)]
    return [*policies, *(get_policy_class(n).name for n in resolve)]


def provenance(policy_cls: type, device: str) -> dict[str, Any]:
    """``environment_info`` for a record, its ``versions`` naming the policy's file and hash when the policy
    lives outside dpbench (``policy_source``)."""
    info = environment_info(device=device)
    source = policy_source(policy_cls)
    if source is not None:
        info["versions"] = {**info["versions"], "policy_source": source}
    return info
