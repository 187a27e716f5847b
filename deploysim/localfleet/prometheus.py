"""A real Prometheus server for the local fleet: write its configuration, start it, wait, stop it.

Uses the `prometheus` binary found on PATH (Debian/Ubuntu: `apt-get install prometheus`; or the
release tarball from prometheus.io). It scrapes every host of the fleet every second by default,
so that alarm periods of a few seconds have data.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

import yaml

from . import procs

JOB = "deploysim-local"


class PrometheusError(RuntimeError):
    """Prometheus cannot be found, started or reached; the message is one line for the user."""


def find_prometheus() -> str:
    """Path of the `prometheus` binary, or a PrometheusError that says how to get it."""
    path = shutil.which("prometheus")
    if path is None:
        raise PrometheusError("the `prometheus` binary is not on PATH; install it (Debian/Ubuntu: "
                              "`sudo apt-get install prometheus`, or `make system-deps`) or use "
                              "`--metrics probe`")
    return path


def write_config(path: Path, targets: Mapping[str, str], *, scrape_interval_s: float = 1.0) -> Path:
    """A prometheus.yml scraping every target (host name -> "127.0.0.1:PORT") as job deploysim-local.

    Each target keeps its address as the `instance` label (the queries select on it) and carries
    its host name as the `host` label."""
    ms = int(round(scrape_interval_s * 1000))
    interval = f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"  # Prometheus durations: no "0.5s"
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [{
            "job_name": JOB,
            "static_configs": [{"targets": [address], "labels": {"host": name}} for name, address in targets.items()],
        }],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by deploysim local up; scrapes every host of the local fleet.\n"
                    + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


class PrometheusServer:
    """One Prometheus process whose state (pid, port) lives in `directory`/state.json."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory).resolve()
        self.config_path = self.dir / "prometheus.yml"
        self.data_path = self.dir / "data"
        self.log_path = self.dir / "prometheus.log"
        self.state_path = self.dir / "state.json"

    @property
    def state(self) -> dict:
        return procs.read_json(self.state_path) or {}

    @property
    def url(self) -> str | None:
        return self.state.get("url")

    def running(self) -> bool:
        pid = self.state.get("pid")
        return procs.is_ours(pid, f"--config.file={self.config_path}")

    def ready(self, *, timeout_s: float = 1.0) -> bool:
        url = self.url
        if not url:
            return False
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=timeout_s) as response:
                return response.status == 200
        except (OSError, ValueError):
            return False

    def start(self, targets: Mapping[str, str], *, port: int = 9090, host: str = "127.0.0.1",
              scrape_interval_s: float = 1.0, retention: str = "1d", timeout_s: float = 30.0) -> str:
        """Write the configuration and start Prometheus (a running one is reloaded by a restart only if
        its port differs); wait for /-/ready; its URL."""
        binary = find_prometheus()
        write_config(self.config_path, targets, scrape_interval_s=scrape_interval_s)
        url = f"http://{host}:{port}"
        if self.running():
            if self.state.get("port") == port:
                self._reload()
                return self._wait_ready(url, self.state["pid"], timeout_s)
            self.stop()
        if procs.port_in_use(port, host):
            raise PrometheusError(f"port {port} on {host} is already in use; pick another with --prometheus-port")
        self.data_path.mkdir(parents=True, exist_ok=True)
        argv = [binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.data_path}",
                f"--web.listen-address={host}:{port}", f"--storage.tsdb.retention.time={retention}",
                "--web.enable-lifecycle"]
        pid = procs.spawn_detached(argv, self.log_path, cwd=self.dir)
        procs.write_json(self.state_path, {"pid": pid, "port": port, "url": url, "started_at": time.time()})
        return self._wait_ready(url, pid, timeout_s)

    def _reload(self) -> None:
        import urllib.request

        try:
            urllib.request.urlopen(urllib.request.Request(f"{self.url}/-/reload", method="POST"), timeout=5).read()
        except OSError as error:
            raise PrometheusError(f"cannot reload Prometheus at {self.url}: {error}") from None

    def _wait_ready(self, url: str, pid: int, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not procs.pid_alive(pid):
                log = procs.tail(self.log_path, 2)
                raise PrometheusError("Prometheus exited at start" + (f": {log}" if log else "")
                                      + f" (log: {self.log_path})")
            if self.ready(timeout_s=0.5):
                return url
            time.sleep(0.05)
        raise PrometheusError(f"Prometheus at {url} not ready after {timeout_s:g}s (log: {self.log_path})")

    def wait_scraping(self, addresses: list[str] | tuple[str, ...], *, timeout_s: float = 30.0) -> None:
        """Wait until Prometheus has scraped every address successfully (`up` == 1). Prometheus
        applies a new configuration's targets on its next 5-second tick, so this can take seconds."""
        import json
        import urllib.parse
        import urllib.request

        wanted = set(addresses)
        deadline = time.monotonic() + timeout_s
        seen: set[str] = set()
        while True:
            query = urllib.parse.urlencode({"query": f'up{{job="{JOB}"}} == 1'})
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=2) as response:
                    data = json.load(response)
                seen = {r["metric"].get("instance", "") for r in data.get("data", {}).get("result", [])}
            except (OSError, ValueError):
                pass
            if wanted <= seen:
                return
            if time.monotonic() >= deadline:
                missing = sorted(wanted - seen)
                raise PrometheusError(f"Prometheus at {self.url} has not scraped {len(missing)} host(s) after "
                                      f"{timeout_s:g}s: {', '.join(missing[:3])}")
            time.sleep(0.1)

    def stop(self, *, timeout_s: float = 10.0) -> bool:
        pid = self.state.get("pid")
        stopped = True
        if self.running() and pid is not None:
            stopped = procs.stop_pid(int(pid), timeout_s=timeout_s)
        if stopped and self.state_path.exists():
            state = self.state
            state["pid"] = None
            procs.write_json(self.state_path, state)
        return stopped
