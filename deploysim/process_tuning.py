"""Settings for a process that deploysim owns and that will simulate for a while: its command-line
process and its pool workers; never a user's notebook or program that imports the library.

A simulated month allocates and frees many arrays of a month of periods (43,200 one-minute periods
of float64: 338 KiB each). glibc's malloc serves blocks above its mmap threshold (128 KiB at first)
from fresh mappings and gives memory back at the top of its heap above a trim threshold, so such
arrays come back to the process as new, zeroed pages: some 25,000 page faults a month. Serving
them from a heap that keeps up to `TRIM_THRESHOLD` of free memory halves the kernel time of a month
(about 3% of its CPU). Freezing what start-up created (modules, the scenario) takes it out of every
later collection of the cyclic garbage collector, and a larger first generation makes collections
rarer (together another 3%). Neither changes a result: they decide only where memory comes from
and when the collector looks for cycles.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import sys

# mallopt(3) parameters and the values set: blocks up to MMAP_THRESHOLD come from the heap, which
# keeps up to TRIM_THRESHOLD free before giving memory back and grows by TOP_PAD extra at a time.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 4 * 2**20
TRIM_THRESHOLD = 64 * 2**20
TOP_PAD = 16 * 2**20
GC_FIRST_GENERATION = 20_000  # objects allocated (net) before a first-generation collection; Python's default is 700


@functools.cache
def tune_allocator() -> bool:
    """Keep month-sized arrays on glibc's heap (see the module docstring). Returns whether it was
    done: only on Linux with glibc; elsewhere nothing changes. Done once per process."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD)))


def settle_garbage_collector() -> None:
    """Freeze the objects made so far (imports, loaded scenarios) out of later collections and make
    first-generation collections rarer. Call it once start-up is over, before simulating."""
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_FIRST_GENERATION, second, third)


def tune_process() -> None:
    """Both of the above, for a process about to simulate (the CLI's, a pool worker)."""
    tune_allocator()
    settle_garbage_collector()
