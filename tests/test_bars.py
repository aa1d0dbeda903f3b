"""Progress bars draw on a terminal only: a log gets the lines written through them, not their redraws."""

from __future__ import annotations

import io

from dpbench.bars import terminal_bar
from dpbench.sweep.progress import ProgressView


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _drive(stream: io.StringIO, **kwargs: object) -> str:
    with terminal_bar(total=3, desc="train", file=stream, mininterval=0, **kwargs) as bar:
        for _ in range(3):
            bar.update(1)
        bar.write("step 3: score 0.5", file=stream)
    return stream.getvalue()


def test_a_bar_draws_on_a_terminal_and_writes_only_its_lines_into_a_file():
    drawn = _drive(FakeTerminal())
    assert "\r" in drawn and "3/3" in drawn and "step 3: score 0.5" in drawn
    logged = _drive(io.StringIO())
    assert logged == "step 3: score 0.5\n"
    assert _drive(FakeTerminal(), disable=True) == "step 3: score 0.5\n"  # --quiet: off on a terminal too


def test_a_sweeps_bars_stay_off_a_log_but_its_lines_reach_it(capsys):
    view = ProgressView(total=2, done=0, enabled=True)  # stderr is pytest's capture, not a terminal
    view.handle(("start", "cell-a", "bc/pusht seed 0", 0, 10))
    view.handle(("step", "cell-a", 10, "loss=0.1"))
    view.handle(("line", "cell-a", "[bc/pusht seed 0] step 10: score 0.5"))
    view.handle(("end", "cell-a"))
    view.cell_done("[dpbench] bc pusht seed 0: max 0.5")
    view.close()
    printed = capsys.readouterr()
    assert printed.out == "[bc/pusht seed 0] step 10: score 0.5\n[dpbench] bc pusht seed 0: max 0.5\n"
    assert printed.err == ""


def test_a_log_gets_a_status_line_every_few_minutes_and_where_a_resume_starts(monkeypatch):
    # in a log a robomimic cell's first evaluation can be an hour away: the log must tell a working job from a
    # hung one without a bar's redraws
    clock = [1000.0]
    monkeypatch.setattr("dpbench.bars.time.monotonic", lambda: clock[0])
    log = io.StringIO()
    bar = terminal_bar(total=45000, initial=29250, desc="lstm_gmm/transport seed 1", unit="step", file=log)
    assert log.getvalue() == "[lstm_gmm/transport seed 1] from step 29250 of 45000\n"
    bar.set_postfix(loss="0.0123", lr="1.0e-04")
    for _ in range(100):  # 100 steps in 299 s: not yet
        clock[0] += 2.99
        bar.update(1)
    assert log.getvalue().count("\n") == 1
    clock[0] += 1.0  # 300 s after the start: 101 steps done, 29351 of 45000 (65.2%), 101 / 300 = 0.337 step/s
    bar.update(1)
    assert log.getvalue().splitlines()[1] == (
        "[lstm_gmm/transport seed 1] step 29351/45000 (65%), 0.337 step/s, loss=0.0123, lr=1.0e-04"
    )
    clock[0] += 299.0
    bar.update(1)
    assert log.getvalue().count("\n") == 2  # the next one 300 s after the last
    # an evaluation's 600 s pause, then training again: the rate counts training only, since unpause()
    clock[0] += 600.0
    bar.unpause()
    for _ in range(6):  # the line is overdue; it waits for a 30 s window: 6 steps in 30 s, 0.2 step/s (not 6/630)
        clock[0] += 5.0
        bar.update(1)
    assert log.getvalue().splitlines()[2].startswith("[lstm_gmm/transport seed 1] step 29358/45000 (65%), 0.2 step/s")
    assert terminal_bar(total=5, initial=3, file=FakeTerminal()).n == 3  # a terminal still gets tqdm's bar


def test_a_log_bar_iterates_and_takes_tqdms_other_calls():
    log = io.StringIO()
    bar = terminal_bar(range(4), desc="waves", initial=0, file=log)
    assert list(bar) == [0, 1, 2, 3] and bar.n == 4 and bar.total == 4
    bar.set_description("other")  # tqdm's drawing calls: nothing to draw
    bar.refresh()
    terminal_bar(total=None, initial=5, unit="ep", file=log)
    assert log.getvalue() == "from ep 5\n"  # no total: no "of None"
