"""The `local` adapter: deploys the real processes of a local fleet (deploysim.localfleet).

A deploy stops the host's process and starts the requested version on the same loopback port,
then waits for its /healthz; see deploysim.localfleet.fleet. Every call is safe to repeat: a host
already serving the version healthily is left alone. A failed deploy is retried as the inventory's
`retries` and `backoff` say, as the command adapter's commands are.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..localfleet import procs
from ..localfleet.fleet import FleetError, LocalFleet
from ..localfleet.loadgen import WEIGHTS_FILE
from .interfaces import ActionResult, SpawnListener, Target
from .retry import BackoffWait, plain_wait, retry


class LocalAdapter:
    """Adapter over the fleet in `fleet_dir` (the directory `deploysim local up --dir` made)."""

    def __init__(self, fleet_dir: str | os.PathLike, *, retries: int = 0, backoff_s: float = 2.0):
        self.fleet_dir = Path(fleet_dir)
        self.fleet = LocalFleet(self.fleet_dir)  # FleetError (one line) when there is no fleet there
        self.spawn_listener: SpawnListener | None = None
        self.retries = retries
        self.backoff_s = backoff_s
        self.wait: BackoffWait = plain_wait

    def _known(self, target: Target) -> ActionResult | None:
        if target.name not in self.fleet.hosts:
            return ActionResult(False, f"host {target.name} is not in the local fleet at {self.fleet.dir}")
        return None

    def deploy(self, target: Target, version: str, *, timeout_s: float) -> ActionResult:
        unknown = self._known(target)
        if unknown is not None:
            return unknown
        ok, attempts = retry(lambda: self._deploy_once(target, version, timeout_s), lambda r: r.ok,
                             retries=self.retries, backoff_s=self.backoff_s, wait=self.wait)
        detail = attempts[-1].detail if len(attempts) == 1 else "\n".join(
            f"attempt {i + 1}: {a.detail}" for i, a in enumerate(attempts))
        return ActionResult(ok, detail, len(attempts))

    def set_weight(self, stage: str, region: str, weight_pct: float, version: str, *,
                   timeout_s: float) -> ActionResult | None:
        """The fleet's load generator sends `weight_pct` percent of the requests to the hosts running
        `version`, the rest to the others (DIR/weights.json, read every second)."""
        procs.write_json(self.fleet_dir / WEIGHTS_FILE, {"version": version, "weight_pct": weight_pct,
                                                         "stage": stage, "region": region})
        return ActionResult(True, f"load generator: {weight_pct:g}% of the requests to {version}")

    def _forget_weight(self, version: str) -> None:
        """A deploy of another version (a rollback, the next rollout) ends a traffic weight."""
        weight = procs.read_json(self.fleet_dir / WEIGHTS_FILE)
        if weight is not None and weight.get("version") != version:
            (self.fleet_dir / WEIGHTS_FILE).unlink(missing_ok=True)

    def _deploy_once(self, target: Target, version: str, timeout_s: float) -> ActionResult:
        self._forget_weight(version)
        try:
            outcome = self.fleet.deploy(target.name, version, timeout_s=timeout_s)
        except (FleetError, OSError) as error:
            return ActionResult(False, f"{target.name}: {error}")
        return ActionResult(outcome.ok, outcome.detail)

    def rollback(self, target: Target, version: str, *, timeout_s: float) -> ActionResult:
        return self.deploy(target, version, timeout_s=timeout_s)

    def current_version(self, target: Target, *, timeout_s: float) -> str | None:
        if target.name not in self.fleet.hosts:
            return None
        return self.fleet.live_version(target.name, timeout_s=timeout_s)

    def healthy(self, target: Target, *, timeout_s: float) -> bool:
        if target.name not in self.fleet.hosts:
            return False
        return self.fleet.healthy(target.name, timeout_s=timeout_s)

    def preprod(self, stage: str, version: str, *, timeout_s: float) -> ActionResult | None:
        """The local fleet has no pre-production tests: a pre-production stage only waits."""
        return None

    def set_backoff_wait(self, wait: BackoffWait | None) -> None:
        """Wait the back-off between deploy attempts with `wait` (True: give up at once)."""
        self.wait = wait or plain_wait

    def set_spawn_listener(self, listener: SpawnListener | None) -> None:
        """Kept for the protocol's sake. The local fleet's processes are services that outlive the
        call by design (the fleet tracks them itself), so none is reported as a command to reap."""
        self.spawn_listener = listener
