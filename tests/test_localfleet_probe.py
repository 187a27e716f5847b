"""ProbeSource: error rate, latency, requests and health from the probe's own real requests."""

from __future__ import annotations

import time

import numpy as np
import pytest
from localfleet_fixtures import targets_of, wait_until

from deploysim.alarms import evaluate
from deploysim.executor.probe_source import ProbeSource
from deploysim.scenario.schema import MetricAlarm

PERIOD = 1.0
N = 5
RATE = 30.0

FAULT_RATE = MetricAlarm(name="High_Fault_Rate", metric="error_rate", threshold=0.05,
                         evaluation_periods=3, datapoints_to_alarm=2)
P99 = MetricAlarm(name="High_P99_Latency", metric="latency_p99_ms", threshold=250,
                  evaluation_periods=3, datapoints_to_alarm=2)
UNHEALTHY = MetricAlarm(name="Failing_Health_Checks", metric="unhealthy_hosts", threshold=0,
                        evaluation_periods=2, datapoints_to_alarm=2)


def state(alarm, values):
    return evaluate(values, threshold=alarm.threshold, comparison=alarm.comparison,
                    evaluation_periods=alarm.evaluation_periods, datapoints_to_alarm=alarm.datapoints_to_alarm)


def probe_window(source: ProbeSource) -> tuple[float, float]:
    start = float(np.ceil(time.time()))
    end = start + N * PERIOD
    wait_until(lambda: time.time() > end + 1.0, N * PERIOD + 10, "the probe window to pass", 0.1)
    return start, end


@pytest.fixture(scope="module")
def probed(shared_fleet):
    fleet = shared_fleet
    targets = targets_of(fleet, "faulty", "good-1", "slow", "create-bug")
    with ProbeSource(targets, rate_per_s=RATE, apis={"Get": 0.5, "Create": 0.5}) as source:
        start, end = probe_window(source)
        yield {t.name: t for t in targets}, source, start, end


def test_error_rate_faulty_vs_good(probed):
    targets, source, start, end = probed
    faulty = source.datapoints(FAULT_RATE, [targets["faulty"]], start, end, PERIOD)
    good = source.datapoints(FAULT_RATE, [targets["good-1"]], start, end, PERIOD)
    assert faulty.mean() == pytest.approx(0.3, abs=0.15)  # ~150 requests: sd 0.037
    assert (good == 0).all()
    assert state(FAULT_RATE, faulty) == "ALARM" and state(FAULT_RATE, good) == "OK"
    create = MetricAlarm(name="c", metric="error_rate", threshold=0.1, api="Create")
    failed = source.datapoints(MetricAlarm(name="e", metric="errors", threshold=0, api="Create"),
                               [targets["create-bug"]], start, end, PERIOD).sum()
    sent = source.requests([targets["create-bug"]], start, end, api="Create")
    assert failed / sent == pytest.approx(0.5, abs=0.22)  # ~75 Create requests: sd 0.058
    assert state(create, source.datapoints(create, [targets["create-bug"]], start, end, PERIOD)) == "ALARM"
    get = MetricAlarm(name="g", metric="error_rate", threshold=0.1, api="Get")
    assert (source.datapoints(get, [targets["create-bug"]], start, end, PERIOD) == 0).all()


def test_requests_and_latency(probed):
    targets, source, start, end = probed
    per_period = source.datapoints(MetricAlarm(name="r", metric="requests", threshold=0), [targets["good-1"]],
                                   start, end, PERIOD)
    assert per_period == pytest.approx(np.full(N, RATE * PERIOD), rel=0.25)
    assert source.requests([targets["good-1"]], start, end) == pytest.approx(per_period.sum())
    assert source.requests([targets["good-1"]], start, end, api="Create") == pytest.approx(
        per_period.sum() / 2, rel=0.3
    )
    slow = source.datapoints(P99, [targets["slow"]], start, end, PERIOD)
    good = source.datapoints(P99, [targets["good-1"]], start, end, PERIOD)
    assert (slow >= 400).all() and (good < P99.threshold).all()
    assert state(P99, slow) == "ALARM" and state(P99, good) == "OK"
    healthy = source.datapoints(UNHEALTHY, list(targets.values()), start, end, PERIOD)
    assert (healthy == 0).all()
    cpu = MetricAlarm(name="cpu", metric="cpu_pct", threshold=90)
    assert np.isnan(source.datapoints(cpu, [targets["good-1"]], start, end, PERIOD)).all()


def test_a_down_host_is_unhealthy_and_failing(fleet_factory):
    fleet = fleet_factory({"up": "v1", "down": "v1"})
    fleet.stop(["down"])
    targets = targets_of(fleet, "up", "down")
    with ProbeSource(targets, rate_per_s=10, health_interval_s=0.25, timeout_s=1) as source:
        start, end = probe_window(source)
        unhealthy = source.datapoints(UNHEALTHY, targets, start, end, PERIOD)
        assert (unhealthy == 1).all() and state(UNHEALTHY, unhealthy) == "ALARM"
        assert (source.datapoints(FAULT_RATE, targets[1:], start, end, PERIOD) == 1).all()
        assert np.isnan(source.datapoints(P99, targets[1:], start, end, PERIOD)).all()  # nothing answered
        assert (source.datapoints(UNHEALTHY, targets[:1], start, end, PERIOD) == 0).all()


def test_a_host_restarted_by_a_deploy_costs_no_failed_request_once_it_is_back(fleet_factory):
    # A deploy restarts the host, which closes every keep-alive connection the probe holds. Reusing
    # one would fail a request the service never saw: the probe's own error, counted as the new
    # version's (once the deploy's out-of-service periods end, a 2-of-2 error alarm of a one-box
    # needed only two such periods). The probe checks a connection before it reuses it.
    fleet = fleet_factory({"h": "v1"})
    target = targets_of(fleet, "h")
    errors = MetricAlarm(name="e", metric="errors", threshold=0)
    with ProbeSource(target, rate_per_s=10, timeout_s=2) as source:
        wait_until(lambda: source.requests(target, 0, time.time()) >= 20, 10, "the probe's first requests")
        for version in ("v2", "v1", "v2"):
            assert fleet.deploy("h", version).ok
            back_s = time.time()
            wait_until(lambda b=back_s: source.requests(target, b, b + 2.0) >= 15 and time.time() > b + 2.5,
                       10, "two seconds of requests after the deploy")
            assert source.datapoints(errors, target, back_s, back_s + 2.0, 2.0)[0] == 0, version


def test_a_health_answer_cut_short_is_a_failed_check_not_the_end_of_checking():
    # A host restarted by a deploy while it answers /healthz sends its headers, then closes the
    # connection: http.client raises IncompleteRead, which once ended the probe's health thread
    # (every later period had no health datapoint, and bakes halted for want of evidence).
    import socket
    import threading

    from deploysim.executor.interfaces import Target
    from deploysim.localfleet.procs import http_get_json

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def cut_short():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 120\r\n\r\n")

    thread = threading.Thread(target=cut_short, daemon=True)
    thread.start()
    try:
        assert http_get_json(f"http://127.0.0.1:{port}/healthz") == (None, None)
        target = Target(0, "h", "r", "r-az1", "r-az1-c1", f"127.0.0.1:{port}")
        unhealthy = MetricAlarm(name="u", metric="unhealthy_hosts", threshold=0)
        with ProbeSource([target], rate_per_s=1, health_interval_s=0.2, timeout_s=1) as source:
            start = time.time()
            wait_until(lambda: time.time() > start + 3.0, 10, "three seconds of health checks")
            checks = source.datapoints(unhealthy, [target], float(np.floor(start)) + 1, float(np.floor(start)) + 3, 1.0)
        assert (checks == 1).all(), checks  # every period still has its (failed) checks
    finally:
        stop.set()
        thread.join()
        server.close()
