"""Run replications in order-independent units: in this process, on a local process pool, or on a
Dask distributed cluster, with a progress bar that stays silent when nobody is watching.

Replication i of every policy gets the same child seed, ``SeedSequence(seed).spawn(n)[i]``, so
policies meet the same random world (common random numbers) and a result never depends on which
worker ran it or in what order.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..process_tuning import tune_process
from ..scenario import Scenario
from .replication import METRIC_COLUMNS, Settings, run_replication

CHUNK = 4  # replications per pool task: few enough for a lively progress bar, enough to amortise pickling


def child_seeds(seed: int | np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """The n independent child streams of `seed`, the same on every call (the parent is not consumed)."""
    parent = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    return [np.random.SeedSequence(parent.entropy, spawn_key=tuple(parent.spawn_key) + (i,), pool_size=parent.pool_size)
            for i in range(n)]


@dataclass(frozen=True)
class Task:
    policy: str
    replication: int
    seed: np.random.SeedSequence


# ------------------------------------------------------------------ the work itself

_WORKER_STATE: dict[str, Any] = {}


def _init_worker(scenarios: Mapping[str, Scenario], settings: Settings, keep_changes: bool) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    _WORKER_STATE.update(scenarios=scenarios, settings=settings, keep_changes=keep_changes)
    tune_process()  # a pool worker is deploysim's own process


def _run_chunk(tasks: Sequence[Task]) -> list[tuple[dict, pd.DataFrame | None]]:
    s = _WORKER_STATE
    return [run_replication(s["scenarios"][t.policy], t.seed, s["settings"], s["keep_changes"]) for t in tasks]


def _run_on_dask(task: Task, scenarios: Mapping[str, Scenario], settings: Settings,
                 keep_changes: bool) -> tuple[dict, pd.DataFrame | None]:
    return run_replication(scenarios[task.policy], task.seed, settings, keep_changes)


# ------------------------------------------------------------------ drivers

def default_workers() -> int:
    """All the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _progress_bar(total: int, show: bool | None, desc: str):
    if show is None:
        show = sys.stderr.isatty()
    if show:
        from tqdm.auto import tqdm  # a notebook widget where one can be drawn, else text
    else:
        from tqdm import tqdm  # disabled: no widget machinery, no warnings
    return tqdm(total=total, desc=desc, unit="rep", disable=not show, leave=False, file=sys.stderr)


def run_tasks(scenarios: Mapping[str, Scenario], replications: int, seed: int | np.random.SeedSequence,
              settings: Settings, *, workers: int | None = None, client: Any = None,
              progress: bool | None = None, keep_changes: bool = True,
              desc: str = "simulating", start_method: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every policy × replication; returns (replications frame, changes frame) in a fixed order.

    `workers=1` runs here; more runs on a local process pool (default: one per CPU); `client`
    (a ``dask.distributed.Client``) runs on that cluster instead. `start_method` starts the local
    pool's processes (None: fork where the platform has it, else spawn). `progress=None` shows a
    bar only when stderr is a terminal.
    """
    if replications < 1:
        raise ValueError(f"replications must be at least 1, got {replications}")
    seeds = child_seeds(seed, replications)
    tasks = [Task(policy, i, seeds[i]) for i in range(replications) for policy in scenarios]
    if client is not None:
        outputs = _run_dask(client, tasks, scenarios, settings, keep_changes, progress, desc)
    else:
        workers = default_workers() if workers is None else workers
        context = pool_context(start_method)  # checked even when no pool is needed
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if workers == 1 or len(tasks) == 1:
            outputs = _run_here(tasks, scenarios, settings, keep_changes, progress, desc)
        else:
            outputs = _run_pool(workers, tasks, scenarios, settings, keep_changes, progress, desc, context)
    return _frames(tasks, outputs)


def _run_here(tasks, scenarios, settings, keep_changes, progress, desc):
    outputs = []
    with _progress_bar(len(tasks), progress, desc) as bar:
        for t in tasks:
            outputs.append(run_replication(scenarios[t.policy], t.seed, settings, keep_changes))
            bar.update(1)
    return outputs


def pool_context(start_method: str | None = None):
    """The multiprocessing context the local pool starts its workers with.

    By default fork where the platform has it: workers start at once and scripts need no
    __main__ guard. Spawned workers start afresh (their own string hash seed, no inherited state),
    which is how a result is checked not to depend on the process it ran in.
    """
    methods = multiprocessing.get_all_start_methods()
    if start_method is None:
        start_method = "fork" if "fork" in methods else "spawn"
    if start_method not in methods:
        raise ValueError(f"start_method must be one of {', '.join(methods)}; got {start_method!r}")
    return multiprocessing.get_context(start_method)


def pool_chunks(tasks: Sequence[Task], workers: int) -> list[Sequence[Task]]:
    """Tasks cut into pool jobs, in order: up to CHUNK replications each while plenty remain, then
    fewer, down to one at a time for the last few, so the workers run out of work together rather
    than one idling while the other finishes a whole chunk (a replication's cost varies with its
    world: with CHUNK equal jobs the wait at the end is up to CHUNK replications)."""
    chunks = []
    i = 0
    while i < len(tasks):
        size = max(1, min(CHUNK, (len(tasks) - i) // (2 * workers)))
        chunks.append(tasks[i:i + size])
        i += size
    return chunks


def _run_pool(workers, tasks, scenarios, settings, keep_changes, progress, desc, context):
    chunks = pool_chunks(tasks, workers)
    results: list[Any] = [None] * len(chunks)
    # The pool is made before the progress bar so no thread of ours exists when it forks.
    pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context,
                                  initializer=_init_worker, initargs=(dict(scenarios), settings, keep_changes))
    with pool, _progress_bar(len(tasks), progress, desc) as bar:
        futures = {pool.submit(_run_chunk, chunk): i for i, chunk in enumerate(chunks)}
        for future in cf.as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            bar.update(len(chunks[i]))
    return [out for chunk in results for out in chunk]


def _run_dask(client, tasks, scenarios, settings, keep_changes, progress, desc):
    from distributed import as_completed

    shared = client.scatter(dict(scenarios), broadcast=True)
    futures = client.map(_run_on_dask, tasks, scenarios=shared, settings=settings,
                         keep_changes=keep_changes, pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    outputs: list[Any] = [None] * len(tasks)
    with _progress_bar(len(tasks), progress, desc) as bar:
        for future in as_completed(futures):
            outputs[index[future.key]] = future.result()
            bar.update(1)
    return outputs


def _frames(tasks: Sequence[Task], outputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [
        {"policy": t.policy, "replication": t.replication, **row} for t, (row, _) in zip(tasks, outputs, strict=True)
    ]
    # Drawn world parameters (monte_carlo(..., parameter_uncertainty=True)) follow the figures.
    extra = list(dict.fromkeys(k for row in rows for k in row if k not in METRIC_COLUMNS
                               and k not in ("policy", "replication")))
    reps = pd.DataFrame(rows, columns=["policy", "replication", *METRIC_COLUMNS, *extra])
    order = {policy: i for i, policy in enumerate(dict.fromkeys(t.policy for t in tasks))}
    reps = reps.sort_values(["policy", "replication"], key=lambda col: col.map(order) if col.name == "policy" else col,
                            kind="stable").reset_index(drop=True)
    parts = []
    for t, (_, changes) in zip(tasks, outputs, strict=True):
        if changes is not None and len(changes):
            parts.append(changes.assign(policy=t.policy, replication=t.replication))
    changes = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(changes):
        front = ["policy", "replication"]
        changes = changes[front + [c for c in changes.columns if c not in front]]
        changes = changes.sort_values(["policy", "replication", "change_id"],
                                      key=lambda col: col.map(order) if col.name == "policy" else col,
                                      kind="stable").reset_index(drop=True)
    return reps, changes
