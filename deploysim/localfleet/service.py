"""The demo service of the local fleet: one HTTP process per host, serving one version.

Run as ``python -m deploysim.localfleet.service --port P --host-name NAME --version V
--versions-file F`` (the fleet starts it by file path, which skips importing the simulator).

Endpoints:
  /api/<Api>   any method; answers 200, or 500 with the version's configured error rate, after the
               version's configured extra latency
  /healthz     200 {"status": "ok", ...}, or 503 when the version is configured `unhealthy`
  /version     {"version", "host", "pid", "port"}
  /metrics     Prometheus text format (prometheus_client): requests by api, code and version, a
               latency histogram, errors written to the log, health, process metrics

The versions file (YAML) maps each version to its faults; a version it does not list cannot start:

    v1: {}
    v3-faulty: {error_rate: 0.3}
    v4-slow: {latency_ms: 400}
    v5-create-bug: {apis: {Create: {error_rate: 0.5}}}

Fields: `error_rate` (0..1, share of requests answered 500), `latency_ms` (added to every request),
`apis` (per-API `error_rate` / `latency_ms`, added to the version's own), `unhealthy` (true: /healthz
answers 503 while requests are still served), `crash` (true: the process exits at start, as a
crash-looping build would).

This file imports only the standard library, PyYAML and prometheus_client, so that it starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

VERSION_FIELDS = ("error_rate", "latency_ms", "apis", "unhealthy", "crash")
API_FIELDS = ("error_rate", "latency_ms")
EXIT_BAD_INPUT = 2
EXIT_CRASH = 3

# Latency buckets (seconds) fine enough for histogram_quantile between 0.25 ms and 10 s.
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1,
                   0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class VersionsFileError(ValueError):
    """The versions file cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class ApiFaults:
    error_rate: float = 0.0
    latency_ms: float = 0.0


@dataclass(frozen=True)
class VersionFaults:
    """What a version does wrong; the default is a good version."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    apis: Mapping[str, ApiFaults] = field(default_factory=dict)
    unhealthy: bool = False
    crash: bool = False

    def error_rate_for(self, api: str) -> float:
        extra = self.apis.get(api, ApiFaults()).error_rate
        return 1.0 - (1.0 - self.error_rate) * (1.0 - extra)

    def latency_ms_for(self, api: str) -> float:
        return self.latency_ms + self.apis.get(api, ApiFaults()).latency_ms


def _number(where: str, value: object, *, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise VersionsFileError(f"{where}: expected a number, got {value!r}")
    if value < 0 or (upper is not None and value > upper):
        bound = f"between 0 and {upper:g}" if upper is not None else ">= 0"
        raise VersionsFileError(f"{where}: expected a number {bound}, got {value!r}")
    return float(value)


def _flag(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise VersionsFileError(f"{where}: expected true or false, got {value!r}")
    return value



def _check_fields(where: str, spec: dict, allowed) -> None:
    """Reject keys of `spec` that are not in `allowed`, naming them and what is expected."""
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise VersionsFileError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}; "
                                f"expected {', '.join(allowed)}")

def parse_versions(data: object, source: str = "versions file") -> dict[str, VersionFaults]:
    """Validate the versions mapping (as loaded from YAML) into VersionFaults per version."""
    if not isinstance(data, dict) or not data:
        raise VersionsFileError(f"{source}: expected a mapping of version -> faults, e.g. 'v1: {{}}'")
    out: dict[str, VersionFaults] = {}
    for version, spec in data.items():
        where = f"{source}: {version}"
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise VersionsFileError(f"{where}: expected a mapping of faults (or {{}}), got {spec!r}")
        _check_fields(where, spec, VERSION_FIELDS)
        apis: dict[str, ApiFaults] = {}
        api_specs = spec.get("apis") or {}
        if not isinstance(api_specs, dict):
            raise VersionsFileError(f"{where}.apis: expected a mapping of API name -> faults")
        for api, api_spec in api_specs.items():
            api_where = f"{where}.apis.{api}"
            if not isinstance(api_spec, dict):
                raise VersionsFileError(f"{api_where}: expected a mapping with error_rate and/or latency_ms")
            _check_fields(api_where, api_spec, API_FIELDS)
            apis[str(api)] = ApiFaults(
                error_rate=_number(f"{api_where}.error_rate", api_spec.get("error_rate", 0.0), upper=1.0),
                latency_ms=_number(f"{api_where}.latency_ms", api_spec.get("latency_ms", 0.0)))
        out[str(version)] = VersionFaults(
            error_rate=_number(f"{where}.error_rate", spec.get("error_rate", 0.0), upper=1.0),
            latency_ms=_number(f"{where}.latency_ms", spec.get("latency_ms", 0.0)),
            apis=apis,
            unhealthy=_flag(f"{where}.unhealthy", spec.get("unhealthy", False)),
            crash=_flag(f"{where}.crash", spec.get("crash", False)),
        )
    return out


def load_versions(path: str | os.PathLike) -> dict[str, VersionFaults]:
    """Read and validate a versions file."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as error:
        raise VersionsFileError(f"cannot read versions file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise VersionsFileError(f"{path}: not valid YAML: {error}") from None
    return parse_versions(data, str(path))


# ---------------------------------------------------------------- the service


class Service:
    """The state and metrics of one running host."""

    def __init__(self, host_name: str, version: str, port: int, faults: VersionFaults,
                 apis: tuple[str, ...] = (), seed: int | None = None):
        from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: less to scrape, nothing the queries use

        self.host_name = host_name
        self.version = version
        self.port = port
        self.faults = faults
        self.pid = os.getpid()
        self.started_at = time.time()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        # Held while one answered request is counted, and while /metrics reads the counters: a scrape
        # sees a request in every series (requests, latency, log errors) or in none of them.
        self._metrics_lock = threading.Lock()
        self.requests = Counter("deploysim_requests", "Requests served, by API, HTTP status code and version",
                                ["api", "code", "version"])
        self.latency = Histogram("deploysim_request_duration_seconds", "Time to answer a request, by API and version",
                                 ["api", "version"], buckets=LATENCY_BUCKETS)
        self.log_errors = Counter("deploysim_log_errors", "Error lines written to the service log", ["version"])
        self.healthy = Gauge("deploysim_healthy", "1 when /healthz answers 200, else 0")
        self.info = Gauge("deploysim_version_info", "The version this host runs (always 1)", ["host", "version"])
        self.memory = Gauge("deploysim_machine_memory_bytes", "Physical memory of the machine, for memory_pct")
        self.healthy.set(0.0 if faults.unhealthy else 1.0)
        self.info.labels(host_name, version).set(1.0)
        self.memory.set(_machine_memory_bytes())
        # Series exist from the first scrape on, so increase() sees every request of a new process.
        self.log_errors.labels(version)
        for api in apis:
            for code in ("200", "500"):
                self.requests.labels(api, code, version)
            self.latency.labels(api, version)

    def handle_api(self, api: str) -> tuple[int, float]:
        """Decide the answer of one request: (status code, seconds to wait before answering)."""
        with self._lock:
            draw = self._random.random()
        failed = draw < self.faults.error_rate_for(api)
        return (500 if failed else 200), self.faults.latency_ms_for(api) / 1000.0

    def answered(self, api: str, code: int, seconds: float, line: str) -> None:
        """Count one request whose answer is ready (and, for a 500, write its error line to the log),
        as one event, before the answer is sent: a client holding its answer finds it counted."""
        if code >= 500:
            sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} ERROR {self.host_name} {self.version} {line}\n")
        with self._metrics_lock:
            if code >= 500:
                self.log_errors.labels(self.version).inc()
            self.latency.labels(api, self.version).observe(seconds)
            self.requests.labels(api, str(code), self.version).inc()

    def exposition(self) -> bytes:
        """The /metrics body: every counter as of one moment between two answered requests."""
        from prometheus_client import generate_latest

        with self._metrics_lock:
            return generate_latest()

    def identity(self) -> dict:
        return {"host": self.host_name, "version": self.version, "pid": self.pid, "port": self.port,
                "started_at": self.started_at}


def _machine_memory_bytes() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return float("nan")


def make_handler(service: Service):
    from prometheus_client import CONTENT_TYPE_LATEST

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the load generator reuses connections
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
        server_version = "deploysim-localfleet"

        def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, code: int, payload: dict) -> None:
            self._send(code, (json.dumps(payload) + "\n").encode())

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            if path.startswith("/api/") and len(path) > len("/api/"):
                api = path[len("/api/"):].strip("/")
                started = time.perf_counter()
                code, delay = service.handle_api(api)
                if delay > 0:
                    time.sleep(delay)
                payload = {"api": api, **service.identity()} if code < 500 else {"error": "injected fault",
                                                                                  "api": api, **service.identity()}
                service.answered(api, code, time.perf_counter() - started, f"{self.command} {path} -> {code}")
                self._json(code, payload)
            elif path == "/healthz":
                if service.faults.unhealthy:
                    self._json(503, {"status": "unhealthy", **service.identity()})
                else:
                    self._json(200, {"status": "ok", **service.identity()})
            elif path == "/version":
                self._json(200, service.identity())
            elif path == "/metrics":
                self._send(200, service.exposition(), CONTENT_TYPE_LATEST)
            else:
                self._json(404, {"error": f"no such path {path}"})

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(port: int, host_name: str, version: str, faults: VersionFaults, *, bind: str = "127.0.0.1",
          apis: tuple[str, ...] = (), seed: int | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    service = Service(host_name, version, port, faults, apis, seed)
    server = _Server((bind, port), make_handler(service))

    def stop(signum, frame):  # shutdown() blocks until serve_forever returns: call it off the main thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} INFO {host_name} serving {version} on {bind}:{port} "
          f"(pid {service.pid})", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} INFO {host_name} stopped", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="deploysim local fleet: the demo service of one host")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host-name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--versions-file", required=True)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--apis", default="", help="comma-separated API names whose metrics exist from the start")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        versions = load_versions(args.versions_file)
    except VersionsFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.version not in versions:
        print(f"error: unknown version {args.version!r}; {args.versions_file} defines "
              f"{', '.join(versions)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    faults = versions[args.version]
    if faults.crash:
        print(f"error: {args.host_name} version {args.version} crashed at start (crash: true)", file=sys.stderr)
        return EXIT_CRASH
    apis = tuple(a for a in args.apis.split(",") if a)
    try:
        serve(args.port, args.host_name, args.version, faults, bind=args.bind, apis=apis, seed=args.seed)
    except OSError as error:
        print(f"error: cannot listen on {args.bind}:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
