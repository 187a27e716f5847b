"""The one rollout loop: ask the controller, carry the decision out through a driver, observe, repeat.

The simulator, the real executor and `execute --plan` all run this loop; they differ only in their
`Driver`. A driver carries decisions out and reports what it saw; it decides nothing.

A driver's methods may be plain functions (the real clock: they return when the action is done) or
generators (a simulated clock: they yield the simulator's events and return their result), so
`drive` is itself a generator. `run_to_end` runs it for a driver of plain functions.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import Any, Protocol, TypeVar

from .controller import RolloutController
from .decisions import (
    BakeWait,
    Complete,
    Decision,
    DeployBaseline,
    DeployBatch,
    EnterStage,
    Fail,
    Observation,
    RemoveBaseline,
    RollBack,
    WaitApproval,
    WaitBlocker,
)

T = TypeVar("T")


class Driver(Protocol):
    """A body that carries out decisions: the simulator, the real executor, or the planner.

    Each `enter_stage`, `wait_blocker`, `wait_approval`, `deploy_batch`, `deploy_baseline`,
    `remove_baseline` and `bake` returns the `Observation` made
    while carrying the decision out; `roll_back`, `fail` and `complete` end the rollout and return
    the body's outcome, which `drive` returns.
    """

    def now(self) -> float:
        """The body's current time in seconds (simulated, or Unix seconds)."""
        ...

    def record(self, now_s: float, decision: Decision) -> None:
        """Note a decision the controller just took (a log, a journal)."""
        ...

    def enter_stage(self, decision: EnterStage) -> Any: ...

    def wait_blocker(self, decision: WaitBlocker) -> Any: ...

    def wait_approval(self, decision: WaitApproval) -> Any: ...

    def deploy_batch(self, decision: DeployBatch) -> Any: ...

    def deploy_baseline(self, decision: DeployBaseline) -> Any: ...

    def remove_baseline(self, decision: RemoveBaseline) -> Any: ...

    def bake(self, decision: BakeWait) -> Any: ...

    def roll_back(self, decision: RollBack) -> Any: ...

    def fail(self, decision: Fail) -> Any: ...

    def complete(self, decision: Complete) -> Any: ...


def _carry_out(driver: Driver, decision: Decision) -> Any:
    if isinstance(decision, EnterStage):
        return driver.enter_stage(decision)
    if isinstance(decision, WaitBlocker):
        return driver.wait_blocker(decision)
    if isinstance(decision, WaitApproval):
        return driver.wait_approval(decision)
    if isinstance(decision, DeployBatch):
        return driver.deploy_batch(decision)
    if isinstance(decision, DeployBaseline):
        return driver.deploy_baseline(decision)
    if isinstance(decision, RemoveBaseline):
        return driver.remove_baseline(decision)
    if isinstance(decision, BakeWait):
        return driver.bake(decision)
    if isinstance(decision, RollBack):
        return driver.roll_back(decision)
    if isinstance(decision, Fail):
        return driver.fail(decision)
    if isinstance(decision, Complete):
        return driver.complete(decision)
    raise TypeError(f"not a decision: {decision!r}")


def drive(controller: RolloutController, driver: Driver, first: Decision | None = None) -> Generator[Any, Any, Any]:
    """Run one version's rollout to its end; returns what the driver's final action returns.

    `first` is a decision to carry out before asking the controller again (a resumed run's
    interrupted decision, or an operator's rollback); it is not recorded again.
    """
    observation = Observation()
    decision = first
    while True:
        if decision is None:
            now = driver.now()
            decision = controller.decide(now, observation)
            driver.record(now, decision)
        result = _carry_out(driver, decision)
        if inspect.isgenerator(result):
            result = yield from result
        if isinstance(decision, (RollBack, Fail, Complete)):
            return result
        observation = result if isinstance(result, Observation) else Observation()
        decision = None


def run_to_end(loop: Generator[Any, Any, T]) -> T:
    """Run `drive(...)` for a driver whose methods never yield (the real clock, the planner)."""
    try:
        next(loop)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("a driver of plain functions yielded; use a simulation environment to run it")
