"""The demo service answers with the faults its version is configured with, measured on real requests."""

from __future__ import annotations

import http.client
import math
import re
import subprocess
import sys
from collections import Counter

import pytest
from localfleet_fixtures import VERSIONS

from deploysim.localfleet import procs
from deploysim.localfleet.fleet import SERVICE_SCRIPT
from deploysim.localfleet.service import VersionsFileError, load_versions, parse_versions


def send(address: str, api: str, n: int, method: str = "GET") -> tuple[Counter, list[float]]:
    """`n` real requests on one keep-alive connection: status counts and latencies (s)."""
    import time

    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    codes: Counter = Counter()
    latencies = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            conn.request(method, f"/api/{api}")
            response = conn.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            codes[response.status] += 1
    finally:
        conn.close()
    return codes, latencies


def within(observed: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    """`observed` successes of `n` is within `sigmas` binomial standard deviations of n*p."""
    return abs(observed - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def test_the_shipped_versions_file_is_valid():
    versions = load_versions(VERSIONS)
    assert versions["v1"].error_rate == 0 and versions["v2"].latency_ms == 0
    assert versions["v3-faulty"].error_rate == pytest.approx(0.3)
    assert versions["v4-slow"].latency_ms == 400
    assert versions["v5-create-bug"].error_rate_for("Create") == pytest.approx(0.5)
    assert versions["v5-create-bug"].error_rate_for("Get") == 0
    assert versions["v6-crash"].crash


@pytest.mark.parametrize("data, message", [
    ([], "expected a mapping of version"),
    ({"v1": {"error_rate": 1.5}}, "v1.error_rate: expected a number between 0 and 1"),
    ({"v1": {"latency": 3}}, "v1: unknown field(s) latency"),
    ({"v1": {"apis": {"Get": {"error_rate": "high"}}}}, "v1.apis.Get.error_rate: expected a number"),
    ({"v1": {"crash": "yes"}}, "v1.crash: expected true or false"),
])
def test_a_bad_versions_file_names_the_field(data, message):
    with pytest.raises(VersionsFileError) as caught:
        parse_versions(data, "versions.yaml")
    assert message in str(caught.value)


def test_error_rates_are_the_configured_shares(fleet_factory):
    fleet = fleet_factory({"good": "v1", "faulty": "v3-faulty", "create-bug": "v5-create-bug"})
    n = 600
    good, _ = send(fleet.address("good"), "Get", n)
    assert good == {200: n}
    faulty, _ = send(fleet.address("faulty"), "Get", n)
    assert set(faulty) == {200, 500} and within(faulty[500], n, 0.3), faulty
    created, _ = send(fleet.address("create-bug"), "Create", n, "POST")
    assert within(created[500], n, 0.5), created
    gets, _ = send(fleet.address("create-bug"), "Get", 200)
    assert gets == {200: 200}  # the fault is on the Create API only


def test_metrics_count_what_was_served(fleet_factory):
    fleet = fleet_factory({"faulty": "v3-faulty"})
    codes, _ = send(fleet.address("faulty"), "Delete", 300, "DELETE")
    status, _ = procs.http_get_json(fleet.url("faulty", "/metrics"))  # not JSON: body is None
    assert status == 200
    host, port = fleet.address("faulty").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()

    def value(pattern: str) -> float:
        match = re.search(pattern + r" ([0-9.e+]+)", text)
        assert match, pattern
        return float(match.group(1))

    assert value(r'deploysim_requests_total\{api="Delete",code="500",version="v3-faulty"\}') == codes[500]
    assert value(r'deploysim_requests_total\{api="Delete",code="200",version="v3-faulty"\}') == codes[200]
    assert value(r'deploysim_log_errors_total\{version="v3-faulty"\}') == codes[500]
    assert value(r'deploysim_request_duration_seconds_count\{api="Delete",version="v3-faulty"\}') == 300
    assert value(r'deploysim_requests_total\{api="Get",code="200",version="v3-faulty"\}') == 0  # exists from start
    assert "process_cpu_seconds_total" in text and "deploysim_healthy 1.0" in text


def test_latency_is_the_configured_delay(fleet_factory):
    fleet = fleet_factory({"good": "v2", "slow": "v4-slow"})
    _, fast = send(fleet.address("good"), "Get", 50)
    _, slow = send(fleet.address("slow"), "Get", 5)
    assert max(fast) < 0.2
    assert min(slow) >= 0.4 and max(slow) < 1.5


def test_identity_health_and_unknown_paths(fleet_factory):
    fleet = fleet_factory({"h1": "v2"})
    status, body = procs.http_get_json(fleet.url("h1", "/version"))
    assert status == 200 and body["version"] == "v2" and body["host"] == "h1"
    status, body = procs.http_get_json(fleet.url("h1", "/healthz"))
    assert status == 200 and body["status"] == "ok" and procs.pid_alive(body["pid"])
    status, _ = procs.http_get_json(fleet.url("h1", "/nothing"))
    assert status == 404


def test_unhealthy_version_fails_health_checks_but_serves(tmp_path):
    versions = tmp_path / "versions.yaml"
    versions.write_text("v1: {}\nsick: {unhealthy: true}\n")
    port = procs.free_port()
    proc = subprocess.Popen([sys.executable, str(SERVICE_SCRIPT), "--port", str(port), "--host-name", "h",
                             "--version", "sick", "--versions-file", str(versions)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        import time

        deadline = time.monotonic() + 10
        while procs.http_get_json(url + "/version")[0] is None:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        status, body = procs.http_get_json(url + "/healthz")
        assert status == 503 and body["status"] == "unhealthy"
        assert send(f"127.0.0.1:{port}", "Get", 5)[0] == {200: 5}
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("command, version, code, message", [
    (["-m", "deploysim.localfleet.service"], "v9", 2, "unknown version 'v9'"),  # as documented
    ([str(SERVICE_SCRIPT)], "v6-crash", 3, "crashed at start"),  # as the fleet starts it
])
def test_a_version_that_cannot_run_exits_with_a_message(command, version, code, message):
    result = subprocess.run([sys.executable, *command, "--port", str(procs.free_port()),
                             "--host-name", "h", "--version", version, "--versions-file", str(VERSIONS)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == code
    assert message in result.stderr and "Traceback" not in result.stderr
