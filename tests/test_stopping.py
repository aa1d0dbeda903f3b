"""dpbench.stopping.StepGuard: a stop during a training step waits for the step's end (train's use of it, and the
checkpoint it writes there, are tested in test_protocol.py). Signals are sent to this process, in its main thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from dpbench.stopping import StepGuard


class Raised(Exception):
    """What the handler found before the guard raises, so a test can tell which signal acted."""


@pytest.fixture
def handlers():
    """SIGINT and SIGTERM handlers that raise Raised(signum), restored afterwards."""

    def raise_it(signum, frame):
        raise Raised(signum)

    previous = {s: signal.signal(s, raise_it) for s in (signal.SIGINT, signal.SIGTERM)}
    yield raise_it
    for s, h in previous.items():
        signal.signal(s, h)


def test_a_signal_in_a_step_acts_only_when_asked_and_the_handlers_found_come_back(handlers):
    with StepGuard() as guard:
        with guard.step():
            os.kill(os.getpid(), signal.SIGTERM)
            reached = True  # the step goes on
        assert reached and guard.held == signal.SIGTERM
        with pytest.raises(Raised) as raised:
            guard.act()
        assert raised.value.args == (signal.SIGTERM,) and guard.held is None
        guard.act()  # nothing held: nothing happens
        with pytest.raises(Raised):  # outside a step a signal acts at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is handlers and signal.getsignal(signal.SIGTERM) is handlers


def test_a_second_ctrl_c_stops_a_step_that_never_ends_but_a_repeated_sigterm_waits(handlers):
    # a plugin's compute_loss that loops forever can still be stopped by pressing Ctrl-C twice; a process pool
    # terminates its workers again once one has exited, and that must not cut a checkpoint write short
    with StepGuard() as guard:
        with pytest.raises(Raised) as raised, guard.step():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            pytest.fail("the second Ctrl-C did not stop the step")
        assert raised.value.args == (signal.SIGINT,) and guard.held is None
        with guard.step():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            reached = True
        assert reached and guard.held == signal.SIGTERM
        with pytest.raises(Raised):
            guard.act()


def test_a_step_that_fails_with_a_stop_held_lets_the_stop_act(handlers):
    # a sweep worker told to stop whose step then fails must still stop, not go on to another cell
    with StepGuard() as guard:
        with pytest.raises(Raised) as raised, guard.step():
            os.kill(os.getpid(), signal.SIGTERM)
            raise RuntimeError("training diverged")
        assert raised.value.args == (signal.SIGTERM,)
        assert isinstance(raised.value.__context__, RuntimeError)  # the failure is kept, chained


def test_an_ignored_signal_stays_ignored():
    # a sweep worker ignores Ctrl-C (its driver handles it): the guard must not start catching it
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StepGuard() as guard:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            with guard.step():
                os.kill(os.getpid(), signal.SIGINT)
            assert guard.held is None
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_stopped_sweep_worker_exits_even_inside_a_queue_put(tmp_path):
    # A sweep worker's SIGTERM handler runs in whatever the main thread was doing, e.g. inside Queue.put's lock
    # (progress to the driver). Running every multiprocessing finalizer there (a Queue's close takes that lock)
    # hung the worker forever; it must exit with 128 + SIGTERM.
    script = tmp_path / "stop_in_put.py"
    script.write_text(
        "import multiprocessing as mp, os, signal\n"
        "from dpbench.sweep import backends\n"
        "if __name__ == '__main__':\n"
        "    q = mp.get_context('spawn').Queue()\n"
        "    q.put('x')  # starts its feeder thread and registers the Queue's finalizers\n"
        "    signal.signal(signal.SIGTERM, backends._stopped)\n"
        "    with q._notempty:  # Queue.put's critical section\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        x = 1\n"
        "    print('not reached')\n"
    )
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 128 + signal.SIGTERM and "not reached" not in res.stdout, res.stderr


def test_a_repeated_sigterm_between_the_step_and_its_checkpoint_stays_held(handlers):
    # A pool's second SIGTERM can land after the step's block has ended but before train's checkpoint: it must
    # not act then (the worker would exit without the checkpoint), only once, when train asks.
    with StepGuard() as guard:
        with guard.step():
            os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # between the blocks
        reached = True
        assert reached and guard.held == signal.SIGTERM
        with pytest.raises(Raised):
            guard.act()
        with pytest.raises(Raised):  # nothing held any more: a signal outside a step acts at once again
            os.kill(os.getpid(), signal.SIGTERM)
