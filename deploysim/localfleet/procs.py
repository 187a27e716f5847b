"""Small process and file helpers for the local fleet: detached processes, pid checks, atomic JSON.

Only the standard library: the fleet's own processes must start fast.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def write_json(path: Path, data: dict) -> None:
    """Write `data` so that a reader (or a caller killed mid-write) sees the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def spawn_detached(argv: Sequence[str], log_path: Path, *, cwd: Path | None = None) -> int:
    """Start `argv` in its own session (it outlives its caller), output appended to `log_path`; its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=cwd, start_new_session=True, close_fds=True)
    _CHILDREN[proc.pid] = proc
    return proc.pid


_CHILDREN: dict[int, subprocess.Popen] = {}  # children of this process, reaped so they never linger as zombies


def exit_code(pid: int) -> int | None:
    """The exit code of a child this process started and that has ended, else None."""
    proc = _CHILDREN.get(pid)
    return None if proc is None else proc.poll()


def pid_alive(pid: int | None) -> bool:
    """True when `pid` runs (a zombie, i.e. ended but not yet reaped, counts as ended)."""
    if not pid or pid <= 0:
        return False
    proc = _CHILDREN.get(pid)
    if proc is not None and proc.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def cmdline(pid: int) -> list[str] | None:
    """The command line of `pid` (Linux /proc), None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_ours(pid: int | None, *markers: str) -> bool:
    """`pid` runs and its command line holds every marker (guards against a reused pid).

    Where /proc cannot be read the pid's liveness alone decides.
    """
    if not pid_alive(pid):
        return False
    args = cmdline(pid)  # type: ignore[arg-type]
    if args is None:
        return True
    return all(marker in args for marker in markers)


def stop_pid(pid: int, *, timeout_s: float = 5.0) -> bool:
    """SIGTERM, wait up to `timeout_s`, then SIGKILL; True once the process is gone."""
    if not pid_alive(pid):
        return True
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def http_get_json(url: str, *, timeout_s: float = 1.0) -> tuple[int | None, dict | None]:
    """(status, JSON body) of a GET; (None, None) when nothing answers, or the answer is cut short
    (a host restarted mid-response by a deploy) or is not HTTP."""
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
    except (OSError, ValueError, http.client.HTTPException):
        return None, None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    return status, data if isinstance(data, dict) else None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 3) -> str:
    """The last lines of a log file, joined with ' | ' (for one-line error messages)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.strip().splitlines()[-lines:] if line.strip()]
    return " | ".join(kept)


PYTHON = sys.executable
