"""Prometheus metrics of the executor itself: where the rollout stands, as its journal says, served
on `/metrics` in the Prometheus text format while a run lasts (`deploysim execute --metrics-port`).

`RolloutCollector` is a prometheus_client collector that reads the journal at every scrape
(decisions, events, actions, the targets' versions, the journaled plan) and nothing of the rollout
loop: what it serves is what the journal holds, the same as `deploysim status` would print at
that instant. `MetricsEndpoint` serves it with prometheus_client's own HTTP server on a registry of
its own (not the process-wide default), bound to 127.0.0.1 unless told otherwise.

Every metric carries the labels `version`, `pipeline` (the journaled run's) and `rollout` (the
state directory's name). See docs/executor.md, "Metrics of the executor itself".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..policy.plan import PipelinePlan
from .journal import TERMINAL_EVENTS, Journal
from .status import journaled_plan, step_progress

LABELS = ("version", "pipeline", "rollout")
"""The labels of every metric: the run's version and pipeline, and its state directory's name."""

RUN_STARTS = ("started", "resumed")
"""Events that begin a process's work on the run (`in_progress` counts from the latest)."""
PAUSE_EVENTS = ("paused", "unpaused")
APPROVAL_EVENTS = ("awaiting_approval", "approved", "approval_timed_out")
ACTION_KINDS = ("deploy", "rollback", "preprod", "set_weight")
ACTION_OUTCOMES = ("done", "failed")
TARGET_STATES = ("new", "previous", "other", "unknown")


def _latest_of(events: list[tuple[int, float, str, str]], kinds: tuple[str, ...]) -> str | None:
    """The kind of the latest event among `kinds`, or None if there is none."""
    for _, _, kind, _ in reversed(events):
        if kind in kinds:
            return kind
    return None


def _in_progress(events: list[tuple[int, float, str, str]]) -> bool:
    """No terminal event since the latest start or resume (nor before any)."""
    for _, _, kind, _ in reversed(events):
        if kind in TERMINAL_EVENTS:
            return False
        if kind in RUN_STARTS:
            return True
    return True


class RolloutCollector:
    """The metrics of one journaled rollout, read from its journal at every scrape.

    `running` says whether this process is carrying the rollout out now (`in_progress` is 0 when it
    is not); `now` is the clock the remaining bake is counted on (the executor's, Unix seconds)."""

    def __init__(self, journal: Journal | None = None, *, now: Callable[[], float] = time.time,
                 running: Callable[[], bool] = lambda: True):
        self.journal = journal
        self.now = now
        self.running = running
        self._plan_key: tuple | None = None
        self._plan: PipelinePlan | None = None
        self._reading = threading.Lock()  # one scrape at a time; the journal is not closed under one

    def detach(self) -> Journal | None:
        """Stop reading the journal (once no scrape reads it); returns it."""
        with self._reading:
            journal, self.journal = self.journal, None
        return journal

    def _plan_of(self, meta: dict) -> PipelinePlan | None:
        """The journaled plan, loaded once (the scenario, version and pipeline of a journal do not change)."""
        key = (meta.get("scenario_text"), meta.get("scenario_path"), meta.get("version"), meta.get("pipeline"))
        if key != self._plan_key:
            self._plan, self._plan_key = journaled_plan(meta), key
        return self._plan

    def collect(self) -> Iterator[Metric]:
        with self._reading:  # read everything under the lock: the journal is not closed half way
            return iter(list(self._read()))

    def _read(self) -> Iterator[Metric]:
        journal = self.journal
        if journal is None:  # the run has no journal yet: nothing to tell
            return
        meta = journal.meta()
        if "version" not in meta:
            return
        version = str(meta["version"])
        labels = [version, str(meta.get("pipeline", "")), Path(journal.path).resolve().parent.name]

        def gauge(name: str, help_text: str, value: float | None, **extra: str) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, help_text, labels=[*LABELS, *extra])
            if value is not None:
                family.add_metric([*labels, *extra.values()], value)
            return family

        events = journal.events()
        last = journal.last_decision()
        yield gauge("deploysim_rollout_in_progress",
                    "1 while this executor process carries the rollout out and no terminal event (complete, "
                    "rolled_back, failed, halted, stopped, ...) was journaled since its start or resume; else 0",
                    int(self.running() and _in_progress(events)))

        where = "of the last journaled decision, counted from 0 as the journal keeps them (the log and status " \
                "count from 1); absent when the last decision has none"
        yield gauge("deploysim_rollout_stage", f"Stage {where}", None if last is None else last.stage)
        yield gauge("deploysim_rollout_step", f"Step within its stage {where}", None if last is None else last.step)
        yield gauge("deploysim_rollout_batch", f"Batch within its step {where} (a bake has no batch)",
                    None if last is None else last.batch)
        plan = self._plan_of(meta)
        if plan is not None:
            yield gauge("deploysim_rollout_stages", "Stages in the journaled plan", len(plan.stages))
            yield gauge("deploysim_rollout_steps", "Steps in the journaled plan, all stages together",
                        sum(len(stage.steps) for stage in plan.stages))
            progress = step_progress(plan, journal.decisions())
            yield gauge("deploysim_rollout_steps_done",
                        "Steps of the plan the journaled decisions took past (as `deploysim status` shows them)",
                        sum(row["state"].startswith("done") for row in progress))

        info = GaugeMetricFamily("deploysim_rollout_last_decision_info",
                                 "The kind of the last journaled decision (EnterStage, WaitBlocker, DeployBatch, "
                                 "BakeWait, RollBack, Fail, Complete) as the label kind; always 1",
                                 labels=[*LABELS, "kind"])
        if last is not None:
            info.add_metric([*labels, last.kind], 1)
        yield info
        yield gauge("deploysim_rollout_last_decision_timestamp_seconds",
                    "When the last decision was journaled, Unix time in seconds",
                    None if last is None else last.time_s)
        remaining = 0.0
        if last is not None and last.kind == "BakeWait" and "min_until_s" in last.detail:
            remaining = max(0.0, float(last.detail["min_until_s"]) - self.now())
        yield gauge("deploysim_rollout_bake_remaining_seconds",
                    "Seconds until the bake's duration ends, when the last decision is a bake (BakeWait); else 0. "
                    "A bake waiting for its minimum data after that shows 0", remaining)

        previous = journal.previous_versions()
        counts = dict.fromkeys(TARGET_STATES, 0)
        for name, current in journal.current_versions().items():
            if current is None:
                counts["unknown"] += 1
            elif current == version:
                counts["new"] += 1
            elif current == previous.get(name):
                counts["previous"] += 1
            else:
                counts["other"] += 1
        targets = GaugeMetricFamily("deploysim_rollout_targets",
                                    "Targets by the version the journal last recorded for them: state new (the "
                                    "rollout's version), previous (the version before the rollout), other, or "
                                    "unknown (an action's outcome could not tell)", labels=[*LABELS, "state"])
        for state, count in counts.items():
            targets.add_metric([*labels, state], count)
        yield targets

        done = {(kind, outcome): 0 for kind in ACTION_KINDS for outcome in ACTION_OUTCOMES}
        for action in journal.actions():
            if action.phase in ACTION_OUTCOMES:
                done[(action.kind, action.phase)] = done.get((action.kind, action.phase), 0) + 1
        actions = CounterMetricFamily("deploysim_rollout_actions",
                                      "Adapter actions journaled with their outcome, by kind (deploy, rollback, "
                                      "preprod, set_weight) and outcome (done, failed), over the whole run "
                                      "(all its processes)",
                                      labels=[*LABELS, "kind", "outcome"])
        for (kind, outcome), count in done.items():
            actions.add_metric([*labels, kind, outcome], count)
        yield actions

        yield gauge("deploysim_rollout_paused",
                    "1 if the latest of the events paused and unpaused is paused (an operator's pause); else 0",
                    int(_latest_of(events, PAUSE_EVENTS) == "paused"))
        yield gauge("deploysim_rollout_awaiting_approval",
                    "1 if the latest of the events awaiting_approval, approved and approval_timed_out is "
                    "awaiting_approval (a manual approval step waits for people); else 0",
                    int(_latest_of(events, APPROVAL_EVENTS) == "awaiting_approval"))
        event_info = GaugeMetricFamily("deploysim_rollout_last_event_info",
                                       "The kind of the latest journaled event (started, resumed, complete, "
                                       "halted, ...) as the label kind; always 1", labels=[*LABELS, "kind"])
        if events:
            event_info.add_metric([*labels, events[-1][2]], 1)
        yield event_info


class MetricsEndpoint:
    """`/metrics` of one run on `address`:`port`, served by prometheus_client's HTTP server in a
    thread of its own from the moment it is made (an OSError if it cannot listen there), until
    `close()`. Until `attach` gives it the run's state directory it serves no metric; `running` is
    the flag `deploysim_rollout_in_progress` reads."""

    def __init__(self, port: int, address: str = "127.0.0.1", *, now: Callable[[], float] = time.time):
        self.running = threading.Event()
        self.collector = RolloutCollector(now=now, running=self.running.is_set)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        self._server, self._thread = start_http_server(port, addr=address, registry=self.registry)
        self.port = int(self._server.server_port)
        self.address = address
        self._closed = False

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/metrics"

    def attach(self, state_dir: Path) -> None:
        """Serve the metrics of the run journaled in `state_dir`, read through a read-only connection
        of the endpoint's own (a scrape never waits on, nor holds up, the executor's writes)."""
        self.collector.journal = Journal.in_dir(state_dir, readonly=True)

    def close(self) -> None:
        """Stop serving and free the port (again: nothing)."""
        if self._closed:
            return
        self._closed = True
        self.running.clear()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        journal = self.collector.detach()
        if journal is not None:
            journal.close()
