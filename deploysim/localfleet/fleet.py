"""A real fleet on this machine: one demo-service process per host, on loopback ports.

The fleet directory holds everything needed to find the processes again, so any command (or a
caller killed with -9 halfway through a deploy) can pick up where things are:

    fleet.json          hosts and their ports, the versions file, the API mix
    hosts/<host>.json   last recorded state: version, pid, phase (running | deploying | failed | stopped)
    hosts/<host>.lock   held (flock) while a deploy or stop of that host runs
    logs/<host>.log     the host's output (errors it logged, start and stop lines)

The recorded state is a hint; the truth is what answers on the host's port (`/version` gives the
version and the pid). Every operation starts from the truth, so each is safe to repeat.
Processes are started in their own session: they outlive whoever started them.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .service import VersionsFileError, load_versions

SERVICE_SCRIPT = Path(__file__).with_name("service.py")
CONFIG_FILE = "fleet.json"


class FleetError(RuntimeError):
    """The fleet cannot be used as asked; the message is one line for the user."""


@dataclass(frozen=True)
class Outcome:
    """What a start, deploy or stop of one host did; `ok` only when success was seen."""

    host: str
    ok: bool
    detail: str
    version: str | None = None


@dataclass(frozen=True)
class HostStatus:
    name: str
    port: int
    recorded_version: str | None
    phase: str
    live_version: str | None  # None: nothing answers on the port
    pid: int | None
    healthy: bool


class LocalFleet:
    """The processes of one fleet directory."""

    def __init__(self, fleet_dir: str | os.PathLike):
        self.dir = Path(fleet_dir).resolve()
        config = procs.read_json(self.dir / CONFIG_FILE)
        if config is None:
            raise FleetError(f"no local fleet in {self.dir} ({CONFIG_FILE} missing); "
                             f"start one with `deploysim local up SCENARIO --dir {fleet_dir}`")
        self.config = config
        self.hosts: dict[str, int] = {str(k): int(v) for k, v in config["hosts"].items()}
        self.bind: str = config.get("bind", "127.0.0.1")
        self.apis: dict[str, float] = dict(config.get("apis") or {"All": 1.0})
        self.versions_file = Path(config["versions_file"])
        if not self.versions_file.is_absolute():
            self.versions_file = self.dir / self.versions_file

    # ------------------------------------------------------------ creation and lookup

    @classmethod
    def create(cls, fleet_dir: str | os.PathLike, hosts: Mapping[str, int], versions_file: str | os.PathLike,
               apis: Mapping[str, float] | None = None, bind: str = "127.0.0.1") -> LocalFleet:
        """Write the fleet's configuration (nothing starts yet). An existing fleet keeps its ports."""
        directory = Path(fleet_dir).resolve()
        load_versions(versions_file)  # fail early on a bad versions file
        existing = procs.read_json(directory / CONFIG_FILE)
        if existing is not None and dict(existing.get("hosts", {})) != dict(hosts):
            live = [n for n, p in existing.get("hosts", {}).items() if procs.port_in_use(int(p), bind)]
            if live:
                raise FleetError(f"{directory} already holds a running fleet with other hosts; "
                                 f"run `deploysim local down --dir {fleet_dir}` first")
        procs.write_json(directory / CONFIG_FILE, {
            "hosts": dict(hosts),
            "versions_file": str(Path(versions_file).resolve()),
            "apis": dict(apis or {"All": 1.0}),
            "bind": bind,
        })
        return cls(directory)

    def _check(self, name: str) -> int:
        if name not in self.hosts:
            raise FleetError(f"host {name!r} is not in the fleet at {self.dir}")
        return self.hosts[name]

    def address(self, name: str) -> str:
        return f"{self.bind}:{self._check(name)}"

    def url(self, name: str, path: str = "") -> str:
        return f"http://{self.address(name)}{path}"

    def versions(self) -> dict:
        return load_versions(self.versions_file)

    def log_path(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def _state_path(self, name: str) -> Path:
        return self.dir / "hosts" / f"{name}.json"

    def state(self, name: str) -> dict:
        return procs.read_json(self._state_path(name)) or {"name": name, "port": self._check(name), "phase": "stopped"}

    def _record(self, name: str, **fields) -> dict:
        state = self.state(name)
        state.update(fields, name=name, port=self.hosts[name], updated_at=time.time())
        procs.write_json(self._state_path(name), state)
        return state

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        path = self.dir / "hosts" / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel if the holder dies
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ------------------------------------------------------------ what runs

    def identity(self, name: str, *, timeout_s: float = 1.0) -> dict | None:
        """What answers on the host's port: {version, pid, host, port}; None when nothing does."""
        status, body = procs.http_get_json(self.url(name, "/version"), timeout_s=timeout_s)
        if status != 200 or not body or "version" not in body:
            return None
        return body

    def live_version(self, name: str, *, timeout_s: float = 1.0) -> str | None:
        ident = self.identity(name, timeout_s=timeout_s)
        return None if ident is None else str(ident["version"])

    def healthy(self, name: str, *, timeout_s: float = 1.0) -> bool:
        status, body = procs.http_get_json(self.url(name, "/healthz"), timeout_s=timeout_s)
        return status == 200 and body is not None and body.get("status") == "ok"

    def _our_pid(self, name: str, pid: int | None) -> bool:
        return procs.is_ours(pid, "--host-name", name, "--port", str(self.hosts[name]))

    def status(self) -> list[HostStatus]:
        out = []
        for name, port in self.hosts.items():
            state = self.state(name)
            ident = self.identity(name)
            out.append(HostStatus(
                name=name, port=port, recorded_version=state.get("version"), phase=state.get("phase", "stopped"),
                live_version=None if ident is None else str(ident["version"]),
                pid=None if ident is None else int(ident["pid"]),
                healthy=ident is not None and self.healthy(name)))
        return out

    # ------------------------------------------------------------ changing what runs

    def _spawn(self, name: str, version: str) -> int:
        port = self.hosts[name]
        argv = [procs.PYTHON, str(SERVICE_SCRIPT), "--port", str(port), "--host-name", name,
                "--version", version, "--versions-file", str(self.versions_file), "--bind", self.bind,
                "--apis", ",".join(self.apis)]
        return procs.spawn_detached(argv, self.log_path(name), cwd=self.dir)

    def _wait_serving(self, name: str, version: str, pid: int, deadline: float) -> Outcome:
        """Wait until `pid` answers /healthz 200 on the host's port with `version`."""
        last = "no answer"
        while True:
            if not procs.pid_alive(pid):
                code = procs.exit_code(pid)
                why = f"exited with code {code}" if code is not None else "exited"
                log = procs.tail(self.log_path(name), 2)
                return Outcome(name, False, f"{version} {why}" + (f": {log}" if log else ""), version)
            status, body = procs.http_get_json(self.url(name, "/healthz"), timeout_s=1.0)
            if status is not None and body and body.get("pid") == pid and body.get("version") == version:
                if status == 200:
                    return Outcome(name, True, f"{name} runs {version} (pid {pid})", version)
                last = f"/healthz answers {status}"
            elif status is not None:
                last = f"port answered by another process ({body})"
            if time.monotonic() >= deadline:
                return Outcome(name, False, f"{version} not healthy in time ({last})", version)
            time.sleep(0.05)

    def _stop_locked(self, name: str, deadline: float) -> str | None:
        """Stop whatever of ours runs for the host; an error text if the port stays taken."""
        port = self.hosts[name]
        ident = self.identity(name, timeout_s=0.5)
        candidates = {self.state(name).get("pid")}
        if ident is not None:
            candidates.add(ident.get("pid"))
        stopped_ours = False
        for pid in candidates:
            if isinstance(pid, int) and self._our_pid(name, pid):
                procs.stop_pid(pid, timeout_s=max(0.5, min(5.0, deadline - time.monotonic())))
                stopped_ours = True
        if not stopped_ours:  # nothing of ours ran: a taken port is someone else's, no use waiting long
            deadline = min(deadline, time.monotonic() + 1.0)
        while procs.port_in_use(port, self.bind):
            if time.monotonic() >= deadline:
                ident = self.identity(name, timeout_s=0.5)
                who = f" (pid {ident.get('pid')}, not started by this fleet)" if ident else ""
                return f"port {port} is still in use{who}"
            time.sleep(0.05)
        return None

    def deploy(self, name: str, version: str, *, timeout_s: float = 30.0) -> Outcome:
        """Put `version` on host `name`: stop its process, start the version on the same port, wait
        for /healthz. Already running and healthy on `version`: nothing to do. Safe to repeat."""
        self._check(name)
        deadline = time.monotonic() + timeout_s
        try:
            versions = self.versions()
        except VersionsFileError as error:
            return Outcome(name, False, str(error), version)
        if version not in versions:
            return Outcome(name, False, f"unknown version {version!r}; {self.versions_file.name} defines "
                                        f"{', '.join(versions)}", version)
        with self._locked(name):
            ident = self.identity(name, timeout_s=1.0)
            if ident is not None and ident.get("version") == version and self.healthy(name):
                self._record(name, version=version, pid=ident.get("pid"), phase="running")
                return Outcome(name, True, f"{name} already runs {version} (pid {ident.get('pid')})", version)
            previous = ident.get("version") if ident is not None else self.state(name).get("version")
            self._record(name, version=version, previous=previous, phase="deploying")
            _pause_for_tests("after_intent")
            problem = self._stop_locked(name, deadline)
            if problem is not None:
                self._record(name, phase="failed", detail=problem)
                return Outcome(name, False, problem, version)
            _pause_for_tests("after_stop")
            pid = self._spawn(name, version)
            self._record(name, pid=pid)
            _pause_for_tests("after_spawn")
            outcome = self._wait_serving(name, version, pid, deadline)
            self._record(name, phase="running" if outcome.ok else "failed", detail=outcome.detail)
            if outcome.ok and previous and previous != version:
                outcome = Outcome(name, True, f"{name}: {previous} -> {version} (pid {pid})", version)
            return outcome

    def start(self, version: str | None = None, names: Sequence[str] | None = None, *,
              timeout_s: float = 30.0) -> list[Outcome]:
        """Start every host (or `names`) that is not serving: on `version`, else on its recorded one.

        Hosts already serving are left alone. Processes are spawned together, then awaited."""
        names = list(names or self.hosts)
        versions = self.versions()
        deadline = time.monotonic() + timeout_s
        outcomes: dict[str, Outcome] = {}
        pending: dict[str, tuple[str, int]] = {}
        for name in names:
            self._check(name)
            ident = self.identity(name, timeout_s=0.5)
            if ident is not None:
                self._record(name, version=ident.get("version"), pid=ident.get("pid"), phase="running")
                outcomes[name] = Outcome(name, True, f"{name} already runs {ident.get('version')}",
                                         ident.get("version"))
                continue
            target = version or self.state(name).get("version")
            if not target:
                outcomes[name] = Outcome(name, False, f"{name} has no recorded version; give one", None)
                continue
            if target not in versions:
                outcomes[name] = Outcome(name, False, f"unknown version {target!r}", target)
                continue
            with self._locked(name):
                problem = self._stop_locked(name, deadline)
                if problem is not None:
                    outcomes[name] = Outcome(name, False, problem, target)
                    continue
                pid = self._spawn(name, target)
                self._record(name, version=target, pid=pid, phase="deploying")
                pending[name] = (target, pid)
        for name, (target, pid) in pending.items():
            outcome = self._wait_serving(name, target, pid, deadline)
            self._record(name, phase="running" if outcome.ok else "failed", detail=outcome.detail)
            outcomes[name] = outcome
        return [outcomes[n] for n in names]

    def recover(self, *, timeout_s: float = 30.0) -> list[Outcome]:
        """After a crash or a killed command: record what really runs, restart hosts that are down on
        their recorded version (the one their last deploy asked for)."""
        return self.start(None, timeout_s=timeout_s)

    def stop(self, names: Sequence[str] | None = None, *, timeout_s: float = 10.0) -> list[Outcome]:
        out = []
        for name in list(names or self.hosts):
            self._check(name)
            with self._locked(name):
                problem = self._stop_locked(name, time.monotonic() + timeout_s)
                self._record(name, phase="stopped" if problem is None else "failed", pid=None)
                out.append(Outcome(name, problem is None, problem or f"{name} stopped"))
        return out


def _pause_for_tests(point: str) -> None:
    """Tests kill a deploy at a chosen point: DEPLOYSIM_LOCALFLEET_PAUSE=<point>:<seconds>."""
    spec = os.environ.get("DEPLOYSIM_LOCALFLEET_PAUSE", "")
    if spec.startswith(point + ":"):
        time.sleep(float(spec.split(":", 1)[1]))
