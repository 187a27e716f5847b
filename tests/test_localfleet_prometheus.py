"""A real Prometheus scraping the real local fleet under real load: PrometheusSource datapoints
match what the hosts were configured to do, and deploysim.alarms judges them as it judges the
simulator's (faulty scope ALARM, good scope OK)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from localfleet_fixtures import PERIOD_S, RATE, SCRAPE_S, targets_of, wait_until

from deploysim.alarms import evaluate, parse_rule
from deploysim.executor.interfaces import Target
from deploysim.executor.prometheus_source import (
    DEFAULT_QUERIES,
    PrometheusQueryError,
    PrometheusSource,
    promql_regex,
)
from deploysim.localfleet.prometheus import PrometheusError, write_config
from deploysim.scenario.schema import MetricAlarm

N_PERIODS = 5

FAULT_RATE = MetricAlarm(name="High_Fault_Rate", metric="error_rate", threshold=0.05,
                         evaluation_periods=3, datapoints_to_alarm=2)
CREATE_FAULTS = MetricAlarm(name="High_Create_Faults", metric="error_rate", threshold=0.1, api="Create",
                            evaluation_periods=3, datapoints_to_alarm=2)
P99 = MetricAlarm(name="High_P99_Latency", metric="latency_p99_ms", threshold=250,
                  evaluation_periods=3, datapoints_to_alarm=2)
UNHEALTHY = MetricAlarm(name="Failing_Health_Checks", metric="unhealthy_hosts", threshold=0,
                        evaluation_periods=3, datapoints_to_alarm=2)


def state(alarm: MetricAlarm, values) -> str:
    return evaluate(values, threshold=alarm.threshold, comparison=alarm.comparison,
                    evaluation_periods=alarm.evaluation_periods, datapoints_to_alarm=alarm.datapoints_to_alarm,
                    treat_missing_data=alarm.treat_missing_data)


@pytest.fixture(scope="module")
def window(prometheus_server, shared_fleet, shared_load):
    """A window of N_PERIODS whole periods that Prometheus has fully scraped, and the source."""
    url, scraping_since = prometheus_server
    fleet = shared_fleet
    source = PrometheusSource(url)
    # Every host was scraped before `scraping_since`; the load reached every host at `shared_load`
    # and runs at full rate once all its workers, staggered over their interval (0.8 s at RATE), send.
    start = float(np.ceil(max(scraping_since, shared_load + 1.0)))
    end = start + N_PERIODS * PERIOD_S
    everyone = targets_of(fleet, *fleet.hosts)
    # Poll (never a fixed sleep) until the window is over and its last period has every host's data.
    wait_until(lambda: time.time() > end + 1.0, N_PERIODS * PERIOD_S + 20, "the window to pass", 0.2)
    wait_until(lambda: source.datapoints(MetricAlarm(name="r", metric="requests", threshold=0), everyone,
                                         end - PERIOD_S, end, PERIOD_S)[0] > 0.8 * RATE * PERIOD_S * len(everyone),
               20, "Prometheus to scrape the window")
    return fleet, source, start, end


def points(window, alarm: MetricAlarm, *hosts: str) -> np.ndarray:
    fleet, source, start, end = window
    values = source.datapoints(alarm, targets_of(fleet, *hosts), start, end, PERIOD_S)
    assert values.shape == (N_PERIODS,)
    return values


def test_error_rate_of_faulty_and_good_scopes(window):
    faulty = points(window, FAULT_RATE, "faulty")
    good = points(window, FAULT_RATE, "good-1", "good-2")
    assert not np.isnan(faulty).any() and not np.isnan(good).any()
    # v3-faulty fails 30% of requests: over ~400 requests (sd 0.023) the mean is within 4 sd of it.
    assert faulty.mean() == pytest.approx(0.30, abs=0.09)
    assert (faulty > 0.1).all()
    assert (good == 0).all()
    assert state(FAULT_RATE, faulty) == "ALARM"
    assert state(FAULT_RATE, good) == "OK"


def test_requests_per_period_are_what_the_load_generator_sent(window):
    requests = MetricAlarm(name="r", metric="requests", threshold=0)
    good = points(window, requests, "good-1")
    assert good == pytest.approx(np.full(N_PERIODS, RATE * PERIOD_S), rel=0.2)
    fleet, source, start, end = window
    total = source.requests(targets_of(fleet, "good-1", "good-2"), start, end)
    assert total == pytest.approx(2 * RATE * (end - start), rel=0.15)
    create = source.requests(targets_of(fleet, "good-1", "good-2"), start, end, api="Create")
    assert create / total == pytest.approx(0.15, abs=0.06)  # the API mix


def test_errors_and_log_errors_count_the_failed_requests(window):
    fleet, source, start, end = window
    errors = points(window, MetricAlarm(name="e", metric="errors", threshold=0), "faulty")
    logs = points(window, MetricAlarm(name="l", metric="log_errors", threshold=0), "faulty")
    assert errors.sum() == pytest.approx(0.3 * RATE * PERIOD_S * N_PERIODS, rel=0.3)
    # The service counts a failed request in both counters at once, and /metrics reads them between
    # two requests: every scrape holds the same number of failures in both, however loaded the host.
    gap = ('sum(deploysim_log_errors_total{instance=~"{instances}"})'
           ' - sum(deploysim_requests_total{instance=~"{instances}",code=~"5.."})')
    at_every_scrape = PrometheusSource(source.url, {"gap": gap}).datapoints(
        MetricAlarm(name="gap", metric="errors", threshold=0), targets_of(fleet, "faulty"), start, end, SCRAPE_S)
    assert at_every_scrape.tolist() == [0.0] * round((end - start) / SCRAPE_S)
    # Per period, increase() extrapolates each series to the period's edges, but never back past
    # the moment a series would have been 0: `errors` sums one series per API, and a young one (an
    # API with hardly a failure yet) loses a fraction of a request that the one log series keeps.
    assert logs == pytest.approx(errors, rel=0.05, abs=1)


def test_per_api_faults(window):
    create = points(window, CREATE_FAULTS, "create-bug")
    whole = points(window, FAULT_RATE, "create-bug")
    count = {m: points(window, MetricAlarm(name=m, metric=m, threshold=0, api="Create"), "create-bug").sum()
             for m in ("errors", "requests")}
    # ~60 Create requests (15% of the mix) fail half the time: sd 0.065, so within 4 sd.
    assert count["errors"] / count["requests"] == pytest.approx(0.5, abs=0.25)
    assert whole.mean() == pytest.approx(0.5 * 0.15, abs=0.05)  # on all requests: 7.5%, sd 0.013
    assert state(CREATE_FAULTS, create) == "ALARM"
    assert state(CREATE_FAULTS, points(window, CREATE_FAULTS, "good-1", "good-2")) == "OK"


def test_latency_percentiles(window):
    slow = points(window, P99, "slow")
    good = points(window, P99, "good-1", "good-2")
    assert (slow >= 380).all() and (slow <= 600).all()  # 400 ms added to every request
    assert (good < P99.threshold).all()
    assert state(P99, slow) == "ALARM" and state(P99, good) == "OK"
    p50 = points(window, MetricAlarm(name="p50", metric="latency_p50_ms", threshold=0), "slow")
    assert (p50 >= 380).all()


def test_composite_alarm_over_real_datapoints(window):
    rule = parse_rule('ALARM("High_Fault_Rate") OR ALARM("High_P99_Latency") OR ALARM("Failing_Health_Checks")')

    def composite(*hosts):
        states = {a.name: state(a, points(window, a, *hosts)) for a in (FAULT_RATE, P99, UNHEALTHY)}
        return rule.evaluate(states), states

    for hosts, expected in [(("faulty",), "ALARM"), (("slow",), "ALARM"), (("good-1", "good-2"), "OK")]:
        verdict, states = composite(*hosts)
        assert verdict == expected, (hosts, states)
    assert composite("good-1")[1]["Failing_Health_Checks"] == "OK"


def test_host_metrics(window):
    cpu = points(window, MetricAlarm(name="c", metric="cpu_pct", threshold=0, statistic="maximum"), "good-1", "slow")
    memory = points(window, MetricAlarm(name="m", metric="memory_pct", threshold=0), "good-1")
    unhealthy = points(window, UNHEALTHY, "good-1", "good-2", "faulty", "slow")
    assert ((cpu > 0) & (cpu < 100)).all()
    assert ((memory > 0) & (memory < 50)).all()
    assert (unhealthy == 0).all()


def test_metrics_the_service_cannot_produce_are_missing(window):
    disk = MetricAlarm(name="d", metric="disk_pct", threshold=90)
    values = points(window, disk, "good-1")
    assert np.isnan(values).all()
    assert state(disk, values) == "INSUFFICIENT_DATA"  # treat_missing_data decides, as in CloudWatch


def test_a_scope_without_data_is_missing(window):
    fleet, source, start, end = window
    ghost = [Target(host=0, name="ghost", region="r", az="a", cell="c", address="127.0.0.1:1")]
    assert np.isnan(source.datapoints(FAULT_RATE, ghost, start, end, PERIOD_S)).all()
    assert source.requests(ghost, start, end) == 0


def test_query_overrides_by_metric_and_by_alarm_name(window):
    fleet, source, start, end = window
    doubled = PrometheusSource(source.url, {"error_rate": "2 * (" + DEFAULT_QUERIES["error_rate"] + ")",
                                            "Fixed": "vector(7)"})
    base = source.datapoints(FAULT_RATE, targets_of(fleet, "faulty"), start, end, PERIOD_S)
    twice = doubled.datapoints(FAULT_RATE, targets_of(fleet, "faulty"), start, end, PERIOD_S)
    assert twice == pytest.approx(2 * base)
    fixed = MetricAlarm(name="Fixed", metric="cpu_pct", threshold=1)
    assert (doubled.datapoints(fixed, targets_of(fleet, "good-1"), start, end, PERIOD_S) == 7).all()


def test_errors_are_one_clear_line(window):
    fleet, source, start, end = window
    with pytest.raises(PrometheusQueryError) as caught:
        PrometheusSource("http://127.0.0.1:1").datapoints(FAULT_RATE, targets_of(fleet, "good-1"), start, end, 2)
    assert str(caught.value).startswith("cannot reach Prometheus at http://127.0.0.1:1") and "\n" not in str(
        caught.value
    )
    broken = PrometheusSource(source.url, {"error_rate": "sum(("})
    with pytest.raises(PrometheusQueryError, match="rejected the query for alarm High_Fault_Rate"):
        broken.datapoints(FAULT_RATE, targets_of(fleet, "good-1"), start, end, PERIOD_S)


def test_instances_regex_is_exact():
    assert promql_regex(["127.0.0.1:80"]) == "127\\\\.0\\\\.0\\\\.1:80"
    assert promql_regex([]) == "$^"


def test_config_lists_every_host(tmp_path):
    import yaml

    path = write_config(tmp_path / "p.yml", {"h1": "127.0.0.1:8101", "h2": "127.0.0.1:8102"}, scrape_interval_s=1)
    config = yaml.safe_load(path.read_text())
    assert config["global"]["scrape_interval"] == "1s"
    static = config["scrape_configs"][0]["static_configs"]
    assert [s["targets"] for s in static] == [["127.0.0.1:8101"], ["127.0.0.1:8102"]]
    assert [s["labels"]["host"] for s in static] == ["h1", "h2"]


def test_missing_binary_is_a_clear_error(monkeypatch):
    from deploysim.localfleet import prometheus

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PrometheusError, match="`prometheus` binary is not on PATH"):
        prometheus.find_prometheus()


def test_a_taken_port_is_a_clear_error(prometheus_binary, tmp_path):
    import socket

    from deploysim.localfleet.prometheus import PrometheusServer

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PrometheusError, match=f"port {port} on 127.0.0.1 is already in use"):
            PrometheusServer(tmp_path).start({"h1": "127.0.0.1:1"}, port=port)
