"""Progress of a grid: the driver's terminal (an overall bar for cells, one bar per running cell, lines
above them) and, in worker processes, the stand-in for the training loop's tqdm bar that sends what it
would draw to the driver instead.

Messages travel over a channel (a multiprocessing queue, or a Ray queue) as tuples
``(kind, cell_id, *payload)``: ``("start", id, desc, initial, total)``, ``("step", id, n, postfix)``,
``("line", id, text)``, ``("end", id)``.
"""

from __future__ import annotations

import queue as queue_mod
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm

from dpbench.bars import postfix_text, terminal_bar


class WorkerBar:
    """Stands in for the training loop's tqdm bar inside a worker: sends (kind, cell_id, ...) messages over
    ``channel`` to the driver, which draws one bar per running cell, instead of drawing into a terminal shared
    with others. Built by ``functools.partial(WorkerBar, channel, cell_id)`` and then called with tqdm's
    arguments (``dpbench.train.train``'s ``make_bar``); ``disable`` is ignored: the driver decides."""

    def __init__(
        self,
        channel: Any,
        cell_id: str,
        iterable: Any = None,
        desc: str = "",
        total: int | None = None,
        initial: int = 0,
        disable: bool = False,
        **_: Any,
    ) -> None:
        self.channel, self.cell_id = channel, cell_id
        self.n, self.total, self.postfix, self._sent = initial, total, "", 0.0
        self._send("start", desc, initial, total)

    def _send(self, kind: str, *payload: Any) -> None:
        try:
            self.channel.put((kind, self.cell_id, *payload))
        except Exception:  # the driver is gone or its queue closed: progress is best effort
            pass

    def update(self, n: int = 1) -> None:
        """``n`` more steps; sent at most every 0.5 s, and at the last step."""
        self.n += n
        now = time.monotonic()
        if now - self._sent >= 0.5 or self.n == self.total:
            self._sent = now
            self._send("step", self.n, self.postfix)

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        """The text after the bar ("loss=0.1, lr=1e-4"), sent with the next step."""
        self.postfix = postfix_text(ordered_dict, kwargs)

    def write(self, s: str, file: Any = None, end: str = "\n", nolock: bool = False) -> None:
        """A line for the driver to print above the bars."""
        self._send("line", s)

    def close(self) -> None:
        """The last step count, then the end of this cell's bar."""
        self._send("step", self.n, self.postfix)
        self._send("end")

    def __enter__(self) -> WorkerBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Callable[..., None]:  # any other tqdm method: nothing to draw
        return lambda *args, **kwargs: None


class ProgressView:
    """The driver's terminal: one overall bar for cells, one bar per running cell, lines above them."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.enabled = enabled
        self.overall = terminal_bar(
            total=total, initial=done, desc="cells", unit="cell", position=0, dynamic_ncols=True, disable=not enabled
        )
        self.bars: dict[str, Any] = {}
        self.lock = threading.Lock()

    def handle(self, msg: tuple[Any, ...]) -> None:
        """Apply one worker message ``(kind, cell_id, *payload)``: start / step / line / end (``WorkerBar``)."""
        kind, cell_id, *payload = msg
        with self.lock:
            if kind == "start":
                desc, initial, total = payload
                self.bars[cell_id] = terminal_bar(
                    total=total,
                    initial=initial,
                    desc=desc,
                    unit="step",
                    leave=False,
                    dynamic_ncols=True,
                    disable=not self.enabled,
                )
            elif kind == "step" and cell_id in self.bars:
                bar, (n, postfix) = self.bars[cell_id], payload
                bar.update(n - bar.n)
                if postfix:
                    bar.set_postfix_str(postfix)
            elif kind == "line":
                tqdm.write(payload[0])
            elif kind == "end" and cell_id in self.bars:
                self.bars.pop(cell_id).close()

    def write(self, line: str, err: bool = False) -> None:
        """A line above the bars (stderr when ``err``)."""
        with self.lock:
            tqdm.write(line, file=sys.stderr if err else sys.stdout)

    def cell_done(self, line: str, err: bool = False) -> None:
        """A cell's closing line ("": none), and one more cell on the overall bar."""
        if line:
            self.write(line, err)
        with self.lock:
            self.overall.update(1)

    def close(self) -> None:
        """Close every bar."""
        with self.lock:
            for bar in self.bars.values():
                bar.close()
            self.bars.clear()
            self.overall.close()


def pump(channel: Any, view: ProgressView, stop: threading.Event) -> None:
    """Driver thread: progress messages from the workers to the bars, until stopped and drained."""
    while True:
        try:
            view.handle(channel.get(timeout=0.2))
        except queue_mod.Empty:
            if stop.is_set():
                return
        except (EOFError, OSError, ValueError):
            return
        except Exception:  # e.g. Ray shutting down
            if stop.is_set():
                return
            time.sleep(0.2)
