"""A commented starter scenario for a described fleet (`deploysim init`).

The text explains each section in comments and uses the shipped scenarios' defaults: one code
pipeline, a pre-production stage, then one production stage per region, the first with a one-box
and an AZ at a time (Liguori's bakes: 1 h after the one-box, 12 h after the first wave, 2 h after
the rest), the others a wave of one AZ then the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RegionSpec:
    """A region of the described fleet: its name and IANA time zone."""

    name: str
    timezone: str


def parse_region(text: str) -> RegionSpec:
    """``"us-east-1=America/New_York"`` → RegionSpec; the time zone defaults to UTC."""
    name, _, zone = text.partition("=")
    if not name.strip():
        raise ValueError(f"expected REGION or REGION=TIME/ZONE, got {text!r}")
    return RegionSpec(name.strip(), zone.strip() or "UTC")


def starter_scenario(name: str, regions: Sequence[RegionSpec], *, azs: int = 3, hosts_per_az: int = 4,
                     requests_per_min: float = 100_000, changes_per_week: float = 10) -> str:
    """The YAML text of a commented, valid starter scenario."""
    weight = round(1.0 / len(regions), 4)
    region_lines = "\n".join(
        f"    - {{name: {r.name}, timezone: {r.timezone}, traffic_weight: {weight}, azs: {azs}, "
        f"cells_per_az: 1, hosts_per_cell: {hosts_per_az}}}" for r in regions)
    stages = []
    for i, r in enumerate(regions):
        if i == 0:
            stages.append(f"""        - name: prod-{i + 1}-{r.name}  # first region: one host, one AZ, then the rest
          kind: production
          regions: [{r.name}]
          one_box: {{hosts: 1, bake: 1h}}
          waves:
            - {{unit: az, count: 1, bake: 12h}}
            - {{unit: az, count: rest, bake: 2h}}""")
        else:
            stages.append(f"""        - name: prod-{i + 1}-{r.name}
          kind: production
          regions: [{r.name}]
          waves:
            - {{unit: az, count: 1, bake: 2h}}
            - {{unit: az, count: rest, bake: 2h}}""")
    stage_text = "\n".join(stages)
    return f"""# A starter scenario written by `deploysim init`. Every section is explained in a comment; change
# the numbers to your service's, then check the file with `deploysim validate {name}.yaml` and run it
# with `deploysim run {name}.yaml`. Durations are written 90s, 5m, 1h30m or 2d; shares and
# probabilities are fractions (0.0001 is 0.01%). docs/scenarios.md lists every field.
name: {name}
description: Starter scenario for {len(regions)} region(s); edit the numbers to match your service.
start: 2026-01-05T00:00:00Z    # simulated time starts here (UTC), a Monday
metric_period: 1m              # one metric datapoint per host per minute, as alarms see them

# The hosts: each region has `azs` availability zones of cells of hosts; traffic_weight is the
# region's share of requests (the weights are normalised).
fleet:
  host_capacity_rpm: 25000     # requests per minute one host serves before it saturates
  regions:
{region_lines}

# Requests: a daily cycle peaking at peak_hour_local, quieter weekends, and the share of each API.
traffic:
  requests_per_min: {requests_per_min:g}
  daily_amplitude: 0.3
  peak_hour_local: 14
  weekend_factor: 0.7
  apis: {{Get: 0.8, Create: 0.2}}

# A healthy host: its error rate sets the floor of your uptime (0.00002 = 99.998%).
baseline:
  error_rate: 0.00002
  latency_p50_ms: 20
  latency_p90_ms: 45
  latency_p99_ms: 120

# How often changes arrive, how many are bad, and what a bad one does.
changes:
  code:
    arrivals: {{changes_per_week: {changes_per_week:g}, working_hours_only: true, timezone: {regions[0].timezone}}}
    bad_probability: 0.05           # one change in 20 is bad
    preprod_catch_probability: 0.5  # half of those are caught before production
    defects:
      - {{name: fault-spike, weight: 3, error_rate: 0.30}}
      - {{name: create-api-bug, weight: 2, error_rate: 0.50, api: Create}}
      - {{name: slow-path, weight: 1, latency_factor: 4.0}}

# Outages that no deployment causes: whole AZs failing, and how long people take when alarms miss.
faults:
  az_outage: {{rate_per_month: 0.2, duration: {{dist: lognormal, median: 30m, sigma: 0.8}}, failover: 5m}}
humans:
  detection_delay: {{dist: lognormal, median: 4h, sigma: 1.0}}
  mitigation: 30m

# Alarms on each scope's metrics: M of N datapoints above the threshold puts an alarm in ALARM.
alarms:
  metric:
    - {{name: High_Fault_Rate, metric: error_rate, threshold: 0.01, evaluation_periods: 3, datapoints_to_alarm: 3}}
    - {{name: High_P99_Latency, metric: latency_p99_ms, threshold: 250, evaluation_periods: 5, datapoints_to_alarm: 4}}
  composite:
    - name: Service_Health
      rule: ALARM("High_Fault_Rate") OR ALARM("High_P99_Latency")

# The deployment policy: stages in order, each bake a wait for alarms before the next step.
policy:
  pipelines:
    code:
      watch: {{one_box: [Service_Health], wave: [Service_Health], region: [Service_Health]}}
      rollback: {{automatic: true, scope: everywhere, duration: 10m}}
      blockers:
        time_windows: [{{days: [Mon, Tue, Wed, Thu, Fri], start_hour: 9, end_hour: 17}}]
      stages:
        - {{name: pre-production, kind: preproduction, duration: 30m, bake: 1h}}
{stage_text}
"""
