"""Simulate and summarise N one-month runs of a scenario (seeds 1..N), for counting instructions.

CPU seconds on a shared virtual machine wander; instruction counts do not. The instructions of one
month are the difference between two processes under callgrind, N=2 and N=1 (seed 2's month, with
seed 1's as the warm-up):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python benchmarks/instructions.py scenarios/aws-typical.yaml 1
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python benchmarks/instructions.py scenarios/aws-typical.yaml 2

(each prints "Collected : <instructions>"; about 3 minutes each on a 2-core machine).
"""

from __future__ import annotations

import sys

import deploysim


def main() -> None:
    path, n = sys.argv[1], int(sys.argv[2])
    scenario = deploysim.load_scenario(path)
    for seed in range(1, n + 1):
        deploysim.simulate(scenario, seed=seed, months=1).summary()


if __name__ == "__main__":
    main()
