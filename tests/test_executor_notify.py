"""Notifications: real runs over the file fleet POST their events to a real local HTTP server and run
command hooks with their arguments filled in; a hook that fails or hangs never changes a run's
outcome (it is journaled as notify_failed); a bad `notify` section is one line naming the field."""

from __future__ import annotations

import datetime as dt
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from click.testing import CliRunner
from executor_support import fast_scenario_dict, versions, write_inputs

from deploysim.cli import main
from deploysim.executor import Executor, load_rollout
from deploysim.executor.inventory import make_adapter, make_metric_source
from deploysim.executor.journal import Journal


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(tmp_path, version, notify):
    scenario_path, inventory_path, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    inventory = yaml.safe_load(inventory_path.read_text())
    inventory["notify"] = notify
    rollout = load_rollout(scenario_path.read_text(), "scenario", yaml.safe_dump(inventory), "inventory", tmp_path,
                           version, None)
    state = tmp_path / "state"
    state.mkdir()
    journal = Journal.in_dir(state)
    executor = Executor(rollout, make_adapter(rollout.inventory, tmp_path),
                        make_metric_source(rollout.inventory, rollout.targets), journal)
    return executor.start(), journal, names, state


def _events(journal, kind):
    return [detail for _, _, k, detail in journal.events() if k == kind]


def _check_fields(payload, event, version, state):
    assert payload["event"] == event and payload["version"] == version and payload["pipeline"] == "code"
    assert payload["state_dir"] == str(state)
    when = dt.datetime.fromisoformat(payload["time"].replace("Z", "+00:00"))
    assert when.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) < 120
    assert payload["summary"] and "\n" not in payload["summary"] and payload["detail"]


def test_a_rolled_back_run_posts_start_alarm_and_rollback_and_runs_its_command_hook(tmp_path, hook_server):
    url = f"http://127.0.0.1:{hook_server.server_port}/hook"
    out = tmp_path / "hook-args.json"
    writer = "import json, sys; open(sys.argv[1], 'a').write(json.dumps(sys.argv[2:]) + '\\n')"
    notify = [{"on": ["start", "alarm", "rollback", "halt", "complete"], "http": url, "timeout": "5s"},
              {"on": ["rollback", "halt"], "command": [sys.executable, "-c", writer, str(out),
                                                     "deploysim {event} {version}: {summary}", "{pipeline}"]}]
    outcome, journal, names, state = _run(tmp_path, "v2-bad", notify)
    assert outcome.status == "rolled_back", outcome.message
    posts = [payload for _, payload in hook_server.received]
    assert [p["event"] for p in posts] == ["start", "alarm", "rollback"]
    assert all(content_type == "application/json" for content_type, _ in hook_server.received)
    for payload, event in zip(posts, ["start", "alarm", "rollback"], strict=True):
        _check_fields(payload, event, "v2-bad", state)
    assert "fault_rate" in posts[1]["summary"]
    assert posts[2]["summary"] == outcome.message
    # The command got its arguments filled in, each one argument (spaces and all), never through a shell.
    lines = out.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [[f"deploysim rollback v2-bad: {outcome.message}", "code"]]
    assert len(_events(journal, "notified")) == 4 and not _events(journal, "notify_failed")
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}


def test_a_completed_run_posts_start_and_complete_and_dead_or_hanging_hooks_change_nothing(tmp_path, hook_server):
    url = f"http://127.0.0.1:{hook_server.server_port}/hook"
    silent = socket.socket()  # accepts connections (the kernel's backlog) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    dead = _closed_port()
    try:
        notify = [{"on": ["start", "alarm", "rollback", "complete"], "http": url},
                  {"on": ["start", "complete"], "http": f"http://127.0.0.1:{dead}/hook", "timeout": "2s"},
                  {"on": ["complete"], "http": f"http://127.0.0.1:{silent.getsockname()[1]}/", "timeout": "0.5s"},
                  {"on": ["start"], "command": [sys.executable, "-c", "import time; time.sleep(60)"],
                   "timeout": "0.5s"},
                  {"on": ["complete"], "command": [sys.executable, "-c", "import sys; sys.exit(3)"]}]
        outcome, journal, names, state = _run(tmp_path, "v2", notify)
    finally:
        silent.close()
    assert (outcome.status, outcome.exit_code) == ("complete", 0), outcome.message
    posts = [payload for _, payload in hook_server.received]
    assert [p["event"] for p in posts] == ["start", "complete"]
    for payload, event in zip(posts, ["start", "complete"], strict=True):
        _check_fields(payload, event, "v2", state)
    assert posts[1]["summary"] == outcome.message
    failed = _events(journal, "notify_failed")
    assert len(failed) == 5, failed
    assert sum(f"cannot reach http://127.0.0.1:{dead}/hook" in f for f in failed) == 2
    assert sum("timed out" in f for f in failed) == 2 and sum("exit 3" in f for f in failed) == 1
    assert all("\n" not in f for f in failed)
    assert len(_events(journal, "notified")) == 2
    assert set(versions(tmp_path / "fleet", names).values()) == {"v2"}


@pytest.mark.parametrize(("notify", "field", "words"), [
    ("[{on: [start, explode], http: 'http://127.0.0.1:8080/hook'}]", "notify[0].on", "unknown event 'explode'"),
    ("[{on: [start], http: 'ftp://example.com/hook'}]", "notify[0].http", "expected an http(s) URL"),
    ("[{on: [start]}]", "notify[0]", "exactly one of http and command"),
    ("[{on: [start], http: 'http://h/', command: [echo]}]", "notify[0]", "exactly one of http and command"),
    ("[{on: [start], command: [echo, '{oops}']}]", "notify[0].command", "unknown placeholder {oops}"),
    ("[{on: [], command: [echo]}]", "notify[0].on", ""),
    ("[{on: [halt], command: [echo], timeout: 0s}]", "notify[0].timeout", "at least 0.1s"),
])
def test_a_bad_notify_section_is_one_line_naming_the_field(tmp_path, notify, field, words):
    scenario, inventory, _ = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    inventory.write_text(inventory.read_text() + f"notify: {notify}\n")
    result = CliRunner().invoke(main, ["execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
                                       "--plan"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and f": {field}: " in errors[0] and words in errors[0], result.stderr
    assert "Traceback" not in result.output


def test_a_good_notify_section_with_a_bare_on_key_is_accepted(tmp_path):
    scenario, inventory, _ = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    inventory.write_text(inventory.read_text() + "notify:\n"
                         "  - {on: [start, alarm, rollback, halt, complete], http: 'http://127.0.0.1:8080/hook', "
                         "timeout: 5s}\n"
                         "  - {on: [rollback, halt], command: [logger, 'deploysim {event} {version}: {summary}']}\n")
    result = CliRunner().invoke(main, ["execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
                                       "--plan"])
    assert result.exit_code == 0, result.output


def test_a_stage_awaiting_approval_and_the_operators_approval_are_posted(tmp_path, hook_server):
    """Whoever must approve hears of it (`approval`), and everyone hears of an operator's control."""
    scenario = fast_scenario_dict()
    scenario["policy"]["pipelines"]["code"]["stages"][0]["approval"] = {"timeout": "2m"}
    scenario_path, inventory_path, names = write_inputs(tmp_path, scenario, tmp_path / "fleet")
    inventory = yaml.safe_load(inventory_path.read_text())
    inventory["notify"] = [{"on": ["approval", "control"], "http": f"http://127.0.0.1:{hook_server.server_port}/"}]
    rollout = load_rollout(scenario_path.read_text(), "scenario", yaml.safe_dump(inventory), "inventory", tmp_path,
                           "v2", None)
    state = tmp_path / "state"
    state.mkdir()
    journal = Journal.in_dir(state)
    executor = Executor(rollout, make_adapter(rollout.inventory, tmp_path),
                        make_metric_source(rollout.inventory, rollout.targets), journal)

    def approver():  # another process's journal connection, as `deploysim approve` uses
        operator = Journal.in_dir(state)
        deadline = time.monotonic() + 60
        while not any(kind == "awaiting_approval" for _, _, kind, _ in operator.events()):
            assert time.monotonic() < deadline, "the stage never asked for approval"
            time.sleep(0.05)
        operator.request_control("approve", "dana@ops", "ticket 7")
        operator.close()

    thread = threading.Thread(target=approver)
    thread.start()
    outcome = executor.start()
    thread.join()
    assert outcome.status == "complete", outcome.message
    posts = [payload for _, payload in hook_server.received]
    assert [(p["event"], p["journal_event"]) for p in posts] == [("approval", "awaiting_approval"),
                                                                  ("control", "approved")]
    assert "deploysim approve" in posts[0]["summary"] and "dana@ops: ticket 7" in posts[1]["summary"]
