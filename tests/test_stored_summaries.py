"""Shipped scenarios give exactly the stored figures (seed 1, one month each).

The stored file proves that work on the simulator's speed leaves its results alone: every figure
of `summary()` must match to the last bit, and so must digests of the changes frame and of the
SLA's failed requests per period. After a deliberate change to the model, regenerate the file with
one command and say so in the commit message:

    .venv/bin/python scripts/store_summaries.py
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("store_summaries", REPO / "scripts" / "store_summaries.py")
assert _spec is not None and _spec.loader is not None
store = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(store)

STORED = json.loads(store.STORE.read_text(encoding="utf-8"))


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where two JSON values differ (NaN equals NaN; floats compared exactly)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{path}/{k}: missing" for k in expected.keys() - actual.keys()]
        out += [f"{path}/{k}: unexpected" for k in actual.keys() - expected.keys()]
        for k in sorted(expected.keys() & actual.keys()):
            out += differences(expected[k], actual[k], f"{path}/{k}")
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in differences(e, a, f"{path}[{i}]")]
    both_nan = isinstance(expected, float) and isinstance(actual, float) and math.isnan(expected) and math.isnan(actual)
    if both_nan or (expected == actual and type(expected) is type(actual)):
        return []
    return [f"{path}: stored {expected!r}, now {actual!r}"]


def test_store_covers_the_shipped_scenarios() -> None:
    assert STORED["seed"] == 1 and STORED["months"] == 1.0
    assert set(STORED["cases"]) == {"aws-typical", "startup-fast", "no-safety", "reference"}


@pytest.mark.parametrize("label", sorted(store.CASES))
def test_summary_equals_stored(label: str) -> None:
    now = store.figures(store.CASES[label])
    diff = differences(STORED["cases"][label], now)
    assert not diff, f"{label} differs from tests/data/stored_summaries.json:\n" + "\n".join(diff[:20])


def test_differences_finds_a_changed_figure() -> None:
    stored = {"a": 1.0, "b": [float("nan"), 2], "c": {"d": 0.30000000000000004}}
    assert differences(stored, json.loads(json.dumps(stored))) == []
    assert differences(stored, {"a": 1.0, "b": [float("nan"), 2], "c": {"d": 0.3}}) == [
        "/c/d: stored 0.30000000000000004, now 0.3"]
    assert differences({"n": 1}, {"n": 1.0}) == ["/n: stored 1, now 1.0"]
