"""Write the numbered notebooks of this folder from the cells below, without outputs.

    python notebooks/build_notebooks.py

Edit the cells here, not the .ipynb files, and run this again: the notebooks are stored without
outputs or execution counts (tests/test_notebooks.py checks that, and executes every notebook).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

FIND_SCENARIOS = '''%matplotlib inline
# (deploysim.plot returns matplotlib Figures; the line above shows a Figure left as a cell's value)
from pathlib import Path

import deploysim
from deploysim import plot

# The shipped scenarios, whether the notebook runs from notebooks/ or from the repository's root.
SCENARIOS = next(p / "scenarios" for p in [Path.cwd(), *Path.cwd().parents] if (p / "scenarios").is_dir())'''


def md(text: str):
    return new_markdown_cell(text.strip())


def code(text: str):
    return new_code_cell(text.strip())


# ---------------------------------------------------------------------------------------------- 01

QUICKSTART = [
    md("""
# 1. Quick start: one simulated month, one bad change

deploysim simulates a deployment policy — pre-production, a *one-box*, *waves* of growing size,
*bakes* watched by alarms, *blockers*, automatic *rollback* — on a fleet of regions, AZs, cells and
hosts, and reports what the policy buys and costs: blast radius, time to detect (TTD), time to roll
back (TTR), lead time and monthly uptime under real SLA definitions.

This notebook loads the AWS-style scenario shipped with deploysim (after Clare Liguori's *Automating
safe, hands-off deployments*), simulates one month, and follows one bad change from its first bad
request to its rollback.
"""),
    code("""
# Parameters
SEED = 1            # the same seed gives the same month, change for change
MONTHS = 1          # 30-day months to simulate
SLA_TARGET = 99.99  # percent
"""),
    code(FIND_SCENARIOS),
    md("""
## The scenario

A scenario is data: a YAML file validated into immutable objects. `aws-typical` has six regions and
three pipelines (code, config, feature flags) that deploy to the same hosts.
"""),
    code("""
sc = deploysim.load_scenario(SCENARIOS / "aws-typical.yaml")
print(sc.description)
for region in sc.fleet.regions:
    hosts = region.azs * region.cells_per_az * region.hosts_per_cell
    print(f"  {region.name:15} {region.timezone:20} {region.traffic_weight:5.0%} of traffic, {hosts} hosts")
print("pipelines:", ", ".join(sc.policy.pipelines))
"""),
    md("""
## Simulate a month

`deploysim.simulate` takes the scenario and a seed. The summary is what `deploysim run` prints: uptime
per region by both SLA definitions (*averaged error rate*, as Amazon S3 and Lambda define it, and
*unavailable minutes*), the SLA budget used, the changes and what happened to them, blast radius,
TTD/TTR, lead time and DORA's four keys.

At 99.99% a 30-day month allows (1 − 0.9999) × 30 days = **4.32 minutes** of downtime (not "4 min 20 s
for 99.9%", a figure often repeated: 99.9% allows 43.2 minutes).
"""),
    code("""
res = deploysim.simulate(sc, seed=SEED, months=MONTHS, sla_target_pct=SLA_TARGET)
print(f"allowed downtime at {SLA_TARGET}%: {deploysim.sla.allowed_downtime(SLA_TARGET) / 60:.2f} min per 30-day month")

from deploysim.summary_text import format_summary
print(format_summary(res.summary()))
"""),
    md("""
Every change is a row of `res.changes`. Most bad changes never reach production (pre-production
catches them); those that do are caught by an alarm on a one-box or an early wave, or — when no alarm
sees them — found by people much later.
"""),
    code("""
res.changes.groupby(["pipeline", "outcome"]).size().unstack(fill_value=0)
"""),
    md("""
## One bad change: its rollout and its blast radius

Take the bad change that failed the most requests this month. Its **blast radius** is the requests
it failed, the share of fleet capacity that ran it at its peak, and how many hosts, cells, AZs and
regions it reached. **TTD** runs from its first bad request to the alarm; **TTR** to the last host
reverted.
"""),
    code("""
ch = res.changes
bad = ch[ch["bad"] & ch["first_bad_s"].notna()]
worst = bad.sort_values("failed_requests", ascending=False).iloc[0]
change_id = int(worst["change_id"])
print(f"change {change_id} ({worst['pipeline']} pipeline, defect {worst['defect']!r}), found by {worst['detected_by']}")
print(f"blast radius: {worst['failed_requests']:,.0f} failed requests "
      f"({worst['failed_request_share']:.2e} of the month's requests), "
      f"{worst['impact_minutes']:.0f} customer-impact minutes, "
      f"peak {worst['peak_capacity_share']:.2%} of fleet capacity")
print(f"reached {worst['hosts_reached']} host(s), {worst['cells_reached']} cell(s), "
      f"{worst['azs_reached']} AZ(s), {worst['regions_reached']} region(s)")
print(f"time to detect {worst['ttd_s'] / 60:.1f} min, time to roll back {worst['ttr_s'] / 60:.1f} min")
"""),
    md("""
The rollout timeline shows the change's journey through its pipeline: deploying (blue), baking
(orange), waiting on a blocker (hatched: business hours, an incident), the alarm and the rollback
(red).
"""),
    code("""
plot.rollout_timeline(res, change_id)
"""),
    md("""
Why so few failed requests? The change was caught on a small step. Google's SRE Workbook puts it as
arithmetic: a change that fails 20% of requests on a canary taking 5% of the traffic shows as 1%
errors overall, and the budget it burns is proportional to the traffic it reached. Below: the error
rate of each 5-minute interval (the SLA's interval) in the region the change reached first, around the
moment it went bad, with the alarm thresholds and the SLA line.
"""),
    code("""
first_region = None
for stage in sc.policy.pipelines[worst["pipeline"]].stages:
    if stage.kind == "production":
        first_region = stage.regions[0]
        break
day = worst["first_bad_s"] / 86400
plot.error_rate(res, regions=[first_region], days=(max(day - 0.1, 0), day + 0.2))
"""),
    md("""
## The month's error budget

Each region's budget (4.32 min at 99.99%) burns down with every interval's error rate: the steady
slope is the baseline error rate of healthy hosts, the steps are bad changes and infrastructure
faults. The dashed line is the budget spent evenly over the month.
"""),
    code("""
plot.budget_burndown(res)
"""),
    md("""
Next: `02-tuning-bake-times.ipynb` asks how long to bake, `03-sla-budget-planning.ipynb` turns deploy
frequency and change failure rate into expected downtime and credits, and
`04-policy-comparison.ipynb` compares policies on the same random worlds. From the command line,
`deploysim report scenarios/aws-typical.yaml --sla 99.99 -o report/` writes the whole SLA budget
report.
"""),
]

# ---------------------------------------------------------------------------------------------- 02

TUNING = [
    md("""
# 2. Tuning bake times: lead time against breach probability

A **bake** is the wait after a wave before the next may start. It ends when its duration has passed
*and* enough data has been seen — "at least 100 requests to the Create API", or a minimum number of
metric datapoints. Longer bakes give alarms time to fire before a bad change spreads; they also make
every change slower. Liguori's rule of thumb: at least 1 h after a one-box, 12 h after the first
regional wave, 2–4 h after later waves.

Here we sweep a bake and its minimum-datapoint requirement and look at the trade-off, for the feature-
flag pipeline of `startup-fast`: a flag goes to one AZ, bakes, then to the whole region. Flags are
quick and cheap to ship — and a flag that breaks the Create API does damage fast.
"""),
    code("""
# Parameters: few replications so the notebook runs in a few minutes; for decisions use 300+ replications.
REPLICATIONS = 20
SEED = 1
MONTHS = 1           # 30-day months: the SLA is judged per month, so a shorter run would judge a
                     # week against a monthly target (one incident weighs four times as much in a week)
SLA_TARGET = 99.9    # percent
MAX_BREACH = 0.10    # the breach probability we accept
WORKERS = 2
"""),
    code(FIND_SCENARIOS),
    code("""
sc = deploysim.load_scenario(SCENARIOS / "startup-fast.yaml")
first_wave = "policy.pipelines.flag.stages[0].waves[0].bake"
print("flag pipeline, first wave:", sc.policy.pipelines["flag"].stages[0].waves[0])
"""),
    md("""
## The sweep

Every combination of the grid runs on the **same** child seeds (common random numbers): replication
*i* of every setting faces the same flags, the same bad ones, the same faults and the same traffic,
so differences between settings are the settings' doing, not luck.

`min_datapoints` makes a bake wait for that many metric datapoints of the wave's hosts. With a 3-of-3
alarm, a bake of 0 s moves on before the alarm could possibly fire; requiring 5 datapoints gives it
the chance.
"""),
    code("""
grid = {
    f"{first_wave}.duration": ["0s", "20m"],
    f"{first_wave}.min_datapoints": [0, 5],
}
exp = deploysim.sweep(sc, grid, replications=REPLICATIONS, seed=SEED, months=MONTHS,
                      sla_target_pct=SLA_TARGET, workers=WORKERS, progress=False)
exp.summary(["downtime_s", "sla_breach", "found_by_people"]).pivot(index="policy", columns="metric", values="mean")
"""),
    md("""
## Lead time of the flags, against breach probability

`Experiment.tradeoff(pipeline="flag")` measures the flags' lead time (the flag settings change only
that one; over all changes, the many config changes would hide it): per replication, the median lead
time of the flags deployed everywhere, then the median over replications with its distribution-free
interval, against the breach probability with its exact interval.
"""),
    code("""
from deploysim.experiments import text

tradeoff = exp.tradeoff(pipeline="flag")
print(text.format_tradeoff(tradeoff, "Flag lead time against SLA breach probability (* = Pareto frontier)", "flag"))
print("flag lead time p50, minutes:", (tradeoff.set_index("policy")["lead_time_p50_h"] * 60).round(1).to_dict())
"""),
    code("""
plot.policy_comparison(tradeoff)
"""),
    md("""
Points on the green staircase are the **Pareto frontier**: no other setting is both faster and
safer. Everything off it is beaten on both counts by something on it. The breach probability's
intervals are wide at 20 replications (exact Clopper-Pearson); downtime and the bad flags left for
people to find tell the same story with tighter intervals. Below, each setting minus the first (no
bake, no minimum), replication by replication: with no bake a bad flag reaches the whole region before
its 3-of-3 alarm could fire, and people find it hours later; five datapoints of bake are enough.
"""),
    code("""
paired = exp.paired(["downtime_s", "found_by_people", "failed_requests"])
paired[["policy", "metric", "mean_difference", "ci_low", "ci_high", "unpaired_ci_low", "unpaired_ci_high"]]
"""),
    md("""
## Pick a policy

The rule: the fastest setting whose breach probability is at most `MAX_BREACH`. (`deploysim tune`
does this search for you over whole ladders of bake times, e.g.
`deploysim tune scenarios/aws-typical.yaml --sla 99.99 --max-breach-probability 0.05`.)
"""),
    code("""
feasible = tradeoff[tradeoff["breach_probability"] <= MAX_BREACH]
if len(feasible):
    pick = feasible.sort_values(["lead_time_p50_h", "breach_probability"]).iloc[0]
    print(f"pick: {pick['policy']}")
    print(f"  flag lead time p50 {pick['lead_time_p50_h'] * 60:.0f} min, P(breach) {pick['breach_probability']:.2f} "
          f"[{pick['breach_ci_low']:.2f}, {pick['breach_ci_high']:.2f}], "
          f"mean downtime {pick['downtime_mean_s'] / 60:.1f} min/month")
else:
    print("no setting meets the bound; the safest is", tradeoff.sort_values("breach_probability").iloc[0]["policy"])
"""),
]

# ---------------------------------------------------------------------------------------------- 03

BUDGET = [
    md("""
# 3. SLA budget planning: from deploy frequency and change failure rate to downtime, credits and breaches

How many bad changes can a 99.99% service afford in a month? Allowed downtime = (1 − target) ×
period; on a 30-day month:

| target | allowed downtime |
|---|---:|
| 99.9% | 43.2 min |
| 99.95% | 21.6 min |
| 99.99% | 4.32 min |
| 99.999% | 25.9 s |

This notebook takes the AWS-style scenario, varies how often code ships, how often a change is bad
and how quickly alarms decide, and reads off expected downtime, the probability of breaching 99.9 /
99.99 / 99.999, and the service credits that would be owed.
"""),
    code("""
# Parameters: few replications so the notebook runs in a few minutes; for planning use 300+ replications.
REPLICATIONS = 8      # whole months of the six-region fleet: slow enough; intervals are wide
SEED = 1
MONTHS = 1           # 30-day months: the SLA is judged per month, so a shorter run would judge a
                     # week against a monthly target (one incident weighs four times as much in a week)
WORKERS = 2
TARGETS = [99.9, 99.99, 99.999]
CREDIT_TABLES = {99.9: "s3-standard", 99.99: "dynamodb-standard", 99.999: "dynamodb-global-tables"}
"""),
    code(FIND_SCENARIOS),
    code("""
import pandas as pd

table = pd.DataFrame({"target_pct": TARGETS,
                      "allowed_downtime_s": [deploysim.sla.allowed_downtime(t) for t in TARGETS]})
table["allowed_downtime_min"] = table["allowed_downtime_s"] / 60
table
"""),
    md("""
## Variants of one scenario

`with_values` sets scenario fields by path and validates the result again. The variants:

- **as is**: code at 10 changes a week, 8% of them bad;
- **4× deploys**: 40 code changes a week (deploy frequency);
- **3× bad**: 24% of code changes bad (change failure rate);
- **slower alarms**: every metric alarm needs 5 breaching datapoints of 5 (detection settings).

They differ in their world (changes) or alarms, so they are run side by side on the same seeds; the
variants that keep the changes section (as is, slower alarms) share every random draw.
"""),
    code("""
from deploysim.experiments import with_values

sc = deploysim.load_scenario(SCENARIOS / "aws-typical.yaml")
slow = {}
for i, alarm in enumerate(sc.alarms.metric):
    slow[f"alarms.metric[{i}].evaluation_periods"] = 5
    slow[f"alarms.metric[{i}].datapoints_to_alarm"] = 5
variants = {
    "as is": sc,
    "4x deploys": with_values(sc, {"changes.code.arrivals.changes_per_week": 40}),
    "3x bad": with_values(sc, {"changes.code.bad_probability": 0.24}),
    "slower alarms": with_values(sc, slow),
}
exp = deploysim.compare(variants, replications=REPLICATIONS, seed=SEED, months=MONTHS, sla_target_pct=99.99,
                        workers=WORKERS, progress=False)
exp.summary(["downtime_s", "deployments_per_week", "change_failure_rate", "ttd_p50_s", "bad_in_production"]) \\
   .pivot(index="policy", columns="metric", values="mean").loc[list(variants)]
"""),
    md("""
Four times the code changes do not make four times the deployments: versions are cumulative, as
builds are, and a pipeline runs one version per stage at a time, so more changes ride in each version.
What grows is the chance that a version holds a bad change — the change failure rate — and the number
of bad changes reaching production.

## Where each variant's downtime goes

Each replication's downtime is split in proportion to the requests failed by each cause: bad changes
caught by alarms, bad changes found by people, infrastructure faults, and the baseline error rate of
healthy hosts. The last column is what one bad change reaching production costs on average.
"""),
    code("""
causes = ["downtime_alarm_caught_s", "downtime_no_alarm_s", "downtime_faults_s", "downtime_baseline_s"]
reps = exp.replications
split = reps.groupby("policy", sort=False)[causes + ["downtime_s", "bad_in_production"]].mean()
bad_change_s = split["downtime_alarm_caught_s"] + split["downtime_no_alarm_s"]
split["s_per_bad_change"] = bad_change_s / split["bad_in_production"]
split.round(2)
"""),
    md("""
## Breach probability and credits at 99.9 / 99.99 / 99.999

The SLA is judged per region and month: a replication breaches a target when its worst region's
monthly uptime (averaged error rate) is below it. The same replications answer for every target. The
credit is that of the provider's tier table for a service with that target (S3 Standard for 99.9%,
DynamoDB for 99.99%, DynamoDB global tables for 99.999%), owed on the worst region.
"""),
    code("""
from deploysim.experiments import stats

rows = []
for policy, frame in reps.groupby("policy", sort=False):
    worst = frame["worst_region_uptime_pct"]
    for target in TARGETS:
        k, n = int((worst < target).sum()), len(frame)
        low, high = stats.proportion_ci(k, n)
        credit = worst.map(lambda u: deploysim.sla.service_credit(u, CREDIT_TABLES[target]))
        rows.append({"policy": policy, "target_pct": target,
                     "budget_used_pct": 100 * frame["downtime_s"].mean() / deploysim.sla.allowed_downtime(target),
                     "breach_probability": k / n, "breach_ci": f"[{low:.2f}, {high:.2f}]",
                     "expected_credit_pct": credit.mean()})
plan = pd.DataFrame(rows)
plan.pivot(index="policy", columns="target_pct", values="breach_probability").loc[list(variants)]
"""),
    code("""
plan.round(3)
"""),
    md("""
How many more bad changes like these would each target absorb? Take the budget, subtract what the
baseline and the faults use in an average region, and divide by what one bad change costs:
"""),
    code("""
as_is = split.loc["as is"]
for target in TARGETS:
    room = deploysim.sla.allowed_downtime(target) - as_is["downtime_baseline_s"] - as_is["downtime_faults_s"]
    if room > 0:
        print(f"{target}%: {room:.0f} s a month left after the baseline and faults, "
              f"room for about {room / as_is['s_per_bad_change']:.0f} bad changes like these")
    else:
        print(f"{target}%: the baseline and faults alone use {-room:.0f} s more than the budget")
"""),
    md("""
Reading it: at 99.9% every variant has room to spare. At 99.99% (4.32 min) a bad change caught on a
one-box costs seconds, so the deployment policy leaves plenty of room; the breaches come from the
worst region's infrastructure faults (an AZ outage is minutes of a region's errors), which no
deployment policy prevents. At 99.999% (25.9 s) the baseline alone — 2 in 100,000 requests failing
on a healthy day — is over budget: the service itself has to fail less.

The distribution of the worst region's uptime against the three targets:
"""),
    code("""
plot.uptime_histogram(reps, sla_target_pct=99.99, credit_table="dynamodb-standard", column="worst_region_uptime_pct")
"""),
]

# ---------------------------------------------------------------------------------------------- 04

COMPARISON = [
    md("""
# 4. Policy comparison with common random numbers

Three shipped policies:

- **aws-typical**: pre-production, then region by region, one-box then AZ waves, bakes of 1 h to 12 h,
  business hours only, composite alarms, automatic rollback;
- **startup-fast**: one region, a short pre-production bake, a one-box, then everything at once;
- **no-safety**: the same world as aws-typical, deployed everywhere at once, no bake, no alarms,
  no automatic rollback.

`deploysim.compare` runs replication *i* of every policy on the same child seed. `aws-typical` and
`no-safety` share their whole world — fleet, traffic, changes, defects, faults — so their differences
are paired replication by replication (common random numbers). `startup-fast` has the same changes
and faults but a one-region fleet, so its pairing is looser.
"""),
    code("""
# Parameters: few replications so the notebook runs in a few minutes; for decisions use 300+ replications.
REPLICATIONS = 4      # whole months of the six-region fleet: slow enough; intervals are wide
SEED = 1
MONTHS = 1           # 30-day months: the SLA is judged per month, so a shorter run would judge a
                     # week against a monthly target (one incident weighs four times as much in a week)
SLA_TARGET = 99.9
WORKERS = 2
"""),
    code(FIND_SCENARIOS),
    code("""
from deploysim.experiments import same_world, text

names = ["aws-typical", "startup-fast", "no-safety"]
scenarios = [deploysim.load_scenario(SCENARIOS / f"{name}.yaml") for name in names]
print("aws-typical and no-safety share their world:", same_world(scenarios[0], scenarios[2]))
print("aws-typical and startup-fast share their world:", same_world(scenarios[0], scenarios[1]))
exp = deploysim.compare(scenarios, replications=REPLICATIONS, seed=SEED, months=MONTHS,
                        sla_target_pct=SLA_TARGET, workers=WORKERS, progress=False)
print(text.format_comparison(exp, same_world=False))
"""),
    md("""
## When pairing matters

The same question — how much faster or safer is one policy than aws-typical? — answered two ways:
the paired interval uses each replication's difference (both policies met the same bad changes), the
unpaired one treats the samples as independent. Pairing narrows an interval when the two policies'
figures move together from one replication to the next: time to detect and the change failure rate
against startup-fast, say. Where one policy's losses dwarf the other's — no-safety's downtime — the
difference's spread is just no-safety's own, and pairing gains little.
"""),
    code("""
paired = exp.paired(["ttd_p50_s", "change_failure_rate", "false_rollbacks", "downtime_s"])
paired["paired_width"] = paired["ci_high"] - paired["ci_low"]
paired["unpaired_width"] = paired["unpaired_ci_high"] - paired["unpaired_ci_low"]
paired[["policy", "metric", "mean_difference", "ci_low", "ci_high", "paired_width", "unpaired_width"]]
"""),
    md("""
## Speed against safety

Median lead time against the probability of breaching the SLA, with 95% intervals. The aws-typical
pipeline takes days to reach every region (Liguori: four to five business days for code) and buys
that time back in blast radius.
"""),
    code("""
plot.policy_comparison(exp.tradeoff())
"""),
    md("""
The distributions behind the means: time to detect, time to roll back and lead time of every change
of every replication, and the monthly uptime of each policy against the SLA target and the credit
tiers.
"""),
    code("""
plot.cdf(exp.changes)
"""),
    code("""
plot.uptime_histogram(exp.replications, sla_target_pct=SLA_TARGET)
"""),
]

# ---------------------------------------------------------------------------------------------- 05

CALIBRATE = [
    md("""
# 5. Calibrate from history: fit the world, then plan against it

A scenario's world — how often changes arrive, how many are bad, how fast people find and revert one,
how often an AZ fails — is a guess until it is fitted to what happened. This notebook fits it from a
deployment and incident history, checks each fit against its data, and carries what the history
cannot pin down into the breach probability.

The history is `scenarios/history-sample/`: three months **generated by deploysim** from
`scenarios/history-sample/world.yaml` (nothing in it was observed), so we can also check the fit
against the truth. With your own history, use `deploysim fit` (docs/fit.md lists the formats:
deploysim's CSV/JSON, CodePipeline, GitHub deployments, a PagerDuty-style export).
"""),
    code("""
# Parameters
SEED = 1            # Monte Carlo seed
REPLICATIONS = 10   # months per Monte Carlo (raise to 200+ for planning)
MONTHS = 1          # 30-day months per replication
SLA_TARGET = 99.99  # percent
WORKERS = 2
"""),
    code(FIND_SCENARIOS + """
import datetime as dt

import yaml

from deploysim.fit import fit_history, fitted_yaml, read_history
from deploysim.fit.figures import arrivals_figure, duration_figure

SAMPLE = SCENARIOS / "history-sample\""""),
    md("""
## Read the history

Deployments (one row per change: pipeline, entered, finished, outcome) and incidents (start,
detected, mitigated, resolved, cause). The window is the three months the history covers.
"""),
    code("""
since = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
history = read_history(str(SAMPLE / "deployments.csv"), str(SAMPLE / "incidents.csv")).with_window(
    since, since + dt.timedelta(days=90))
print(f"{len(history.deployments)} deployments in pipelines {', '.join(history.pipelines)}; "
      f"{len(history.incidents)} incidents")
"""),
    md("""
## Fit the world

The base scenario keeps its fleet, traffic and policy (startup-fast's here); each world parameter the
history speaks to is fitted with a 95% interval, and the rest keep the base's value as a stated prior.
"""),
    code("""
base = deploysim.load_scenario(SCENARIOS / "startup-fast.yaml")
fit = fit_history(history, base)
fit.table()[["parameter", "value", "low_95", "high_95", "n", "status"]]
"""),
    md("""
## Does each fit match its data?

When changes arrive (the fit spreads them evenly over the working hours it found) and how many came
over time; people's detection delay against the fitted lognormal, as a CDF and a Q-Q plot (points
on the diagonal: the family fits).
"""),
    code("""
arrivals_figure(fit.arrivals["code"], history.window_s)
"""),
    code("""
duration_figure("people: detection delay", fit.durations["people: detection delay"])
"""),
    md("""
## Against the truth

This history was simulated, so the true values are known: each should sit inside its interval.
"""),
    code("""
world = deploysim.load_scenario(SAMPLE / "world.yaml")
truth = {"code: change failure rate": world.changes["code"].bad_probability,
         "config: change failure rate": world.changes["config"].bad_probability,
         "code: changes per week": world.changes["code"].arrivals.changes_per_week,
         "people: detection delay (median)": world.humans.detection_delay.median,
         "faults: az outage rate": world.faults.az_outage.rate_per_month}
for label, true in truth.items():
    e = fit.estimate(label)
    print(f"{label:<36} true {true:>8g}   fitted {e.value:>9.4g}   95% [{e.low:.4g}, {e.high:.4g}]   "
          f"inside: {e.low <= true <= e.high}")
"""),
    md("""
## Plan against it, knowing what we do not know

The fitted scenario (what `deploysim fit -o` writes) carries each parameter's posterior. Monte Carlo
with `parameter_uncertainty=True` draws each month's world from them: its breach probability
includes not knowing the true failure rate. Same seeds as the run with the point estimates.
"""),
    code("""
from deploysim.experiments.uncertainty import parameter_influence

fitted = deploysim.scenario_from_dict(yaml.safe_load(fitted_yaml(fit, SCENARIOS / "startup-fast.yaml")))
runs = {label: deploysim.monte_carlo(fitted, replications=REPLICATIONS, seed=SEED, months=MONTHS,
                                     sla_target_pct=SLA_TARGET, workers=WORKERS, progress=False,
                                     keep_changes=False, parameter_uncertainty=uncertain)
        for label, uncertain in (("point estimates", False), ("parameters drawn from the fit", True))}
for label, exp in runs.items():
    reps = exp.replications
    print(f"{label:<30} breach probability at {SLA_TARGET}%: {reps['sla_breach'].mean():.0%}   "
          f"mean downtime {reps['downtime_s'].mean() / 60:.1f} min per month")
"""),
    md("""
Which drawn parameters the month's downtime moves with (rank correlation; `share` normalises the
squared correlations). With ten months this is a sketch: raise `REPLICATIONS` before believing it.
"""),
    code("""
parameter_influence(runs["parameters drawn from the fit"].replications).head(6)
"""),
]

# ---------------------------------------------------------------------------------------------- 06

JUDGE = [
    md("""
# 6. Canary judge against threshold alarms: which detector wins

A threshold alarm asks *is the one-box's error rate above 1%?* A canary judge asks *is it worse than
a baseline's?* — Kayenta's method: a baseline of the old version deployed beside the canary, both
measured period by period, their datapoints compared with a Mann-Whitney U test at a confidence the
policy sets. This notebook measures both detectors on the same simulated datapoints (defect sizes
against traffic levels, at equal bake time), then runs the shipped `canary-judge` scenario for a
month to show what the judge does in a rollout and what its baseline hosts cost.
"""),
    code("""
# Parameters
SEED = 1             # every datapoint is keyed by (seed, replication, defect, traffic, side, period)
REPLICATIONS = 20    # per (defect size, traffic level): the README's numbers use 200
MONTHS = 1           # the month of the rollout section
DEFECTS = (0.0, 0.002, 0.005, 0.01, 0.02)  # extra error rate of the bad version (0: no defect)
TRAFFIC_RPM = (100, 1000, 10000)          # requests per minute per host, canary and baseline alike
"""),
    code(FIND_SCENARIOS),
    md("""
## The policy

`scenarios/canary-judge.yaml` is startup-fast with a judge on its code one-box: `baseline: deploy`
(one fresh host of the old version beside it), judgements every 5 minutes over the data so far, 95%
confidence over the whole bake (split over its six judgements), error rate critical and p99 latency
allowed 20% above the baseline. The composite alarm (threshold 1% fault rate, 3 of 3 minutes) still
watches the one-box.
"""),
    code("""
sc = deploysim.load_scenario(SCENARIOS / "canary-judge.yaml")
box = sc.policy.pipelines["code"].stages[1].one_box
judge = box.judge
print(f"{judge.kind} judge, baseline {judge.baseline_kind}, every {judge.interval / 60:g} min of a "
      f"{box.bake.duration / 60:g} min bake, confidence {judge.confidence}")
for m in judge.metrics:
    print(f"  {m.label}: direction {m.direction}, critical {m.critical}, allowed increase {m.allowed_increase}")
print(f"inconclusive: pause up to {judge.inconclusive.limit} times, then {judge.inconclusive.then}")
"""),
    md("""
## Which detector wins

`compare_detectors` draws the one-box's and its baseline's datapoints from the simulator's metric model
(Poisson error counts) over the bake; the threshold alarm and the judge see the same draws, so their
difference is paired. At 0% the rate is the false-rollback rate.
"""),
    code("""
import tempfile
from pathlib import Path

from IPython.display import Image

from deploysim.experiments.detectors import compare_detectors, format_table
from deploysim.experiments.detectors import plot as plot_detectors

summary = compare_detectors(sc, replications=REPLICATIONS, seed=SEED, defects=DEFECTS, traffic_rpm=TRAFFIC_RPM)
print(format_table(summary))
figure = Path(tempfile.mkdtemp()) / "detectors.png"
plot_detectors(summary, figure)
Image(filename=str(figure))
"""),
    md("""
## In a rollout, and what the baseline costs

The same month of the same world (same seed; canary-judge and startup-fast share fleet, traffic,
changes and faults) with and without the judge: the judge judges every code one-box, its baseline host
runs for the one-box's deploy and bake, and the summary's `canary_judge` block counts both.
"""),
    code("""
from deploysim.experiments import same_world

plain = deploysim.load_scenario(SCENARIOS / "startup-fast.yaml")
print("canary-judge and startup-fast share their world:", same_world(sc, plain))
judged_run = deploysim.simulate(sc, seed=SEED, months=MONTHS).summary()
plain_run = deploysim.simulate(plain, seed=SEED, months=MONTHS).summary()
for key in ("bad_reaching_production", "caught_by_alarm", "false_rollbacks", "deployed"):
    print(f"{key:24} with judge {judged_run['changes'][key]:4}   without {plain_run['changes'][key]:4}")
block = judged_run["canary_judge"]
print(f"judgements {block['judgements']} (pass {block['pass_verdicts']}, fail {block['fail_verdicts']}, "
      f"inconclusive {block['inconclusive_verdicts']}, running {block['running_verdicts']})")
print(f"rollbacks by the judge {block['rollbacks_by_judge']}; baseline host-hours {block['baseline_host_hours']:.1f}")
"""),
    md("""
## Conclusion

At 1,000 requests per minute per host and more, the judge catches defects of 0.2–0.5% extra errors
that the 1% threshold alarm never sees, and catches 1% defects every time where the alarm misses one
in six to eight, with no false rollback in either; at 100 requests per minute per host neither
catches small defects and the judge is no better: a few requests per minute make coarse samples.
Large defects are caught by both. The judge's price is a baseline host for every judged bake and a
bake that ends on the interval grid. (With 20 replications the intervals here are wide; the README
quotes `deploysim detectors` with 200.)
"""),
]


NOTEBOOKS = {
    "01-quickstart.ipynb": QUICKSTART,
    "02-tuning-bake-times.ipynb": TUNING,
    "03-sla-budget-planning.ipynb": BUDGET,
    "04-policy-comparison.ipynb": COMPARISON,
    "05-calibrate-from-history.ipynb": CALIBRATE,
    "06-canary-judge-vs-thresholds.ipynb": JUDGE,
}


def build(name: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=NOTEBOOKS[name])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"  # stable ids keep diffs small
    return nb


def main() -> None:
    for name in NOTEBOOKS:
        nb = build(name)
        nbformat.validate(nb)
        path = HERE / name
        text = nbformat.writes(nb) + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.name}")


if __name__ == "__main__":
    main()
