"""Random streams derived from one seed, by position, so that results never depend on call order.

A run's seed has five child streams, each used for one thing only:

- child 0, the world: traffic, change arrivals and defects, faults, people's fixed delays and
  mitigation times (`deploysim.world`);
- child 1, metric noise: the key below which every datapoint's noise is drawn by scope, noise kind
  and period (`deploysim.noise`), never in call order;
- child 2, the sampling of the SLA's error counts;
- child 3, people (`deploysim.people`): report thresholds, support triage and on-call response,
  keyed by (change id, attempt, purpose), never in call order;
- child 4, a replay's scripted changes (`deploysim.replay`): their people times, keyed by position.

Adding a stream means taking the next position; reordering them would change every result.
"""

from __future__ import annotations

import numpy as np


def as_seed_sequence(seed: int | np.random.SeedSequence) -> np.random.SeedSequence:
    return seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)


def child_seed(parent: np.random.SeedSequence, *path: int) -> np.random.SeedSequence:
    """The child stream at `path` below `parent`.

    Unlike `SeedSequence.spawn`, this does not change `parent`: asking twice gives the same child,
    so reusing a seed (or handing it to another process) reproduces the same run.
    """
    return np.random.SeedSequence(
        entropy=parent.entropy, spawn_key=tuple(parent.spawn_key) + tuple(int(p) for p in path),
        pool_size=parent.pool_size,
    )
