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
