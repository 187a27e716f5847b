"""The CLI and pool workers tune their own process for simulating (malloc thresholds, a settled
garbage collector): that may change how fast a month runs, never what it gives."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

from test_reproducibility import REFERENCE, cli_command

import deploysim
from deploysim.summary_text import summary_json

REPO = Path(__file__).resolve().parent.parent


def test_the_tuned_command_line_gives_the_same_json_as_an_untuned_library_call():
    proc = subprocess.run([*cli_command(), "run", REFERENCE, "--seed", "4", "--months", "0.5", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    untuned = deploysim.simulate(deploysim.load_scenario(REFERENCE), seed=4, months=0.5).summary()
    assert proc.stdout.strip() == summary_json(untuned).strip()


def test_tuning_sets_the_allocator_on_linux_and_makes_first_generation_collections_rarer():
    code = (
        "import gc, sys\n"
        "from deploysim.process_tuning import GC_FIRST_GENERATION, tune_allocator, tune_process\n"
        "before = gc.get_threshold()\n"
        "tune_process(); tune_process()\n"  # idempotent: twice is once
        "after = gc.get_threshold()\n"
        "assert after == (GC_FIRST_GENERATION, *before[1:]), (before, after)\n"
        "assert gc.get_freeze_count() > 0\n"
        "print(tune_allocator())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    on_glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert proc.stdout.strip() == ("True" if on_glibc else "False")
