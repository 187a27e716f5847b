"""What `deploysim local` manages beside the hosts: their ports, the detached load generator and the
inventory file that points `deploysim execute` at the fleet. Library code; the command only prints.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from . import procs
from .fleet import LocalFleet

LOADGEN_SCRIPT = Path(__file__).with_name("loadgen.py")
INVENTORY = "inventory.yaml"


def default_versions_file(scenario_path: Path) -> Path:
    """scenarios/local-fleet.yaml -> scenarios/local-fleet.versions.yaml"""
    name = scenario_path.name
    stem = name[: -len(".yaml")] if name.endswith(".yaml") else name.rsplit(".", 1)[0]
    return scenario_path.with_name(f"{stem}.versions.yaml")


def choose_ports(directory: Path, names: Sequence[str], base_port: int | None, avoid: int) -> dict[str, int]:
    """Host -> port: the fleet directory's own ports when it already holds these hosts, else consecutive
    ports from `base_port`, else free ports picked by the system (never `avoid`, Prometheus's port)."""
    existing = procs.read_json(directory / "fleet.json")
    if existing is not None and list(existing.get("hosts", {})) == list(names):
        return {n: int(p) for n, p in existing["hosts"].items()}
    if base_port is not None:
        return {n: base_port + i for i, n in enumerate(names)}
    ports: dict[str, int] = {}
    for n in names:
        port = procs.free_port()
        while port in ports.values() or port == avoid:
            port = procs.free_port()
        ports[n] = port
    return ports


def start_hosts(fleet: LocalFleet, names: Sequence[str], version: str | None, first_version: str,
                timeout_s: float = 30.0) -> list:
    """Start every host: on `version` if given; else hosts without a version on `first_version` and the
    others on the version they had. Returns the fleet's start outcomes."""
    if version:
        return fleet.start(version, timeout_s=timeout_s)
    fresh = [n for n in names if not fleet.state(n).get("version")]
    outcomes = fleet.start(first_version, names=fresh, timeout_s=timeout_s) if fresh else []
    if len(fresh) < len(names):
        outcomes += fleet.start(None, names=[n for n in names if n not in fresh], timeout_s=timeout_s)
    return outcomes


# ---------------------------------------------------------------- load generator


def loadgen_state(directory: Path) -> dict:
    """What loadgen.json records: pid, rate and start time ({} before the first start)."""
    return procs.read_json(directory / "loadgen.json") or {}


def loadgen_running(directory: Path) -> bool:
    return procs.is_ours(loadgen_state(directory).get("pid"), "--fleet-dir", str(directory))


def start_loadgen(directory: Path, rate: float) -> int:
    """Start (or keep, at the same rate) the detached load generator of the fleet; returns its pid."""
    state = loadgen_state(directory)
    if loadgen_running(directory):
        if state.get("rate") == rate:
            return int(state["pid"])
        procs.stop_pid(int(state["pid"]))
    argv = [procs.PYTHON, str(LOADGEN_SCRIPT), "--fleet-dir", str(directory), "--rate", f"{rate:g}"]
    pid = procs.spawn_detached(argv, directory / "logs" / "loadgen.log", cwd=directory)
    procs.write_json(directory / "loadgen.json", {"pid": pid, "rate": rate, "started_at": time.time()})
    return pid


def stop_loadgen(directory: Path) -> bool:
    """Stop the load generator; False if it was not running."""
    state = loadgen_state(directory)
    if not loadgen_running(directory):
        return False
    procs.stop_pid(int(state["pid"]))
    state["pid"] = None
    procs.write_json(directory / "loadgen.json", state)
    return True


# ---------------------------------------------------------------- inventory


def write_inventory(directory: Path, fleet: LocalFleet, metrics: dict) -> Path:
    """DIR/inventory.yaml: the local adapter, `metrics` as the metric source, every host's address."""
    inventory = {
        "adapter": {"kind": "local", "fleet_dir": ".", "timeout": "30s", "retries": 2, "backoff": "1s"},
        "metrics": metrics,
        "targets": {name: {"address": fleet.address(name), "labels": {}} for name in fleet.hosts},
    }
    path = directory / INVENTORY
    path.write_text("# Written by `deploysim local up`: the local fleet in this directory, for `deploysim execute`.\n"
                    + yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return path
