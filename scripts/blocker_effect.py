"""The business-hours blocker's paired effect on a scenario, on common random numbers.

    python scripts/blocker_effect.py scenarios/aws-typical.yaml -n 200

Runs the scenario as written and a copy whose pipelines have no time-window blocker on the same
random months, and prints the paired difference (with blocker minus without) of failed requests,
downtime and lead time with 95% intervals.
"""

from __future__ import annotations

import argparse
import copy

import yaml

import deploysim


def without_time_windows(raw: dict) -> dict:
    out = copy.deepcopy(raw)
    out["name"] = f"{raw.get('name', 'scenario')}-no-window"
    for pipeline in out["policy"]["pipelines"].values():
        blockers = pipeline.get("blockers") or {}
        blockers.pop("time_windows", None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario")
    parser.add_argument("-n", "--replications", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with open(args.scenario, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    with_window = deploysim.scenario_from_dict(raw)
    no_window = deploysim.scenario_from_dict(without_time_windows(raw))
    cmp = deploysim.compare([no_window, with_window], replications=args.replications, seed=args.seed,
                            workers=args.workers, progress=False)
    paired = cmp.paired()
    keep = paired["metric"].isin(["failed_requests", "downtime_s", "lead_time_p50_h", "sla_breach"])
    print(f"{args.replications} replications, seed {args.seed}: with the time-window blocker minus without")
    print(paired.loc[keep, ["metric", "mean_difference", "ci_low", "ci_high"]].to_string(index=False))


if __name__ == "__main__":
    main()
