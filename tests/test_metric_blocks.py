"""The metric model computes long windows with many exposure intervals in blocks of periods:
every figure must be the one a single block gives, to the last bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import SCENARIOS

import deploysim.metrics as metrics_module
from deploysim.engine import Simulation
from deploysim.scenario import load_scenario


@pytest.fixture(scope="module")
def no_safety_run() -> Simulation:
    """A few days of no-safety: every deployment reaches every host, so intervals pile up."""
    sim = Simulation(load_scenario(SCENARIOS / "no-safety.yaml"), seed=1, months=0.25)
    sim.run()
    return sim


def figures(m: metrics_module.WindowMetrics) -> dict:
    out = {f.name: getattr(m, f.name) for f in dataclasses.fields(m) if f.name not in ("model", "noise")}
    out["latency_ms"] = m.latency_ms
    return out


def assert_same_bits(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_bits(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), where
    else:
        assert a == b, where


def test_blocks_give_the_single_block_figures(no_safety_run: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = no_safety_run
    model, log, lay = sim.metrics, sim.exposures, sim.layout
    assert log.size > 100
    monkeypatch.setattr(metrics_module, "BLOCK_MIN_INTERVALS", 1)  # blocks whenever the window is long enough
    day, p = 1440, model.period_s
    windows = []
    for c in np.unique(log.change[:log.size]).tolist():  # windows around each bad change's first interval
        k = int(log.on_s[log.rows_of(c)[0]] // p)
        windows += [(k - 30, k - 30 + day), (k - 7, k - 7 + 2 * metrics_module.BLOCK_PERIODS + 1), (k + 3, k + 5)]
    cases = []
    for k0, k1 in windows:
        for region in (0, lay.n_regions - 1):
            hosts = lay.hosts_in_region(region)
            cases.append((hosts, k0, k1, {}))
            cases.append((hosts, k0, k1, {"only_change": int(log.change[0]), "baseline": False}))
        cases.append((hosts[:3], k0, k1, {}))
    blocked = [figures(model.expected(h, k0, k1, log, **kw)) for h, k0, k1, kw in cases]
    n_blocks = [len(model._blocks(log.on_s[:log.size], log.off_s[:log.size], k0, k1)) for _, k0, k1, _ in cases]
    assert max(n_blocks) >= 2  # the blocked path is taken
    monkeypatch.setattr(metrics_module, "BLOCK_MIN_INTERVALS", 10**12)  # always one block
    for (h, k0, k1, kw), got in zip(cases, blocked, strict=True):
        assert_same_bits(figures(model.expected(h, k0, k1, log, **kw)), got, f"[{k0}, {k1}) {kw}")


def test_blocks_cover_the_window_once() -> None:
    model = object.__new__(metrics_module.MetricModel)
    model.period_s = 60.0
    B = metrics_module.BLOCK_PERIODS
    n = metrics_module.BLOCK_MIN_INTERVALS
    on = np.arange(n) * 60.0 * 7
    off = on + 90.0
    for k0, k1 in [(0, 2 * B), (3, 3 + 2 * B + 1), (10, 10 + 5 * B - 1), (0, 1440)]:
        blocks = model._blocks(on, off, k0, k1)
        starts = [s.start for s, _ in blocks]
        assert all(s.stop - s.start >= 2 for s, _ in blocks)
        assert starts == sorted(starts)
        for s, rows in blocks:
            t_lo, t_hi = (k0 + s.start) * 60.0, (k0 + s.stop) * 60.0
            assert rows.tolist() == np.flatnonzero((on < t_hi) & (off > t_lo)).tolist()
        covered = np.zeros(k1 - k0, dtype=int)
        for s, _ in blocks:
            covered[s] += 1
        assert covered.max() <= 1
