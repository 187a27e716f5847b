"""Builders shared by the executor tests: a fleet of version files driven by the command adapter
(`executor_fleet.py`), its inventory, and small fast scenarios."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import yaml

import deploysim
from deploysim.executor import StepClock
from deploysim.fleet import build_fleet, host_names

CLI = [sys.executable, "-c", "from deploysim.cli import main; main()"]
"""`deploysim` as a user runs it, in this interpreter."""
HELPER = str(Path(__file__).resolve().parent / "executor_fleet.py")


def file_fleet(root: Path, names, version: str = "v1") -> Path:
    """A directory with one version file per target, all on `version`."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / f"{name}.version").write_text(version + "\n")
    return root


def versions(root: Path, names) -> dict[str, str]:
    return {name: (root / f"{name}.version").read_text().strip() for name in names}


def command_inventory(fleet_dir: Path, names, *, sleep_s: float = 0.0, timeout: str = "20s", retries: int = 0,
                      backoff: str = "0.1s", parallel: int = 1, health: bool = False) -> dict:
    """An inventory whose adapter and metrics are the file fleet's commands."""
    deploy = [sys.executable, HELPER, str(fleet_dir), "deploy", "{target}", "{version}"]
    if sleep_s:
        deploy.append(str(sleep_s))
    inv = {
        "adapter": {"kind": "command", "deploy": deploy,
                    "current_version": [sys.executable, HELPER, str(fleet_dir), "current", "{target}"],
                    "timeout": timeout, "retries": retries, "backoff": backoff, "parallel": parallel},
        "metrics": {"kind": "command", "command": [sys.executable, HELPER, str(fleet_dir), "metrics", "{metric}",
                                                   "{start}", "{end}", "{period}", "{targets}"]},
        "targets": {name: {"address": f"file:{name}"} for name in names},
    }
    if health:
        inv["adapter"]["health"] = [sys.executable, HELPER, str(fleet_dir), "health", "{target}"]
    return inv


def fast_scenario_dict(hosts_per_cell: int = 3, cells_per_az: int = 2, bakes_s=(1, 2, 1)) -> dict:
    """One region, one AZ, 2 cells of 3 hosts; 1 s metric periods and 1 s bakes, so a real rollout
    over the file fleet takes a few seconds. The one-box is not watched; each wave watches a
    1-of-1 error-rate alarm, so a version named "...bad..." rolls back from the first wave."""
    return {
        "name": "fast",
        "metric_period": "1s",
        "fleet": {"regions": [{"name": "r1", "timezone": "UTC", "azs": 1, "cells_per_az": cells_per_az,
                               "hosts_per_cell": hosts_per_cell}]},
        "traffic": {"requests_per_min": 6000},
        "changes": {"code": {"arrivals": {"changes_per_week": 1}, "bad_probability": 0.0}},
        "alarms": {"metric": [{"name": "fault_rate", "metric": "error_rate", "threshold": 0.5,
                               "evaluation_periods": 1, "datapoints_to_alarm": 1}]},
        "policy": {"pipelines": {"code": {
            "watch": {"wave": ["fault_rate"]},
            "blockers": {"incidents": False},
            "stages": [{"name": "prod", "kind": "production", "regions": ["r1"],
                        "one_box": {"hosts": 1, "bake": bakes_s[0]},
                        "batching": {"max_share": 0.5, "duration": "0s"},
                        "waves": [{"unit": "cell", "count": 1, "bake": bakes_s[1]},
                                  {"unit": "cell", "count": "rest", "bake": bakes_s[2]}]}]}}},
    }


def manual_rollback(scenario: dict) -> dict:
    """`scenario` with automatic rollback off: a failed deploy halts for people instead of rolling back."""
    scenario["policy"]["pipelines"]["code"]["rollback"] = {"automatic": False}
    return scenario


def write_inputs(tmp: Path, scenario: dict, fleet_root: Path, **inventory_options) -> tuple[Path, Path, list[str]]:
    """Scenario and inventory files for a file fleet; returns their paths and the host names."""
    names = list(host_names(build_fleet(deploysim.scenario_from_dict(scenario))))
    file_fleet(fleet_root, names)
    scenario_path = tmp / "scenario.yaml"
    inventory_path = tmp / "inventory.yaml"
    scenario_path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    inventory_path.write_text(yaml.safe_dump(command_inventory(fleet_root, names, **inventory_options),
                                             sort_keys=False))
    return scenario_path, inventory_path, names


def cli(*args: str, cwd: Path) -> subprocess.Popen:
    """Start `deploysim ARGS` as its own process (to be killed, signalled or run side by side)."""
    return subprocess.Popen([*CLI, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def action_rows(journal_path: Path, kind: str = "") -> int:
    """Rows in the journal's actions table (only those of `kind` if given)."""
    if not journal_path.exists():
        return 0
    try:
        with sqlite3.connect(f"{journal_path.resolve().as_uri()}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM actions WHERE ? IN ('', kind)", (kind,)).fetchone()[0]
    except sqlite3.OperationalError:  # created but no tables yet
        return 0


class CtrlCAt(StepClock):
    """A step clock that plays Ctrl-C (sets `stop`) once it passes `at_s`."""

    def __init__(self, start_s: float, at_s: float, stop: threading.Event):
        super().__init__(start_s)
        self.at_s, self.stop = at_s, stop

    def sleep(self, seconds: float, stop=None) -> bool:
        stopped = super().sleep(seconds, stop)
        if self.now() >= self.at_s:
            self.stop.set()
        return stopped
