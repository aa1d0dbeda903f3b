"""Per-cell locks: two sweeps sharing a results dir never train the same cell at once."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path


class CellLock:
    """Exclusive lock on DIR/lock (a cell's ``PreparedCell.lock_dir``). flock, so the kernel releases it when
    the holder exits or is killed (no stale locks to clean); the file keeps the last holder's pid and host for
    messages."""

    def __init__(self, workdir: Path) -> None:
        self.path = Path(workdir) / "lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting (creating the cell's work dir); False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd
        return True

    def is_held(self) -> bool:
        """Whether another process holds the lock now. Read-only: creates and writes nothing (a shared
        lock taken and dropped at once fails only while someone holds the exclusive one)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:  # no lock file: nobody has ever held it
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def release(self) -> None:
        """Let go of the lock (a no-op when not held)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def holder(self) -> str:
        """Who holds (or last held) the lock, "pid N on HOST", for messages."""
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"
