"""The one exception type for problems a user can fix (bad input, missing data, wrong names)."""

from __future__ import annotations

import traceback
from pathlib import Path


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


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message ("" for none): what a one-line report of it can show."""
    text = str(exc)
    return text.splitlines()[0] if text else ""


def raised_at(exc: BaseException, frames: int = 1) -> str:
    """Where ``exc`` was raised, for a one-line message about code outside dpbench (a plugin policy):
    ``file.py:LINE in function`` of its last ``frames`` traceback frames, innermost last; "?" without one."""
    tb = traceback.extract_tb(exc.__traceback__)[-frames:]
    return ", ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in tb) or "?"
