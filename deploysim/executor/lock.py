"""One executor per state directory (an exclusive `flock` on `STATE_DIR/lock`) and one rollout per
target group (`TargetGroupLock`), each held for the process's lifetime (the kernel releases a
`flock` when the process dies, even by `kill -9`, so no stale lock remains).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rollout import Rollout

LOCK_FILE = "lock"


class StateDirLocked(RuntimeError):
    """Another executor holds the state directory."""


class _HeldFlock:
    """An exclusive, non-blocking `flock` on `self.path`, holding a few lines that say who holds it."""

    path: Path
    _fd: int | None = None

    def _take(self, holder_lines: str) -> str | None:
        """Lock the file and write `holder_lines` into it; None on success, else the holder's lines."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace")
            os.close(fd)
            return holder
        os.ftruncate(fd, 0)
        os.write(fd, holder_lines.encode())
        self._fd = fd
        return None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __exit__(self, *exc) -> None:
        self.release()


class StateDirLock(_HeldFlock):
    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / LOCK_FILE

    def acquire(self) -> StateDirLock:
        holder = self._take(f"{os.getpid()}\n")
        if holder is not None:
            pid = holder.strip()
            who = f" (pid {pid})" if pid.isdigit() else ""
            raise StateDirLocked(f"another executor{who} is running on {self.path.parent}; "
                                 "wait for it to finish or stop it (Ctrl-C), then use --resume")
        return self

    def __enter__(self) -> StateDirLock:
        return self.acquire()


def holder_pid(state_dir: Path) -> int | None:
    """The pid of the executor holding the state directory, None if none does (read-only check)."""
    path = Path(state_dir) / LOCK_FILE
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


LOCK_DIR_ENV = "DEPLOYSIM_LOCK_DIR"
"""Where target-group locks live; default `deploysim-locks-UID` in the system's temporary directory."""


def target_group_key(rollout: Rollout) -> str:
    """What makes two rollouts touch the same targets: the adapter (the local fleet's directory, or
    the deploy command) and every target's name and address, whatever the version or state directory."""
    adapter = rollout.inventory.adapter
    where = (str((rollout.inventory_dir / adapter.fleet_dir).resolve()) if adapter.kind == "local" and adapter.fleet_dir
             else list(adapter.deploy or []))
    ident = {"adapter": adapter.kind, "where": where, "targets": sorted((t.name, t.address) for t in rollout.targets)}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


class TargetGroupLock(_HeldFlock):
    """One rollout at a time per target group (as a deployment tool refuses a second active
    deployment on a group): an exclusive `flock` on a file named after `target_group_key`, held
    for the process's life, in DEPLOYSIM_LOCK_DIR (default: the temporary directory)."""

    def __init__(self, rollout: Rollout, state_dir: Path, lock_dir: Path | None = None):
        default = Path(tempfile.gettempdir()) / f"deploysim-locks-{os.getuid()}"
        root = lock_dir or Path(os.environ.get(LOCK_DIR_ENV) or default)
        self.path = Path(root) / f"{target_group_key(rollout)}.lock"
        self.state_dir = Path(state_dir).resolve()

    def acquire(self) -> TargetGroupLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        holder = self._take(f"{os.getpid()}\n{self.state_dir}\n")
        if holder is not None:
            lines = holder.strip().split("\n", 1)
            who = f" (pid {lines[0]}, state directory {lines[1]})" if len(lines) == 2 else ""
            raise StateDirLocked(f"another rollout{who} is running on these targets; one rollout at a time per "
                                 "target group: wait for it to finish, or stop it and --resume it")
        return self

    def __enter__(self) -> TargetGroupLock:
        return self.acquire()
