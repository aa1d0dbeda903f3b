"""Which code made a record: one source tree (``dpbench.source.check_one_tree``) and its commit
(``code_version``). The expected versions come from git itself, run in the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dpbench
from dpbench import source
from dpbench.errors import DpbenchError

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]


def _git(root: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(root), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "checkout"
    (root / "dpbench").mkdir(parents=True)
    (root / "dpbench" / "a.py").write_text("x = 1\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "first")
    monkeypatch.setattr(source, "source_root", lambda: root.resolve())
    source.code_version.cache_clear()
    yield root
    source.code_version.cache_clear()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_code_version_names_the_commit_and_a_dirty_code_tree(repo: Path) -> None:
    commit = _git(repo, "rev-parse", "--short=7", "HEAD")
    assert source.code_version() == f"{dpbench.__version__}+g{commit}"
    (repo / "results").mkdir()
    (repo / "results" / "r.json").write_text("{}")  # output beside the code is not a code change
    source.code_version.cache_clear()
    assert source.code_version() == f"{dpbench.__version__}+g{commit}"
    (repo / "dpbench" / "a.py").write_text("x = 2\n")
    source.code_version.cache_clear()
    assert source.code_version() == f"{dpbench.__version__}+g{commit}.dirty"


def test_code_version_outside_git_is_the_package_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "source_root", lambda: tmp_path)
    source.code_version.cache_clear()
    try:
        assert source.code_version() == dpbench.__version__
    finally:
        source.code_version.cache_clear()


def test_this_install_is_one_tree_and_records_carry_its_version() -> None:
    source.check_one_tree()  # the test environment's own install must pass
    from dpbench.host import environment_info

    assert environment_info()["versions"]["dpbench"].startswith(dpbench.__version__)


def test_a_second_checkout_on_pythonpath_is_refused(tmp_path: Path) -> None:
    """A copy of the dpbench package alone, first on PYTHONPATH, would run with the installed envs and
    baselines (how worktree runs mixed two versions): the CLI must refuse, in one line."""
    shutil.copytree(Path(dpbench.__file__).parent, tmp_path / "dpbench", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    code = "import sys; from dpbench.cli import main; sys.exit(main(['list']))"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "two checkouts are mixed" in done.stderr or "reinstall dpbench" in done.stderr


def test_a_missing_subpackage_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DpbenchError, match="reinstall dpbench"):
        source.check_one_tree()
