"""The ``dpbench`` command line: list | config | data | collect | run | sweep | eval | table | plot.

This module holds ``main``; the argument grammar is ``dpbench.cli_args`` and the subcommands live in
``dpbench.commands`` and ``dpbench.data_commands``. User-facing problems raise ``DpbenchError`` and are printed here in
one line with exit status 2.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import warnings

from dpbench.cli_args import build_parser
from dpbench.data_commands import cmd_collect
from dpbench.errors import DpbenchError, is_interrupt, reader_gone
from dpbench.host import THREADS_ENV
from dpbench.source import code_version

_TERMINATED = threading.Event()  # set by SIGTERM: the run stops as after Ctrl-C, and exits 143 as a killed job does


def _terminated(signum: int, frame: object) -> None:
    _TERMINATED.set()
    raise KeyboardInterrupt  # `kill` (SIGTERM) stops a run as cleanly as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    """The ``dpbench`` entry point: parse ``argv`` (default ``sys.argv[1:]``) and run the subcommand. Returns its exit
    status: 0 on success, 2 after printing a DpbenchError in one line, 130 on Ctrl-C and 143 on SIGTERM (128 + the
    signal, as a shell reports a job killed by it; finished seeds are saved, rerunning resumes the rest)."""
    parser = build_parser()
    args, stray = parser.parse_known_args(argv)
    if stray:  # argparse would name them under the top level's usage; the subcommand's says what it takes
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(stray)}")
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if getattr(args, "threads", None):
        os.environ[THREADS_ENV] = str(args.threads)  # read by plan_workers here and inherited by workers
    in_main_thread = threading.current_thread() is threading.main_thread()
    _TERMINATED.clear()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    try:
        code_version()  # one source tree (else DpbenchError), and its commit read now, before any run
        code = args.func(args)
        sys.stdout.flush()  # a reader that went away (`dpbench list | head`) shows here, not at exit
        return code
    except BrokenPipeError:  # nothing is left to print to
        return reader_gone()
    except DpbenchError as exc:
        print(f"dpbench: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemError) as exc:
        if not is_interrupt(exc):
            raise
        if args.func is cmd_collect:
            saved = "The robomimic episodes kept so far are saved beside the file (.<file>.partial/)"
        else:
            saved = "Finished seeds are saved and unfinished ones resume from their last checkpoint"
        print(f"\ndpbench: interrupted. {saved}: rerun the same command.", file=sys.stderr)
        return 128 + signal.SIGTERM if _TERMINATED.is_set() else 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def console_main() -> None:
    """The ``dpbench`` console script: ``main()``, then exit with its status. After a one-line error (status 2) or
    an interrupt (130; 143 after SIGTERM) the process is ending, so debris a stopped library call leaves for the
    interpreter's shutdown is not printed under that line: a corrupt zarr chunk, or Ctrl-C while a dataset loads,
    leaves zarr's other chunk reads pending in its event loop, each of which logs "Task was destroyed but it is
    pending!" or "Event loop is closed" when collected (hundreds of lines)."""
    code = main()
    if code in (2, 130, 143):
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        sys.unraisablehook = lambda _: None
        warnings.simplefilter("ignore")  # "coroutine ... was never awaited"
    sys.exit(code)


if __name__ == "__main__":
    console_main()
