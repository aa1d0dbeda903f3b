"""Progress bars drawn only where someone watches them.

tqdm redraws its bar about ten times a second, each redraw a carriage return, and a nested bar (a sweep's
per-cell bars) adds cursor-up escapes. On a terminal that is a bar; piped into a log (a Slurm job, ``nohup``,
``2> run.log``) it is ~1.7 kB/s of redraws, tens of MB over a day's run, and unreadable. So dpbench's bars
draw on a terminal (or in a notebook, where ``tqdm.auto`` picks its widget). In a log a ``LogBar`` stands in:
a plain status line every few minutes (a robomimic cell's first evaluation can be an hour away, and a log
must tell a working job from a hung one) and where a resumed count starts. The lines written through a bar
(``bar.write``, ``tqdm.write``: evaluations, finished cells) print either way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from tqdm.auto import tqdm

# tqdm.auto's class derives from the notebook widget's when it chose it (in Jupyter with ipywidgets): no tty there,
# but the bar shows. (Read off its bases: importing tqdm.autonotebook ourselves would warn in notebooks.)
IN_NOTEBOOK = any(base.__module__ == "tqdm.notebook" for base in tqdm.__mro__)
LOG_EVERY_S = 300.0  # a log's status lines: a few per robomimic evaluation interval, ~12 lines an hour
MIN_WINDOW_S = 30.0  # a status line's rate is measured over at least this long (not one step after a pause)


def postfix_text(ordered_dict: dict[str, Any] | None, kwargs: dict[str, Any]) -> str:
    """tqdm's ``set_postfix`` arguments as the text after a bar ("loss=0.1, lr=1e-4")."""
    return ", ".join(f"{k}={v}" for k, v in {**(ordered_dict or {}), **kwargs}.items())


class LogBar:
    """A bar's stand-in where it cannot draw (a log): counts as tqdm does and, at most every ``every_s``
    seconds, writes one status line to ``file`` (default stderr, where the bar would be), e.g.
    ``[bc/pusht seed 0] step 4500/45000 (10%), 12.3 step/s, loss=0.0123, lr=1.0e-04``; a count resumed from
    ``initial`` says so at once (``[...] from step 29250 of 45000``). The rate is the count's since the last line
    or ``unpause()`` (training calls it after each evaluation, so evaluations do not dilute it). Takes tqdm's
    arguments, ignoring those about drawing; iterates ``iterable`` as tqdm does; ``write`` prints as
    ``tqdm.write`` does; tqdm's other methods (``refresh``, ``set_description``, ...) do nothing."""

    def __init__(
        self,
        iterable: Any = None,
        desc: str = "",
        total: int | None = None,
        initial: int = 0,
        unit: str = "it",
        file: IO[str] | None = None,
        every_s: float = LOG_EVERY_S,
        **_: Any,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.desc, self.total, self.n, self.unit, self.file = iterable, desc, total, initial, unit, file
        self.every_s, self.postfix, self.disable = every_s, "", False
        self._said = self._t_mark = time.monotonic()
        self._n_mark = initial
        if initial:
            self._say(f"from {unit} {initial}" + (f" of {total}" if total else ""))

    def _say(self, text: str) -> None:
        tqdm.write(f"[{self.desc}] {text}" if self.desc else text, file=self.file or sys.stderr)

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable:
            yield item
            self.update(1)

    def update(self, n: int = 1) -> None:
        """``n`` more; a status line if ``every_s`` has passed since the last (and the rate's window is long
        enough to mean something)."""
        self.n += n
        now = time.monotonic()
        if now - self._said >= self.every_s and now - self._t_mark >= MIN_WINDOW_S:
            share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
            rate = (self.n - self._n_mark) / (now - self._t_mark)
            postfix = f", {self.postfix}" if self.postfix else ""
            self._say(f"{self.unit} {self.n}/{self.total or '?'}{share}, {rate:.3g} {self.unit}/s{postfix}")
            self._said = self._t_mark = now
            self._n_mark = self.n

    def unpause(self) -> None:
        """Start the rate's window now: the time since the last update (an evaluation, say) was not this count's."""
        self._t_mark, self._n_mark = time.monotonic(), self.n

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        """The text after the count in the next status line ("loss=0.1, lr=1e-4")."""
        self.postfix = postfix_text(ordered_dict, kwargs)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """``set_postfix`` with the text given whole."""
        self.postfix = s

    @staticmethod
    def write(s: str, file: IO[str] | None = None, end: str = "\n", nolock: bool = False) -> None:
        """A line, as ``tqdm.write`` prints it (default stdout)."""
        tqdm.write(s, file=file, end=end, nolock=nolock)

    def close(self) -> None:
        """Nothing to clear: the status lines stay."""

    def __enter__(self) -> LogBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Callable[..., None]:  # tqdm's drawing methods: nothing to draw
        return lambda *args, **kwargs: None


def is_terminal(stream: IO[str] | None) -> bool:
    """Whether ``stream`` is an open terminal (False for files, pipes, pytest's capture, closed streams)."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def terminal_bar(*args: Any, disable: bool = False, file: IO[str] | None = None, **kwargs: Any) -> Any:
    """A ``tqdm.auto.tqdm`` bar (tqdm's arguments) when its stream (``file``, default ``sys.stderr``) is a
    terminal or a notebook shows it; elsewhere a ``LogBar`` (status lines every few minutes). ``disable=True``
    (``--quiet``): tqdm's disabled bar, which draws and says nothing but still writes lines."""
    if disable:
        return tqdm(*args, disable=True, file=file, **kwargs)
    if IN_NOTEBOOK or is_terminal(sys.stderr if file is None else file):
        return tqdm(*args, file=file, **kwargs)
    return LogBar(*args, file=file, **kwargs)
