"""A stop (Ctrl-C or SIGTERM) that arrives during a training step waits for the step's end.

``train`` runs each optimizer step inside ``StepGuard.step()``. A SIGINT or SIGTERM that arrives there is
held; when the step ends, ``train`` writes a resume checkpoint at that step and ``StepGuard.act()`` lets the
signal do what it would have done (the CLI's KeyboardInterrupt, or a sweep worker's exit). So a stopped run
loses no training: before this, it went back to its last periodic checkpoint (up to 2,250 steps, ~7 minutes
of a Transport DP-C cell at one thread). And the checkpoint never holds a half-applied optimizer step, which
a KeyboardInterrupt raised between two parameter updates would leave. Outside a step (an evaluation, a
periodic checkpoint write) a signal acts at once, as before: an evaluation can take minutes, and the checkpoint
written before it makes the resumed run repeat it (``TrainState.eval_pending``).

A second Ctrl-C while one is held acts at once (a step that never ends can still be stopped); a repeated
SIGTERM stays held until ``act``, also between the step and its checkpoint, because a process pool sends its
workers SIGTERM again as soon as one of them has exited, which would cut another's checkpoint write short. (A
first signal landing in the few bytecodes between a step's block and train's check acts at once, as before.)

Only the main thread may set signal handlers; in another thread (or where a signal is ignored, as a sweep
worker ignores Ctrl-C, which its driver handles) nothing is held.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StepGuard:
    """Holds SIGINT/SIGTERM during ``step()`` blocks between ``__enter__`` and ``__exit__`` (which restores the
    handlers found). ``held``: the signal number held, if any."""

    def __init__(self) -> None:
        self.held: int | None = None
        self._frame: FrameType | None = None
        self._in_step = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StepGuard:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                previous = signal.getsignal(signum)
                if previous in (signal.SIG_IGN, None):  # ignored here, or set outside Python: leave it be
                    continue
                self._previous[signum] = previous
                signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    @contextmanager
    def step(self) -> Iterator[None]:
        """One training step (or the checkpoint write after a held stop): a signal that arrives inside is held
        for ``act``. A block that raises lets a held signal act at once (a failed step has nothing to keep, and a
        sweep worker told to stop must not go on to another cell)."""
        self._in_step = True
        try:
            yield
        except BaseException:
            self._in_step = False
            self.act()
            raise
        finally:
            self._in_step = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.held is None:
            if self._in_step:
                self.held, self._frame = signum, frame
            else:
                self._forward(signum, frame)
        elif signum == signal.SIGINT:  # a second Ctrl-C: stop now, as a step may never end (a plugin's loop)
            self.held = self._frame = None
            self._forward(signum, frame)
        # a repeated SIGTERM stays held, in a step or between it and the checkpoint that acts on the first: a
        # process pool terminates its workers again once one of them has exited

    def act(self) -> None:
        """Let the held signal act now, as the handler it found would have (usually by raising
        KeyboardInterrupt or exiting); nothing when none is held."""
        if self.held is not None:
            signum, frame = self.held, self._frame
            self.held = self._frame = None
            self._forward(signum, frame)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous.get(signum, signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        else:  # SIG_DFL: the default action (SIGTERM ends the process), with this guard out of the way
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
