"""The one exception type for problems a user can fix (bad input, missing data, wrong names)."""

from __future__ import annotations

import difflib
import traceback
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from sysconfig import get_paths as paths


class DpbenchError(Exception):
    """A user-facing error. The CLI prints its message in one line and exits with status 2."""


class DatasetMissing(DpbenchError):
    """A named dataset that would be collected on first use is not cached yet (raised only when the caller
    asked not to collect, e.g. ``dpbench sweep --dry-run``). ``path``: where it would be written;
    ``action_mode``: the actions it would record (robomimic abs | delta; None for Push-T); ``kind``: its name
    as records store it (``dataset.kind``, e.g. scripted-mh-delta)."""

    def __init__(self, message: str, path: str, action_mode: str | None = None, kind: str = "scripted") -> None:
        super().__init__(message)
        self.path = path
        self.action_mode = action_mode
        self.kind = kind


def is_interrupt(exc: BaseException | None) -> bool:
    """Whether ``exc`` is or wraps a Ctrl-C or SIGTERM (the CLI raises KeyboardInterrupt for both): numba's
    compiled functions (robosuite's controllers, in every robomimic env step) turn a KeyboardInterrupt raised
    inside them into a SystemError caused by it."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def check_output_file(flag: str, path: Path, suffixes: tuple[str, ...], writes: str) -> None:
    """Refuse an output file path before the work that fills it (episodes, a collection) runs: a directory, a name
    whose suffix (any case) is not one of ``suffixes`` (what the command ``writes``, e.g. "a GIF"), or a parent
    that is a file. Raises DpbenchError naming ``flag``."""
    if path.is_dir():
        raise DpbenchError(f"{flag} {path} is a directory; give a file path ending in {suffixes[0]}")
    if path.suffix.lower() not in suffixes:
        raise DpbenchError(f"{flag} {path}: dpbench writes {writes}; give a file path ending in {suffixes[0]}")
    folder = next((p for p in path.absolute().parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise DpbenchError(f"{flag} {path}: {folder} is a file, not a folder; choose another path")


def _fold(name: str) -> str:
    """A name as a user may spell it: case, '-', '_' and spaces ignored (Push-T ~ pusht, ToolHang ~ tool_hang)."""
    return "".join(ch for ch in name.lower() if ch not in "-_ ")


def did_you_mean(names: Iterable[str], valid: Iterable[str], labels: Mapping[str, str] | None = None) -> str:
    """The suffix ``"; did you mean 'pusht'?"`` for an unknown-name message: for each of ``names``, the valid name
    it spells another way (case, '-', '_' and spaces ignored), the valid name one of ``labels`` (a display label ->
    its valid name, e.g. the paper's 'DP-C' -> 'diffusion_cnn') stands for, or else the one valid name
    ``difflib`` finds close (ratio >= 0.8: a typo). "" when no name has a guess."""
    table = {_fold(label): name for label, name in (labels or {}).items()}
    table.update({_fold(name): name for name in valid})
    names = list(names)
    guesses: dict[str, str] = {}
    for name in names:
        close = difflib.get_close_matches(_fold(name), list(table), n=1, cutoff=0.8)
        if close:
            guesses[name] = table[close[0]]
    if not guesses:
        return ""
    if len(names) == 1:
        return f"; did you mean '{guesses[names[0]]}'?"
    return "; did you mean " + ", ".join(f"'{g}' for '{n}'" for n, g in guesses.items()) + "?"


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message ("" for none): what a one-line report of it can show."""
    text = str(exc)
    return text.splitlines()[0] if text else ""


def raised_at(exc: BaseException, frames: int = 1) -> str:
    """Where ``exc`` was raised, for a one-line message about code outside dpbench (a plugin policy):
    ``file.py:LINE in function`` of its last ``frames`` traceback frames, innermost last; "?" without one.
    When those frames are in a library (torch, the standard library) or in dpbench, the user's own innermost
    frame comes first, the library's after it: ``my_policy.py:55 in compute_loss (raised in functional.py:76
    in broadcast_tensors)``."""
    tb = traceback.extract_tb(exc.__traceback__)
    last = tb[-frames:]
    where = ", ".join(_frame(f) for f in last) or "?"
    own = [f for f in tb if not _not_users(f.filename)]
    if own and own[-1] not in last:
        return f"{_frame(own[-1])} (raised in {where})"
    return where


def _frame(f: traceback.FrameSummary) -> str:
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}"


def _not_users(filename: str) -> bool:
    """Whether a traceback frame's file is an installed library's, the standard library's or dpbench's."""
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return True
    path = Path(filename).resolve()
    return any(path.is_relative_to(root) for root in _not_users_roots())


@cache  # once per process, not once per traceback frame
def _not_users_roots() -> frozenset[Path]:
    """The standard library's and installed packages' folders, and dpbench's: the package, and its envs and
    baselines, which a source checkout keeps beside it."""
    import importlib.util

    roots = {Path(p).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib") if (p := paths().get(key))}
    roots.add(Path(__file__).resolve().parent)
    for name in ("dpbench.envs", "dpbench.baselines"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            roots.add(Path(spec.origin).resolve().parent)
    return frozenset(roots)
