"""Draw the README's plot gallery into docs/gallery/ from simulations of the shipped scenarios.

    python scripts/make_gallery.py                   # all images, 20 replications per policy
    python scripts/make_gallery.py --replications 5  # quicker, noisier distributions

One run of aws-typical (seed 1, one month) gives the rollout timelines, the version maps, the
error rates and the budget burn-down; a comparison of six policies on aws-typical's world (common
random numbers, `deploysim.compare`, against a 99.99% SLA) gives the distributions and the policy
comparison.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import deploysim
from deploysim import plot
from deploysim.experiments.params import with_values

REPO = Path(__file__).resolve().parent.parent
DPI = 100
SLA_TARGET_PCT = 99.99  # aws-typical's healthy error rate (0.002%) leaves room for 99.99%
CREDIT_TABLE = "dynamodb-standard"  # the shipped table whose first tier is 99.99%


def _bakes(scenario: deploysim.Scenario, wave: str, one_box: str, name: str) -> deploysim.Scenario:
    """Every production bake of the code and config pipelines set to `wave` (one-box: `one_box`)."""
    values = {}
    for i in range(2, 6):  # code: beta, gamma, then four production stages of a one-box and two waves
        values[f"policy.pipelines.code.stages[{i}].one_box.bake"] = one_box
        for w in (0, 1):
            values[f"policy.pipelines.code.stages[{i}].waves[{w}].bake"] = wave
    for i in range(1, 5):  # config: a test stage, then four production stages of a one-box and two waves
        values[f"policy.pipelines.config.stages[{i}].one_box.bake"] = one_box
        for w in (0, 1):
            values[f"policy.pipelines.config.stages[{i}].waves[{w}].bake"] = wave
    return with_values(scenario, values, name=name)


def policies(base: deploysim.Scenario) -> dict[str, deploysim.Scenario]:
    """Policies on aws-typical's world, from the shipped one to no safety at all."""
    any_hour = with_values(base, {"policy.pipelines.code.blockers.time_windows": [],
                                  "policy.pipelines.config.blockers.time_windows": []}, name="any hour")
    short = _bakes(any_hour, "30m", "10m", "any hour, short bakes")
    no_bakes = _bakes(any_hour, "0s", "0s", "any hour, no bakes")
    manual = with_values(no_bakes, {"policy.pipelines.code.rollback.automatic": False,
                                    "policy.pipelines.config.rollback.automatic": False}, name="manual rollback")
    return {
        "aws-typical": base,
        "any hour": any_hour,
        "any hour, short bakes": short,
        "any hour, no bakes": no_bakes,
        "no bakes, manual rollback": manual,
        "no-safety": deploysim.load_scenario(REPO / "scenarios" / "no-safety.yaml"),
    }


def save(fig, name: str, out: Path) -> None:
    path = out / f"{name}.png"
    fig.savefig(path, dpi=DPI)
    print(f"  wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=20, help="replications per policy (default 20)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per CPU)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "gallery", help="output folder")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    scenario = deploysim.load_scenario(REPO / "scenarios" / "aws-typical.yaml")
    result = deploysim.simulate(scenario, seed=1, months=1)
    print("aws-typical, seed 1, one month")
    save(plot.rollout_timeline(result), "rollout_timeline_bad_change", out)
    ch = result.changes
    good = ch[(ch["pipeline"] == "code") & (ch["outcome"] == "deployed") & ~ch["bad"]]
    save(plot.rollout_timeline(result, change_id=int(good["change_id"].iloc[0])), "rollout_timeline_good_change", out)
    save(plot.version_map(result, pipeline="code", by="region"), "version_map_regions", out)
    save(plot.version_map(result, pipeline="code", by="cell"), "version_map_cells", out)
    save(plot.error_rate(result, sla_target_pct=SLA_TARGET_PCT), "error_rate", out)
    first_alarm = result.timeline[result.timeline["event"] == "alarm"]["time_s"].iloc[0] / 86400.0
    save(plot.error_rate(result, regions=["ap-southeast-2"], sla_target_pct=SLA_TARGET_PCT,
                         days=(first_alarm - 0.05, first_alarm + 0.1)), "error_rate_zoom", out)
    save(plot.budget_burndown(result, sla_target_pct=SLA_TARGET_PCT), "budget_burndown", out)

    named = policies(scenario)
    print(f"compare: {len(named)} policies x {args.replications} replications of one month "
          f"(common random numbers), SLA {SLA_TARGET_PCT}%")
    experiment = deploysim.compare(named, replications=args.replications, seed=1, months=1,
                                   sla_target_pct=SLA_TARGET_PCT, credit_table=CREDIT_TABLE,
                                   workers=args.workers, progress=False)
    save(plot.cdf(experiment.changes), "cdf", out)
    # no-safety's worst region (about 99.4%) would squeeze the others into one bin: drawn without it.
    safe = experiment.replications[experiment.replications["policy"] != "no-safety"]
    save(plot.uptime_histogram(safe, sla_target_pct=SLA_TARGET_PCT, credit_table=CREDIT_TABLE,
                               column="worst_region_uptime_pct"), "uptime_histogram", out)
    tradeoff = experiment.tradeoff()
    save(plot.policy_comparison(tradeoff), "policy_comparison", out)
    print(tradeoff[["policy", "lead_time_p50_h", "breach_probability", "on_frontier"]].to_string(index=False))
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
