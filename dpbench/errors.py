"""The one exception type for problems a user can fix (bad input, missing data, wrong names), and what its
messages need: a guess for a misspelt name, where a plugin raised, the first line of an error."""

from __future__ import annotations

import os
import re
import sys
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


def reader_gone() -> int:
    """After a BrokenPipeError on stdout (``dpbench list | head``: the reader left), stop quietly, as the Python docs
    advise (signal module, "Note on SIGPIPE"): stdout goes to devnull so the interpreter's last flush does not raise
    again. Returns 1, the exit status for that case."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1


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


def _tokens(name: str) -> list[str]:
    """A name's words, lower case: split at '-', '_' and spaces (scripted-mh-delta -> scripted, mh, delta)."""
    return [t for t in re.split(r"[-_\s]+", name.strip().lower()) if t]


def _one_typo(typed: str, word: str) -> bool:
    """Whether ``typed`` is ``word`` with one letter added, dropped, changed, or two neighbours swapped, and
    ``word`` has 4 letters or more: in short words (ph, mh, bc) one letter is another name, not a typo."""
    if len(word) < 4 or typed == word or abs(len(typed) - len(word)) > 1:
        return False
    if len(typed) == len(word):
        diff = [i for i, (a, b) in enumerate(zip(typed, word, strict=True)) if a != b]
        swapped = len(diff) == 2 and diff[1] == diff[0] + 1 and typed[diff[0]] == word[diff[1]]
        return len(diff) == 1 or (swapped and typed[diff[1]] == word[diff[0]])
    short, long = sorted((typed, word), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def guess_names(names: Iterable[str], valid: Iterable[str], labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """For each of ``names`` that has one, the single valid name it most likely means: the valid name it spells
    another way (case, '-', '_' and spaces ignored: Push-T -> pusht), or the one a display label stands for
    (``labels``: label -> valid name, e.g. the paper's 'DP-C' -> 'diffusion'), or the same words in another order
    (scripted-delta-mh -> scripted-mh-delta), or one typo in one word of 4+ letters (difusion -> diffusion). A name
    with no such valid name, or with two, gets none: a wrong guess (scripted-ph -> scripted-mh) misleads."""
    valid = list(valid)

    def unique(matches: Iterable[str]) -> str | None:
        found = set(matches)
        return found.pop() if len(found) == 1 else None

    spellings = [(_fold(v), v) for v in valid] + [(_fold(k), v) for k, v in (labels or {}).items() if v in valid]
    guesses: dict[str, str] = {}
    for name in names:
        words = _tokens(name)
        guess = (
            unique(v for key, v in spellings if key == _fold(name))
            or unique(v for v in valid if sorted(_tokens(v)) == sorted(words))
            or unique(
                v
                for v in valid
                if len(_tokens(v)) == len(words)
                and sum(a != b for a, b in zip(words, _tokens(v), strict=True)) == 1
                and any(_one_typo(a, b) for a, b in zip(words, _tokens(v), strict=True))
            )
        )
        if guess is not None:
            guesses[name] = guess
    return guesses


def did_you_mean(names: Iterable[str], valid: Iterable[str], labels: Mapping[str, str] | None = None) -> str:
    """The end of an unknown-name message: ``"; did you mean 'pusht'?"`` for one name, ``"; did you mean 'pusht'
    for 'Push-T', 'tool_hang' for 'ToolHang'?"`` for several (``guess_names``'s guesses); "" when none has one."""
    names = list(names)
    return guesses_text(guess_names(names, valid, labels), len(names))


def guesses_text(guesses: Mapping[str, str], n_names: int) -> str:
    """``guesses`` (unknown name -> what it likely means) as the end of a message about ``n_names`` names."""
    if not guesses:
        return ""
    if n_names == 1:
        return f"; did you mean '{next(iter(guesses.values()))}'?"
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
    """The standard library's and installed packages' folders (sys.path's package folders included), and
    dpbench's: the package, and its envs and baselines, which a source checkout keeps beside it."""
    import importlib.util

    roots = {Path(p).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib") if (p := paths().get(key))}
    # and every package folder on sys.path: a venv that reads another one's packages through a .pth file
    # (scripts/worktree_env.sh) has torch outside its own purelib
    roots |= {Path(p).resolve() for p in sys.path if Path(p).name in ("site-packages", "dist-packages")}
    roots.add(Path(__file__).resolve().parent)
    for name in ("dpbench.envs", "dpbench.baselines"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            roots.add(Path(spec.origin).resolve().parent)
    return frozenset(roots)
