"""Progress bars drawn only where someone watches them.

tqdm redraws its bar about ten times a second, each redraw a carriage return, and a nested bar (a sweep's
per-cell bars) adds cursor-up escapes. On a terminal that is a bar; piped into a log (a Slurm job, ``nohup``,
``2> run.log``) it is ~1.7 kB/s of redraws, tens of MB over a day's run, and unreadable. So dpbench's bars
draw on a terminal (or in a notebook, where ``tqdm.auto`` picks its widget) and nowhere else. The lines written
through a bar (``bar.write``, ``tqdm.write``: evaluations, finished cells) print either way.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from tqdm import autonotebook, std
from tqdm.auto import tqdm

IN_NOTEBOOK = autonotebook.tqdm is not std.tqdm  # tqdm.auto chose the notebook widget: no tty, but shown


def is_terminal(stream: IO[str] | None) -> bool:
    """Whether ``stream`` is an open terminal (False for files, pipes, pytest's capture, closed streams)."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def terminal_bar(*args: Any, disable: bool = False, file: IO[str] | None = None, **kwargs: Any) -> Any:
    """A ``tqdm.auto.tqdm`` bar (tqdm's arguments) that draws only when its stream (``file``, default
    ``sys.stderr``) is a terminal or a notebook shows it; otherwise tqdm's disabled bar, which still counts and
    writes lines. ``disable=True`` (``--quiet``) turns it off everywhere."""
    shown = not disable and (IN_NOTEBOOK or is_terminal(sys.stderr if file is None else file))
    return tqdm(*args, disable=not shown, file=file, **kwargs)
