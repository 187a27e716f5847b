"""A load generator: real HTTP requests to every host of a local fleet at a steady rate.

Run as ``python -m deploysim.localfleet.loadgen --fleet-dir DIR --rate 20`` (the CLI starts it
detached, by file path). Each host gets `--rate` requests per second, spread over the fleet's API
mix, unless a traffic weight is set (DIR/weights.json, written by the local adapter's `set_weight`):
then the hosts running that version share that percentage of the fleet's requests and the others
the rest, as a traffic router splits them (read again every second, with each host's recorded
version). The API mix is fleet.json `apis` (e.g. Get 0.8, Create 0.15, Delete 0.05: `GET /api/Get`,
`POST /api/Create`, `DELETE /api/Delete`). A host that is down (being deployed) costs a failed connection and a retry on
the next tick; the generator never bursts to catch up. Every 10 s it logs what it sent and got.

Only the standard library, so that it starts fast.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import selectors
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

WEIGHTS_FILE = "weights.json"
"""The traffic weight of a fleet directory: {"version", "weight_pct"} (none: every host alike)."""

ResultHook = Callable[[float, str, int | None, float], None]
"""Called after every request: (Unix time sent, API, HTTP status or None when no answer, seconds taken)."""

METHODS = {"Get": "GET", "List": "GET", "Describe": "GET", "Create": "POST", "Put": "PUT", "Update": "PUT",
           "Delete": "DELETE"}


def method_for(api: str) -> str:
    return METHODS.get(api, "GET")


def connection_dropped(conn: http.client.HTTPConnection) -> bool:
    """Has the server closed this idle keep-alive connection, so that the next request on it would
    fail before the server ever saw it? (A host restarted by a deploy closes every connection.)

    An idle connection with something to read has reached end of file, or holds bytes nobody asked
    for: either way it is not reusable. Checking before reuse, as HTTP client libraries do, keeps
    the client's own stale connections from being counted as the service's failed requests."""
    if conn.sock is None:
        return False
    with selectors.DefaultSelector() as selector:
        selector.register(conn.sock, selectors.EVENT_READ)
        return bool(selector.select(timeout=0))


class HostLoad:
    """`workers` threads sending to one host; together `rate` requests per second."""

    def __init__(self, address: str, rate: float, apis: Mapping[str, float], stop: threading.Event,
                 seed: int | None = None, timeout_s: float = 5.0, on_result: ResultHook | None = None,
                 path: str = "/api/{api}"):
        address = address.split("://", 1)[-1].rstrip("/")
        self.host, port = address.rsplit(":", 1)
        self.on_result = on_result
        self.path = path
        self.port = int(port)
        self.rate = rate
        self.names = list(apis)
        self.weights = [float(apis[a]) for a in self.names]
        self.stop = stop
        self.timeout_s = timeout_s
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.sent = self.ok = self.server_errors = self.failed = 0
        # Enough workers that a slow version (say 1 s per request) still gets its rate.
        self.workers = max(1, min(32, math.ceil(rate * 1.0)))

    def run(self) -> list[threading.Thread]:
        threads = []
        for index in range(self.workers):
            thread = threading.Thread(target=self._worker, args=(index,), daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def _worker(self, index: int) -> None:
        next_at = time.monotonic() + index / max(self.rate, 1e-9)  # workers evenly staggered
        conn: http.client.HTTPConnection | None = None
        while not self.stop.is_set():
            rate = self.rate  # a traffic weight may change it at any time
            if rate <= 0:  # this host gets no share of the traffic for now
                if self.stop.wait(0.2):
                    break
                next_at = time.monotonic()
                continue
            interval = self.workers / rate
            wait = next_at - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                break
            next_at = max(next_at + interval, time.monotonic())  # late: skip, never burst
            with self.lock:
                api = self.random.choices(self.names, self.weights)[0]
            sent_at, started = time.time(), time.perf_counter()
            try:
                if conn is not None and connection_dropped(conn):
                    conn.close()
                    conn = None
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
                conn.request(method_for(api), self.path.replace("{api}", api))
                response = conn.getresponse()
                response.read()
                code = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                with self.lock:
                    self.sent += 1
                    self.failed += 1
                if self.on_result is not None:
                    self.on_result(sent_at, api, None, time.perf_counter() - started)
                continue
            if self.on_result is not None:
                self.on_result(sent_at, api, code, time.perf_counter() - started)
            with self.lock:
                self.sent += 1
                if code >= 500:
                    self.server_errors += 1
                elif code < 400:
                    self.ok += 1

    def counts(self) -> dict:
        with self.lock:
            return {"sent": self.sent, "ok": self.ok, "5xx": self.server_errors, "failed": self.failed}


def split_rates(rate: float, versions: Mapping[str, str | None], weight: Mapping | None) -> dict[str, float]:
    """Each host's requests per second: `rate` each; with a traffic weight ({"version", "weight_pct"})
    the hosts running that version share weight_pct percent of the fleet's total (rate x hosts) and
    the others the rest, as a traffic router splits them. With every host on one side of the split
    there is nothing to split: each gets `rate`."""
    names = list(versions)
    if not weight or "version" not in weight:
        return dict.fromkeys(names, rate)
    new = [n for n in names if versions[n] == weight["version"]]
    old = [n for n in names if versions[n] != weight["version"]]
    if not new or not old:
        return dict.fromkeys(names, rate)
    try:
        share = min(max(float(weight.get("weight_pct", 0.0)) / 100.0, 0.0), 1.0)
    except (TypeError, ValueError):
        return dict.fromkeys(names, rate)
    total = rate * len(names)
    out = {n: total * share / len(new) for n in new}
    out.update({n: total * (1.0 - share) / len(old) for n in old})
    return out


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fleet_rates(fleet_dir: Path, rate: float, names: Sequence[str]) -> dict[str, float]:
    """`split_rates` over the fleet directory's weight and each host's recorded version."""
    versions = {n: (_read(fleet_dir / "hosts" / f"{n}.json") or {}).get("version") for n in names}
    return split_rates(rate, versions, _read(fleet_dir / WEIGHTS_FILE))


def run(targets: Mapping[str, str], rate: float, apis: Mapping[str, float], *, duration_s: float | None = None,
        report_every_s: float = 10.0, seed: int | None = None, fleet_dir: Path | None = None) -> dict:
    """Send load until SIGTERM/SIGINT (or `duration_s`); returns the counts per host. With
    `fleet_dir`, each host's rate follows the fleet's traffic weight (`fleet_rates`), every second."""
    stop = threading.Event()
    loads = {name: HostLoad(address, rate, apis, stop, None if seed is None else seed + i)
             for i, (name, address) in enumerate(targets.items())}

    def follow_weight() -> None:
        if fleet_dir is not None:
            for name, host_rate in fleet_rates(fleet_dir, rate, list(loads)).items():
                loads[name].rate = host_rate

    follow_weight()
    for load in loads.values():
        load.run()

    def on_signal(signum, frame):
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    next_report = started + report_every_s
    while not stop.is_set():
        timeout = 1.0 if duration_s is None else min(1.0, started + duration_s - time.monotonic())
        if stop.wait(max(0.0, timeout)):
            break
        follow_weight()
        if duration_s is not None and time.monotonic() >= started + duration_s:
            stop.set()
        if time.monotonic() >= next_report:
            next_report += report_every_s
            totals = _totals(loads)
            print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} loadgen sent {totals['sent']} ok {totals['ok']} "
                  f"5xx {totals['5xx']} failed {totals['failed']}", flush=True)
    return {name: load.counts() for name, load in loads.items()}


def _totals(loads: Mapping[str, HostLoad]) -> dict:
    out = {"sent": 0, "ok": 0, "5xx": 0, "failed": 0}
    for load in loads.values():
        for key, value in load.counts().items():
            out[key] += value
    return out


def fleet_targets(fleet_dir: Path) -> tuple[dict[str, str], dict[str, float]]:
    """Host name -> address, and the API mix, from a fleet directory's fleet.json."""
    config = json.loads((Path(fleet_dir) / "fleet.json").read_text(encoding="utf-8"))
    bind = config.get("bind", "127.0.0.1")
    return ({str(n): f"{bind}:{int(p)}" for n, p in config["hosts"].items()},
            {str(k): float(v) for k, v in (config.get("apis") or {"All": 1.0}).items()})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="deploysim local fleet: steady HTTP load on every host")
    parser.add_argument("--fleet-dir", required=True)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second per host")
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: until stopped)")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        print("error: --rate must be > 0", file=sys.stderr)
        return 2
    try:
        targets, apis = fleet_targets(Path(args.fleet_dir))
    except (OSError, ValueError, KeyError) as error:
        print(f"error: cannot read the fleet in {args.fleet_dir}: {error}", file=sys.stderr)
        return 2
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} loadgen: {args.rate:g} req/s to each of {len(targets)} "
          f"host(s), API mix {apis}", flush=True)
    run(targets, args.rate, apis, duration_s=args.duration, fleet_dir=Path(args.fleet_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
