"""No simulator in the executor: importing `deploysim.executor`, or any of its modules, loads neither
SimPy nor pandas nor scipy (the real executor runs where the simulator's stack is not installed)."""

from __future__ import annotations

import json
import subprocess
import sys

SIMULATOR_ONLY = ("simpy", "pandas", "scipy")

_PROBE = """
import importlib, json, pkgutil, sys
import deploysim.executor
loaded = {"deploysim.executor": sorted(m for m in %(banned)r if m in sys.modules)}
for info in pkgutil.walk_packages(deploysim.executor.__path__, "deploysim.executor."):
    importlib.import_module(info.name)
    loaded[info.name] = sorted(m for m in %(banned)r if m in sys.modules)
print(json.dumps(loaded))
"""


def test_importing_the_executor_and_every_module_of_it_loads_no_simulator_library():
    out = subprocess.run([sys.executable, "-c", _PROBE % {"banned": SIMULATOR_ONLY}], capture_output=True, text=True,
                         check=True).stdout
    loaded = json.loads(out)
    assert "deploysim.executor.driver" in loaded and "deploysim.executor.fake" in loaded
    assert {module: found for module, found in loaded.items() if found} == {}
