"""`deploysim execute --metrics-port`: the executor's own Prometheus metrics, read from the journal at
each scrape (`deploysim.executor.exporter`), served while the run lasts, scraped by a real Prometheus."""

from __future__ import annotations

import json
import signal
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml
from executor_support import CtrlCAt, cli, fast_scenario_dict, write_inputs
from localfleet_fixtures import wait_until
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_executor_fake import START_S, fake_rollout

from deploysim.cli import main
from deploysim.executor import Executor, Journal
from deploysim.executor.exporter import MetricsEndpoint, RolloutCollector
from deploysim.localfleet.procs import free_port
from deploysim.localfleet.prometheus import PrometheusServer


def _stopped_mid_bake(tmp_path):
    """The fast scenario (one stage: one-box of 1 host, bake 60 s; wave-1 of 2 hosts in 2 batches,
    bake 600 s; wave-2 of 3 hosts) over the fake fleet, stopped 300 s in, in wave-1's bake."""
    state = tmp_path / "v2-state"
    state.mkdir()
    scenario = fast_scenario_dict(bakes_s=(60, 600, 60))
    rollout, _, adapter, source = fake_rollout(tmp_path, scenario, "v2")
    stop = threading.Event()
    clock = CtrlCAt(START_S, START_S + 300.0, stop)
    adapter.clock = clock
    journal = Journal.in_dir(state, clock=clock)
    journal.set_meta({"scenario_text": yaml.safe_dump(scenario), "scenario_path": "scenario.yaml", "version": "v2",
                      "pipeline": rollout.pipeline})
    outcome = Executor(rollout, adapter, source, journal, clock=clock, stop=stop).start()
    assert outcome.status == "stopped"
    return rollout, journal, [t.name for t in rollout.targets]


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"version": "v2", "pipeline": "code", "rollout": "v2-state", **labels})


def test_the_collector_tells_a_run_stopped_mid_bake_as_its_journal_says(tmp_path):
    rollout, journal, names = _stopped_mid_bake(tmp_path)
    bake = journal.last_decision()
    assert bake.kind == "BakeWait" and (bake.stage, bake.step) == (0, 1)
    now = {"s": bake.time_s + 100.0}
    running = {"yes": True}
    collector = RolloutCollector(journal, now=lambda: now["s"], running=lambda: running["yes"])
    registry = CollectorRegistry()
    registry.register(collector)

    # Worked by hand: the one-box (step 0) baked its 60 s; wave-1 (step 1, hosts 2 and 3) deployed in
    # two batches and bakes 600 s from its decision; 100 s later 500 s remain. Three of six targets
    # run v2, three still v1; three deploys done, none failed. The run was stopped: not in progress.
    assert _sample(registry, "deploysim_rollout_stages") == 1 and _sample(registry, "deploysim_rollout_steps") == 3
    assert _sample(registry, "deploysim_rollout_steps_done") == 1
    assert _sample(registry, "deploysim_rollout_stage") == 0
    assert _sample(registry, "deploysim_rollout_step") == 1
    assert _sample(registry, "deploysim_rollout_batch") is None  # a bake has no batch
    assert _sample(registry, "deploysim_rollout_bake_remaining_seconds") == pytest.approx(500.0)
    assert _sample(registry, "deploysim_rollout_last_decision_info", kind="BakeWait") == 1
    assert _sample(registry, "deploysim_rollout_last_decision_timestamp_seconds") == bake.time_s
    assert {state: _sample(registry, "deploysim_rollout_targets", state=state)
            for state in ("new", "previous", "other", "unknown")} == {"new": 3, "previous": 3, "other": 0,
                                                                      "unknown": 0}
    assert _sample(registry, "deploysim_rollout_actions_total", kind="deploy", outcome="done") == 3
    assert _sample(registry, "deploysim_rollout_actions_total", kind="deploy", outcome="failed") == 0
    assert _sample(registry, "deploysim_rollout_actions_total", kind="rollback", outcome="done") == 0
    assert _sample(registry, "deploysim_rollout_actions_total", kind="set_weight", outcome="done") == 0
    assert _sample(registry, "deploysim_rollout_in_progress") == 0
    assert _sample(registry, "deploysim_rollout_last_event_info", kind="stopped") == 1
    assert _sample(registry, "deploysim_rollout_paused") == 0
    assert _sample(registry, "deploysim_rollout_awaiting_approval") == 0

    now["s"] = bake.detail["min_until_s"] + 5.0  # the bake's duration is over
    assert _sample(registry, "deploysim_rollout_bake_remaining_seconds") == 0

    # A resumed run is in progress while this process runs it, until a terminal event.
    journal.event("resumed")
    assert _sample(registry, "deploysim_rollout_in_progress") == 1
    running["yes"] = False
    assert _sample(registry, "deploysim_rollout_in_progress") == 0
    running["yes"] = True
    # The operator's pause and the approval step are read from their events by name.
    for kind, paused, awaiting in [("paused", 1, 0), ("awaiting_approval", 1, 1), ("unpaused", 0, 1),
                                   ("approved", 0, 0), ("awaiting_approval", 0, 1), ("approval_timed_out", 0, 0)]:
        journal.event(kind)
        assert (_sample(registry, "deploysim_rollout_paused"), _sample(registry, "deploysim_rollout_awaiting_approval"),
                _sample(registry, "deploysim_rollout_last_event_info", kind=kind)) == (paused, awaiting, 1), kind
    # Targets the journal saw end elsewhere or could not tell; a failed deploy counts as failed.
    seq = journal.intend("deploy", names[3], "v2")
    journal.outcome(seq, False, None, "cannot tell")
    seq = journal.intend("deploy", names[4], "v2")
    journal.outcome(seq, False, "v9", "another version")
    assert {state: _sample(registry, "deploysim_rollout_targets", state=state)
            for state in ("new", "previous", "other", "unknown")} == {"new": 3, "previous": 1, "other": 1,
                                                                      "unknown": 1}
    assert _sample(registry, "deploysim_rollout_actions_total", kind="deploy", outcome="failed") == 2
    journal.event("halted", "needs people")
    assert _sample(registry, "deploysim_rollout_in_progress") == 0
    journal.close()


def test_every_metric_has_help_text_and_the_text_format_parses(tmp_path):
    _, journal, _ = _stopped_mid_bake(tmp_path)
    registry = CollectorRegistry()
    registry.register(RolloutCollector(journal))
    text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"deploysim_rollout_in_progress", "deploysim_rollout_stage", "deploysim_rollout_step",
            "deploysim_rollout_batch", "deploysim_rollout_last_decision_info",
            "deploysim_rollout_last_decision_timestamp_seconds", "deploysim_rollout_bake_remaining_seconds",
            "deploysim_rollout_targets", "deploysim_rollout_actions", "deploysim_rollout_paused",
            "deploysim_rollout_awaiting_approval", "deploysim_rollout_last_event_info"} <= set(families)
    assert all(f.documentation for f in families.values())
    assert families["deploysim_rollout_actions"].type == "counter"
    assert "counted from 0" in families["deploysim_rollout_step"].documentation
    # Without a journal (before the run has one) the collector serves nothing.
    assert list(RolloutCollector(None).collect()) == []
    journal.close()


# ------------------------------------------------------------------ over HTTP, from the command line


def _scrape(port: int) -> dict[tuple, float] | None:
    """/metrics as {(name, ((label, value), ...)): value}, or None if nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(metrics: dict, name: str, **labels: str) -> float | None:
    wanted = {"version": "v2", "pipeline": "code", "rollout": "state", **labels}
    return metrics.get((name, tuple(sorted(wanted.items()))))


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _baking_wave_1(proc, port: int):
    def baking():
        assert proc.poll() is None, proc.communicate()
        metrics = _scrape(port)
        if metrics and _value(metrics, "deploysim_rollout_last_decision_info", kind="BakeWait") == 1 \
                and _value(metrics, "deploysim_rollout_step") == 1:
            return metrics
        return None
    return baking


def test_a_run_serves_its_metrics_while_it_bakes_and_closes_the_port_when_it_ends(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(bakes_s=(1, 60, 1)), tmp_path / "fleet")
    state, port = tmp_path / "state", free_port()
    proc = cli("execute", str(scenario), "--inventory", str(inventory), "--version", "v2", "--state-dir", str(state),
               "--metrics-port", str(port), cwd=tmp_path)
    try:
        metrics = wait_until(_baking_wave_1(proc, port), 15, "the executor's metrics to show wave-1's bake")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert _value(metrics, "deploysim_rollout_in_progress") == 1
    assert _value(metrics, "deploysim_rollout_stage") == 0
    assert _value(metrics, "deploysim_rollout_stages") == 1 and _value(metrics, "deploysim_rollout_steps") == 3
    assert _value(metrics, "deploysim_rollout_steps_done") == 1
    assert 0 < _value(metrics, "deploysim_rollout_bake_remaining_seconds") <= 60
    assert _value(metrics, "deploysim_rollout_targets", state="new") == 3
    assert _value(metrics, "deploysim_rollout_targets", state="previous") == 3
    assert _value(metrics, "deploysim_rollout_actions_total", kind="deploy", outcome="done") == 3
    assert _value(metrics, "deploysim_rollout_last_event_info", kind="started") == 1
    assert proc.returncode == 130, (out, err)
    assert f"metrics on http://127.0.0.1:{port}/metrics" in err
    assert not _listening(port)

    # --resume with the port taken: one line naming the option, exit 2, the journal untouched.
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the run's connections may be in TIME_WAIT
        taken.bind(("127.0.0.1", port))
        taken.listen()
        events = len(Journal.in_dir(state, readonly=True).events())
        refused = cli("execute", "--resume", str(state), "--metrics-port", str(port), cwd=tmp_path)
        out, err = refused.communicate(timeout=30)
    assert refused.returncode == 2, (out, err)
    assert err.strip().count("\n") == 0 and f"--metrics-port {port}" in err and "in use" in err
    assert len(Journal.in_dir(state, readonly=True).events()) == events


def test_a_port_in_use_stops_a_fresh_run_before_anything_is_touched(tmp_path):
    from click.testing import CliRunner

    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    state = tmp_path / "state"
    args = ["execute", str(scenario), "--inventory", str(inventory), "--version", "v2", "--state-dir", str(state)]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, [*args, "--metrics-port", str(port)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: --metrics-port {port}: cannot listen on 127.0.0.1:{port}")
    assert result.output.count("\n") == 1
    assert not state.exists()
    only_address = CliRunner().invoke(main, [*args, "--metrics-address", "127.0.0.1"])
    assert only_address.exit_code == 2 and "--metrics-address goes with --metrics-port" in only_address.output


def test_the_endpoint_serves_nothing_before_it_has_a_journal_and_frees_its_port_on_close(tmp_path):
    endpoint = MetricsEndpoint(0)
    try:
        assert _listening(endpoint.port)
        assert _scrape(endpoint.port) == {}
    finally:
        endpoint.close()
    assert not _listening(endpoint.port)
    endpoint.close()  # again: nothing


# ------------------------------------------------------------------ a real Prometheus


def _query(url: str, promql: str) -> list[dict]:
    query = urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=2) as response:
            return json.load(response)["data"]["result"]
    except (OSError, ValueError, KeyError):
        return []


def test_a_real_prometheus_scrapes_the_executor_and_sees_the_rollout_in_progress(tmp_path, prometheus_binary):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(bakes_s=(1, 60, 1)), tmp_path / "fleet")
    state, port = tmp_path / "state", free_port()
    server = PrometheusServer(tmp_path / "prometheus")
    try:
        url = server.start({"executor": f"127.0.0.1:{port}"}, port=free_port(), scrape_interval_s=1.0)
        proc = cli("execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
                   "--state-dir", str(state), "--metrics-port", str(port), cwd=tmp_path)

        def seen(promql: str, value: str = "1"):
            assert proc.poll() is None, proc.communicate()
            return [r for r in _query(url, promql) if r["value"][1] == value]

        try:
            result = wait_until(lambda: seen("deploysim_rollout_in_progress"), 15,
                                "Prometheus to see deploysim_rollout_in_progress 1")
            step = wait_until(lambda: seen('deploysim_rollout_last_decision_info{kind="BakeWait"}'), 5,
                              "Prometheus to see a bake")
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
    finally:
        server.stop()
    labels = result[0]["metric"]
    assert (labels["version"], labels["pipeline"], labels["rollout"]) == ("v2", "code", "state")
    assert labels["instance"] == f"127.0.0.1:{port}"
    assert step[0]["metric"]["rollout"] == "state"
    assert proc.returncode == 130, (out, err)
