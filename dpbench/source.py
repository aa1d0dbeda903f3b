"""Which dpbench code ran: one source tree, and its version for the records.

dpbench is three import packages from three folders (pyproject's ``package-dir``): ``dpbench``,
``dpbench.envs`` (``envs/``) and ``dpbench.baselines`` (``baselines/``). An editable install maps the
last two to the checkout it was made from, so a second checkout put first on ``PYTHONPATH`` (a git
worktree running records beside the main one) gets its own ``dpbench`` but the *installed* checkout's
envs and baselines: a silent mix of two versions of the code. :func:`check_one_tree` refuses that
mix, and :func:`code_version` says which commit a record's code came from.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from functools import lru_cache
from pathlib import Path

from dpbench import __version__
from dpbench.errors import DpbenchError

SUBPACKAGES = ("dpbench.envs", "dpbench.baselines")
CODE_PATHS = ("dpbench", "envs", "baselines", "pyproject.toml")  # what a dirty tree is judged on


def package_dir(name: str) -> Path:
    """The folder that import package ``name`` loads from (without importing it, beyond its parent)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DpbenchError(f"{name} cannot be found: reinstall dpbench (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def source_root() -> Path:
    """The folder holding ``dpbench/`` (the checkout for a source or editable install)."""
    return package_dir("dpbench").parent


def check_one_tree() -> None:
    """Raise DpbenchError unless ``dpbench.envs`` and ``dpbench.baselines`` load from the same tree as
    ``dpbench``: ``ROOT/envs`` (source or editable layout) or ``ROOT/dpbench/envs`` (a wheel)."""
    core = package_dir("dpbench")
    for name in SUBPACKAGES:
        where = package_dir(name)
        if not any(os.path.samefile(where.parent, tree) for tree in (core.parent, core)):
            raise DpbenchError(
                f"{name} loads from {where}, but dpbench from {core}: two checkouts are mixed (an editable "
                f"install of one and PYTHONPATH pointing at another). Run from one checkout: give it its own "
                f"environment (scripts/worktree_env.sh CHECKOUT, or python -m venv; pip install -e .) or drop it from "
                f"PYTHONPATH"
            )


@lru_cache(maxsize=1)
def code_version() -> str:
    """dpbench's version and, in a git checkout, its commit: ``"0.1.0+g899a5dd"``, with ``.dirty``
    when the code folders (:data:`CODE_PATHS`) differ from that commit; just ``"0.1.0"`` outside git.

    Read once per process and kept: the CLI and each sweep worker call it at start, so a commit made
    while a run goes on does not relabel the code it loaded. Checks :func:`check_one_tree` first."""
    check_one_tree()
    root = source_root()

    def git(*args: str) -> str | None:
        try:
            # no optional locks: a status refresh must not hold index.lock against the user's own git
            command = ["git", "--no-optional-locks", "-C", str(root), *args]
            done = subprocess.run(command, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit, top = git("rev-parse", "--short=7", "HEAD"), git("rev-parse", "--show-toplevel")
    if not commit or not top or Path(top).resolve() != root:
        return __version__  # an installed wheel, or a folder inside someone else's repository
    changes = git("status", "--porcelain", "--", *CODE_PATHS)
    return f"{__version__}+g{commit}" + (".dirty" if changes else "")
