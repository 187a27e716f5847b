"""The scenario file's structure: immutable, validated objects the engine reads (never the file itself).

Every field carries its unit in its name or in its description. Durations accept seconds or
strings such as "5m", "1h30m", "2d". See scenarios/*.yaml for complete examples.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ..durations import parse_duration_s
from ..judge.condition import parse_condition

Duration = Annotated[
    float,
    BeforeValidator(parse_duration_s),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "description": "seconds"},
                {
                    "type": "string",
                    "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$",
                    "examples": ["90s", "5m", "1h30m", "2d"],
                },
            ]
        }
    ),
]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- distributions


class DurationDistribution(Frozen):
    """A random duration: `fixed` (value), `exponential` (mean), `lognormal` (median, sigma), `uniform` (low, high)."""

    dist: Literal["fixed", "exponential", "lognormal", "uniform"] = "fixed"
    value: Duration | None = None
    mean: Duration | None = None
    median: Duration | None = None
    sigma: NonNegFloat = 1.0
    low: Duration | None = None
    high: Duration | None = None

    @model_validator(mode="after")
    def _needs_parameters(self):
        needed = {"fixed": ("value",), "exponential": ("mean",), "lognormal": ("median",), "uniform": ("low", "high")}
        missing = [name for name in needed[self.dist] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"dist '{self.dist}' needs {', '.join(missing)}")
        if self.dist == "uniform" and self.high is not None and self.low is not None and self.high < self.low:
            raise ValueError("uniform needs low <= high")
        return self


def _fixed_or_distribution(value: object) -> object:
    # A bare duration ("30m") is shorthand for a fixed distribution.
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return {"dist": "fixed", "value": value}
    return value


DurationDist = Annotated[DurationDistribution, BeforeValidator(_fixed_or_distribution)]


# ---------------------------------------------------------------- fleet and traffic


REGION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
"""A region's name becomes part of every host's name ({region}-az{a}-c{c}-h{k}), which becomes a file
name (the local fleet's) and a command's argument: a letter or digit first (never '-', so never an
option), then letters, digits, '.', '_' or '-' (never '/', so never a path)."""


class Region(Frozen):
    """A region: its time zone, its share of the traffic, and its AZ/cell/host layout."""

    name: str

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not REGION_NAME.fullmatch(value):
            raise ValueError(f"expected a region name such as us-east-1 (a letter or digit, then up to 62 letters, "
                             f"digits, '.', '_' or '-'), got {value!r}")
        return value
    timezone: str = "UTC"
    traffic_weight: PositiveFloat = 1.0
    azs: Annotated[int, Field(ge=1)] = 3
    cells_per_az: Annotated[int, Field(ge=1)] = 1
    hosts_per_cell: Annotated[int, Field(ge=1)] = 10
    holidays: tuple[dt.date, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'America/New_York')") from None
        return value


class Fleet(Frozen):
    """Regions -> AZs -> cells -> hosts; every host serves the same capacity."""

    host_capacity_rpm: PositiveFloat = Field(2000.0, description="requests per minute one host serves at 100% CPU")
    regions: Annotated[tuple[Region, ...], Field(min_length=1)]

    @field_validator("regions")
    @classmethod
    def _unique_names(cls, regions):
        names = [r.name for r in regions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"region names must be unique; repeated: {', '.join(dupes)}")
        return regions


class Traffic(Frozen):
    """Requests per minute with a daily and weekly shape in each region's local time."""

    requests_per_min: PositiveFloat = Field(description="fleet-wide mean on weekdays, requests per minute")
    daily_amplitude: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.3
    peak_hour_local: Annotated[float, Field(ge=0.0, lt=24.0)] = 14.0
    weekend_factor: PositiveFloat = 0.7
    noise_cv: Annotated[float, Field(ge=0.0, le=1.0)] = 0.03
    apis: dict[str, PositiveFloat] = Field(
        default_factory=lambda: {"All": 1.0}, description="API name -> share of requests"
    )
    client_timeout_ms: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="API name (or 'All' for every API without its own) -> milliseconds after "
        "which clients give up: requests a defect slows past it fail (default: no timeout)")

    @model_validator(mode="after")
    def _timeouts_name_apis(self):
        unknown = sorted(set(self.client_timeout_ms) - set(self.apis) - {"All"})
        if unknown:
            raise ValueError(f"client_timeout_ms names unknown APIs: {', '.join(unknown)}")
        return self

    @field_validator("apis")
    @classmethod
    def _shares_sum_to_one(cls, apis):
        total = sum(apis.values())
        if not apis or abs(total - 1.0) > 1e-6:
            raise ValueError(f"API shares must sum to 1 (got {total:g})")
        return apis


class Baseline(Frozen):
    """How a healthy host behaves (CPU follows its load over fleet.host_capacity_rpm)."""

    error_rate: Probability = 0.0005
    latency_p50_ms: PositiveFloat = 20.0
    latency_p90_ms: PositiveFloat = 45.0
    latency_p99_ms: PositiveFloat = 120.0
    latency_noise_cv: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    cpu_idle_pct: Annotated[float, Field(ge=0.0, lt=100.0)] = Field(
        5.0, description="CPU a host uses with no traffic; it grows linearly to 100% at host_capacity_rpm"
    )
    memory_pct: Annotated[float, Field(ge=0.0, le=100.0)] = 50.0
    disk_pct: Annotated[float, Field(ge=0.0, le=100.0)] = 40.0
    resource_noise_pct: NonNegFloat = 1.0
    log_errors_per_error: NonNegFloat = 1.0

    @model_validator(mode="after")
    def _ordered_latency(self):
        if not (self.latency_p50_ms <= self.latency_p90_ms <= self.latency_p99_ms):
            raise ValueError("latency percentiles must satisfy p50 <= p90 <= p99")
        return self


class Dependency(Frozen):
    """A service we call; its load grows with the share of our requests that call it."""

    name: str
    calls_share: Share = Field(1.0, description="share of our requests that call this dependency")
    baseline_error_rate: Probability = 0.0001
    capacity_factor: Annotated[float, Field(gt=1.0)] = Field(
        2.0, description="load, as a multiple of normal, above which it sheds the excess as errors"
    )


class LoadBalancer(Frozen):
    """Health checks of the region's load balancer: a host that fails them is taken out of rotation
    and the region's other hosts take its requests (up to their capacity). Defaults: an Application
    Load Balancer target group's (30 s interval, 2 failures to go out, 5 successes to come back)."""

    health_checks: bool = Field(True, description="take hosts that fail health checks out of rotation")
    interval: Duration = Field(30.0, description="seconds between two health checks of a host")
    unhealthy_threshold: Annotated[int, Field(ge=1, le=10)] = Field(
        2, description="consecutive failed checks before a host is taken out of rotation")
    healthy_threshold: Annotated[int, Field(ge=1, le=10)] = Field(
        5, description="consecutive passed checks before a host is put back")

    @property
    def out_after_s(self) -> float:
        """Time from a host failing until it is out of rotation."""
        return self.interval * self.unhealthy_threshold

    @property
    def back_after_s(self) -> float:
        """Time from a host being healthy again until it is back in rotation."""
        return self.interval * self.healthy_threshold


# ---------------------------------------------------------------- changes and defects


class Defect(Frozen):
    """What a bad change does once live on a host; all effects are optional and combine."""

    name: str
    weight: PositiveFloat = 1.0
    error_rate: Probability = Field(0.0, description="extra share of affected requests that fail")
    api: str | None = Field(None, description="only this API's requests are affected (None: all)")
    latency_factor: Annotated[float, Field(ge=1.0)] = 1.0
    cpu_growth_pct_per_h: NonNegFloat = 0.0
    memory_growth_pct_per_h: NonNegFloat = 0.0
    disk_growth_pct_per_h: NonNegFloat = 0.0
    start_delay: Duration = Field(0.0, description="time after a host starts the version before the defect shows")
    crash: bool = Field(False, description="the host crash-loops: all its requests fail, health checks fail")
    min_load_factor: NonNegFloat = Field(0.0, description="only shows when region load >= this multiple of its mean")
    dependency: str | None = None
    dependency_load_factor: Annotated[float, Field(ge=1.0)] = Field(
        1.0, description="calls to `dependency` per request, as a multiple of normal, on hosts running it"
    )


class ArrivalProcess(Frozen):
    """Changes arrive as a Poisson process, optionally only in working hours of one time zone."""

    changes_per_week: PositiveFloat
    working_hours_only: bool = True
    timezone: str = "UTC"
    working_hours: tuple[float, float] = (9.0, 17.0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return Region._known_timezone(value)

    @field_validator("working_hours")
    @classmethod
    def _ordered_hours(cls, hours):
        start, end = hours
        if not 0 <= start < end <= 24:
            raise ValueError("working_hours must be [start_hour, end_hour] with 0 <= start < end <= 24")
        return hours


class ChangeSource(Frozen):
    """The changes one pipeline receives and how likely each is to be bad."""

    arrivals: ArrivalProcess
    bad_probability: Probability = 0.05
    preprod_catch_probability: Probability = Field(
        0.5, description="chance that pre-production catches a bad change (over all pre-production stages)"
    )
    defects: tuple[Defect, ...] = ()

    @model_validator(mode="after")
    def _bad_needs_defects(self):
        if self.bad_probability > 0 and not self.defects:
            raise ValueError("bad_probability > 0 needs at least one entry in defects")
        return self


# ---------------------------------------------------------------- faults and humans


class AzOutage(Frozen):
    """An AZ fails (power, cooling, networking): its requests fail until traffic shifts away from it."""

    rate_per_month: NonNegFloat = Field(0.0, description="outages per month over the whole fleet")
    duration: DurationDist = DurationDistribution(dist="lognormal", median=1800.0, sigma=0.8)
    failover: Duration = Field(300.0, description="time the AZ's share of requests fails before traffic shifts away")
    second_az_probability: Probability = Field(
        0.0, description="chance that an outage takes a second AZ of the same region down with it, for the same "
        "time (shared power, networking or a common dependency); its requests shift to the AZs left")


class RegionEvent(Frozen):
    """A region-wide event (control plane, networking) that fails a share of every AZ of one region at
    once: traffic cannot shift to another AZ, so static stability does not help."""

    rate_per_month: NonNegFloat = Field(0.0, description="events per month over the whole fleet")
    duration: DurationDist = DurationDistribution(dist="lognormal", median=7200.0, sigma=0.8)
    failed_share: Probability = Field(0.3, description="share of the region's requests that fail during the event")


class DependencyDegradation(Frozen):
    rate_per_month: NonNegFloat = 0.0
    duration: DurationDist = DurationDistribution(dist="lognormal", median=900.0, sigma=0.8)
    error_rate: Probability = 0.2


class Faults(Frozen):
    """Infrastructure faults not caused by changes: they cost uptime and raise incidents."""

    az_outage: AzOutage = AzOutage()
    region_event: RegionEvent = RegionEvent()
    dependency_degradation: DependencyDegradation = DependencyDegradation()


class WeeklyHours(Frozen):
    """Hours of chosen weekdays, in each region's local time (Mon–Fri 09:00–17:00 by default)."""

    days: Annotated[tuple[Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], ...], Field(min_length=1)] = (
        "Mon", "Tue", "Wed", "Thu", "Fri")
    start_hour: Annotated[float, Field(ge=0.0, lt=24.0)] = 9.0
    end_hour: Annotated[float, Field(gt=0.0, le=24.0)] = 17.0

    @model_validator(mode="after")
    def _ordered(self):
        if self.end_hour <= self.start_hour:
            raise ValueError("end_hour must be after start_hour")
        return self


class BusinessHours(WeeklyHours):
    """When people are at their desks, in each region's local time; the region's holidays are off hours."""


class Humans(Frozen):
    """People: how they find a bad change that no alarm rolls back, and how fast they revert it.

    `detection: symptoms` (the default) finds a bad change from what it does: pages from alarms that
    page but do not roll back, and customer reports, then on-call's response, which depends on the
    hour (deploysim/people.py; defaults and their sources in docs/model.md). `detection: fixed_delay`
    is the older model: found `detection_delay` after its first bad request, whatever it does. A file
    that sets `detection_delay` and not `detection` keeps the older model.
    """

    detection: Literal["symptoms", "fixed_delay"] = "symptoms"
    detection_delay: DurationDist = Field(
        DurationDistribution(dist="lognormal", median=4 * 3600.0, sigma=1.0),
        description="detection: fixed_delay only: time from a bad change's first bad request to people finding it")
    mitigation: DurationDist = Field(
        DurationDistribution(dist="lognormal", median=1800.0, sigma=0.5),
        description="time from people deciding to revert to the last host reverted (manual speed)")
    reports_per_failed_request: NonNegFloat = Field(
        1e-4, description="customer reports per request the change failed (a Poisson process; 0: no reports)")
    support_triage: DurationDist = Field(
        DurationDistribution(dist="lognormal", median=1800.0, sigma=0.5),
        description="time from a customer's report to the service's on-call being paged")
    pages: tuple[str, ...] | None = Field(
        None, description="alarms (by name) over each region that page on-call without rolling back; "
        "default: the pipelines' region-watched and incident alarms and every dependency_error_rate alarm")
    business_hours: BusinessHours = BusinessHours()
    response_business_hours: DurationDist = Field(
        DurationDistribution(dist="lognormal", median=900.0, sigma=0.5),
        description="time from a page in business hours to on-call having tied it to the change")
    response_off_hours: DurationDist = Field(
        DurationDistribution(dist="lognormal", median=2700.0, sigma=0.5),
        description="the same at night, at weekends and on the region's holidays")

    @model_validator(mode="before")
    @classmethod
    def _older_files_keep_their_model(cls, data: object) -> object:
        # A file written for the fixed-delay model (it sets detection_delay) keeps that model.
        if isinstance(data, dict) and "detection" not in data and "detection_delay" in data:
            return {**data, "detection": "fixed_delay"}
        return data


# ---------------------------------------------------------------- alarms

Metric = Literal[
    "requests",
    "errors",
    "error_rate",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "cpu_pct",
    "memory_pct",
    "disk_pct",
    "log_errors",
    "unhealthy_hosts",
    "dependency_error_rate",
]
Comparison = Literal[
    "GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"
]


class MetricAlarm(Frozen):
    """A CloudWatch-style metric alarm; its scope (one-box, wave, region, dependency) comes from where it is watched."""

    name: str
    metric: Metric
    threshold: float
    comparison: Comparison = "GreaterThanThreshold"
    evaluation_periods: Annotated[int, Field(ge=1, le=12)] = 3
    datapoints_to_alarm: Annotated[int, Field(ge=1, le=12)] = 3
    treat_missing_data: Literal["missing", "ignore", "breaching", "notBreaching"] = "missing"
    statistic: Literal["average", "maximum"] = Field(
        "average", description="how per-host resource metrics combine over the scope's hosts"
    )
    api: str | None = Field(None, description="restrict request metrics to one API")
    dependency: str | None = Field(None, description="for dependency_error_rate: which dependency")
    evaluate_low_sample_count_percentile: Literal["evaluate", "ignore"] = Field(
        "evaluate", description="latency percentile alarms: 'ignore' keeps the state in periods with fewer than "
        "10/(1-q) requests (CloudWatch's rule; 1,000 for p99), 'evaluate' judges them anyway (CloudWatch's default)")

    @model_validator(mode="after")
    def _m_of_n(self):
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError("datapoints_to_alarm (M) must be <= evaluation_periods (N)")
        if self.metric == "dependency_error_rate" and not self.dependency:
            raise ValueError("metric dependency_error_rate needs `dependency`")
        return self


class CompositeAlarm(Frozen):
    """A rule over other alarms, e.g. ALARM("fault_rate") OR ALARM("p99_latency")."""

    name: str
    rule: str


class Alarms(Frozen):
    metric: tuple[MetricAlarm, ...] = ()
    composite: tuple[CompositeAlarm, ...] = ()
    ingestion_delay: Duration = Field(
        0.0, description="time from a metric period's end until its datapoint can be read (0: at once)")
    evaluation_delay: Duration = Field(
        0.0, description="time from a datapoint being readable until the alarm evaluates it (0: at once)")


# ---------------------------------------------------------------- policy


class Bake(Frozen):
    """Wait after a wave: ends when `duration` has passed *and* enough data has been seen."""

    duration: Duration = 0.0
    min_requests: dict[str, NonNegFloat] = Field(
        default_factory=dict, description="API name (or 'All') -> requests the wave's scope must serve during the bake"
    )
    min_datapoints: Annotated[int, Field(ge=0)] = 0
    max_duration: Duration | None = Field(None, description="give up waiting for data after this long (default 7 days)")


def _bake_shorthand(value: object) -> object:
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return {"duration": value}
    return value


BakeSpec = Annotated[Bake, BeforeValidator(_bake_shorthand)]


class Batching(Frozen):
    """Hosts inside a wave are replaced in batches that keep a minimum share healthy."""

    max_share: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.33, description="largest share of a wave's hosts replaced at once"
    )
    duration: Duration = Field(300.0, description="time to deploy one batch")
    hosts_keep_serving: bool = Field(
        False, description="hosts serve while they take the change (feature flags, hot config reload); "
        "otherwise a batch's hosts are out of service for its duration"
    )


class JudgeMetric(Frozen):
    """One metric a canary judge reads: the per-period datapoints an alarm on the same metric, API and
    statistic reads, of the canary's hosts and of its baseline's."""

    metric: Metric
    api: str | None = Field(None, description="restrict request metrics to one API")
    statistic: Literal["average", "maximum"] = "average"
    # kayenta
    direction: Literal["increase", "decrease", "either"] = Field(
        "increase", description="kayenta: which change of the metric is a regression")
    tolerance: NonNegFloat = Field(
        0.25, description="kayenta: a shift inside +/- tolerance x |estimated shift| is no change")
    allowed_increase: PositiveFloat | None = Field(
        None, description="kayenta: canary mean / baseline mean allowed above 1 (effect size), e.g. 1.1")
    allowed_decrease: PositiveFloat | None = Field(
        None, description="kayenta: canary mean / baseline mean allowed below 1 (effect size), e.g. 0.9")
    nan_strategy: Literal["remove", "replace"] = Field(
        "remove", description="kayenta: drop missing datapoints, or count them as 0")
    min_samples: Annotated[int, Field(ge=1)] = Field(
        3, description="kayenta: datapoints needed on each side; fewer is NoData (inconclusive, never a pass)")
    critical: bool = Field(False, description="kayenta: High or Low on this metric fails the canary whatever the score")
    must_have_data: bool = Field(False, description="kayenta: no data on this metric fails it (NodataFailMetric)")
    group: str = Field("default", description="kayenta: the metric group its score counts in")
    # flagger
    min: float | None = Field(None, description="flagger: thresholdRange min of the canary's value per interval")
    max: float | None = Field(None, description="flagger: thresholdRange max of the canary's value per interval")
    # argo
    success_condition: str | None = Field(
        None, description="argo: condition on `result` (the canary's value per interval), e.g. 'result < 0.01'")
    failure_condition: str | None = Field(None, description="argo: condition on `result` that fails the measurement")

    @property
    def label(self) -> str:
        """The metric's name in verdicts: metric, with its API when it has one."""
        return self.metric if self.api in (None, "All") else f"{self.metric}:{self.api}"


class InconclusivePolicy(Frozen):
    """What inconclusive judgements do once the bake is over: each one pauses the step for another
    interval; the one after `limit` pauses rolls the version back or pages people."""

    limit: Annotated[int, Field(ge=0)] = Field(3, description="pauses allowed for inconclusive judgements")
    then: Literal["rollback", "page"] = Field(
        "page", description="rollback: roll back at once; page: halt and wait for a person (a manual rollback)")


class Judge(Frozen):
    """A canary judge watching a step: every `interval` of its bake it judges the step's hosts over the
    data so far (Kayenta: against a baseline; Flagger, Argo: against fixed conditions). FAIL rolls the
    version back; the bake ends only on a PASS judged once its duration and data minimums are met."""

    kind: Literal["kayenta", "flagger", "argo"] = "kayenta"
    baseline: Literal["deploy", "rest-of-scope", "none"] | None = Field(
        None, description="deploy: as many fresh hosts of the old version beside the canary (their host-hours "
        "are a cost); rest-of-scope: the stage's hosts not yet deployed; none: no baseline (flagger, argo). "
        "Default: deploy for kayenta, none otherwise")
    interval: Duration = Field(300.0, description="time between judgements, from the bake's start")
    metrics: Annotated[tuple[JudgeMetric, ...], Field(min_length=1)]
    min_period_requests: NonNegFloat = Field(
        10.0, description="a period in which a side served fewer requests gives it no error-rate or latency "
        "datapoint: too few requests say nothing (few datapoints make the judgement inconclusive, never a pass)")
    # kayenta
    confidence: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.95, description="kayenta: 1 - the false-fail rate allowed over the whole bake (split over its judgements)")
    pass_threshold: Annotated[float, Field(ge=0.0, le=100.0)] = Field(95.0, description="kayenta: score to pass")
    marginal_threshold: Annotated[float, Field(ge=0.0, le=100.0)] = Field(
        75.0, description="kayenta: score below which the canary fails (between: marginal, inconclusive)")
    group_weights: dict[str, NonNegFloat] = Field(default_factory=dict, description="kayenta: metric group -> weight")
    # flagger
    threshold: Annotated[int, Field(ge=1)] = Field(2, description="flagger: failed checks that fail the canary")
    iterations: Annotated[int, Field(ge=1)] = Field(3, description="flagger: passing intervals that pass it")
    # argo
    count: Annotated[int, Field(ge=1)] = Field(3, description="argo: measurements (one per interval) to take")
    failure_limit: Annotated[int, Field(ge=0)] = Field(0, description="argo: failed measurements tolerated")
    inconclusive_limit: Annotated[int, Field(ge=0)] = Field(
        0, description="argo: inconclusive measurements tolerated")
    consecutive_error_limit: Annotated[int, Field(ge=0)] = Field(
        4, description="argo: measurements in a row without a value (no datapoint) tolerated (Argo's default 4)")
    inconclusive: InconclusivePolicy = InconclusivePolicy()

    @model_validator(mode="after")
    def _consistent(self):
        if self.interval <= 0:
            raise ValueError("judge.interval must be longer than 0 s")
        if self.kind == "kayenta" and self.baseline_kind == "none":
            raise ValueError("judge.baseline: kayenta compares the canary with a baseline; use deploy or rest-of-scope")
        if self.marginal_threshold > self.pass_threshold:
            raise ValueError(f"judge.marginal_threshold ({self.marginal_threshold:g}) must be <= pass_threshold "
                             f"({self.pass_threshold:g})")
        for i, m in enumerate(self.metrics):
            where = f"judge.metrics[{i}] ({m.label})"
            if self.kind == "flagger" and m.min is None and m.max is None:
                raise ValueError(f"{where}: a flagger check needs min or max (its thresholdRange)")
            if m.min is not None and m.max is not None and m.min > m.max:
                raise ValueError(f"{where}: min {m.min:g} is above max {m.max:g}")
            if self.kind == "argo":
                if m.success_condition is None and m.failure_condition is None:
                    raise ValueError(f"{where}: an argo metric needs success_condition or failure_condition")
                for name in ("success_condition", "failure_condition"):
                    text = getattr(m, name)
                    if text is not None:
                        try:
                            parse_condition(text)
                        except ValueError as error:
                            raise ValueError(f"{where}.{name}: {error}") from None
        labels = [m.label for m in self.metrics]
        if len(set(labels)) != len(labels):
            raise ValueError(f"judge.metrics: a metric is listed twice ({', '.join(labels)})")
        return self

    @property
    def baseline_kind(self) -> Literal["deploy", "rest-of-scope", "none"]:
        """`baseline`, or its default: deploy for kayenta, none for flagger and argo."""
        return self.baseline or ("deploy" if self.kind == "kayenta" else "none")


class OneBox(Frozen):
    """The first host(s) of a production stage; `traffic_share` gives them that share of the region's requests."""

    hosts: Annotated[int, Field(ge=1)] = 1
    traffic_share: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    bake: BakeSpec = Bake(duration=3600.0)
    judge: Judge | None = Field(None, description="a canary judge watching the one-box's bake")


class Wave(Frozen):
    """A set of deployment units updated together: `count` AZs, cells or regions of the stage, or the
    rest; or, with `unit: traffic`, a canary weight: the new version serves `weight` percent of each
    of the stage's regions' requests once the wave is done (Argo Rollouts' setWeight, Flagger's
    stepWeight, an AppConfig or Lambda linear step)."""

    unit: Literal["region", "az", "cell", "traffic"] = "region"
    count: Annotated[int, Field(ge=1)] | Literal["rest"] = "rest"
    weight: Annotated[float, Field(gt=0.0, le=100.0)] | None = Field(
        None, description="unit traffic only: percent of each region's requests the new version serves after "
        "this wave, counting earlier steps (cumulative, like setWeight); served by whole hosts, the fewest "
        "whose share reaches it")
    per_region: bool = Field(
        False, description="`count` units in each region of the stage at once (e.g. one AZ per region), "
        "not `count` units of the stage in region order"
    )
    bake: BakeSpec = Bake()
    judge: Judge | None = Field(None, description="a canary judge watching the wave's bake")

    @model_validator(mode="after")
    def _weight_with_traffic(self):
        if self.unit == "traffic":
            if self.weight is None:
                raise ValueError("a wave of unit 'traffic' needs `weight` (percent of the requests, e.g. 10)")
            if "count" in self.model_fields_set:
                raise ValueError("a wave of unit 'traffic' takes `weight`, not `count`")
        elif self.weight is not None:
            raise ValueError(f"`weight` belongs to a wave of unit 'traffic', not '{self.unit}'")
        return self


class Watch(Frozen):
    """Which alarm (metric or composite, by name) is watched at which scope during deploy and bake."""

    one_box: tuple[str, ...] = Field((), description="alarms over the one-box hosts during one-box deploy and bake")
    wave: tuple[str, ...] = Field((), description="alarms over the current wave's hosts during its deploy and bake")
    region: tuple[str, ...] = Field(
        (), description="aggregate alarms over each region of the stage, dependency alarms included, during every step"
    )


class Approval(Frozen):
    """A manual approval before a stage's first step (CodePipeline's manual approval action, Argo
    Rollouts' indefinite pause): the stage starts only once a person approves. The real executor
    waits for `deploysim approve`; the simulator assumes people approve after `wait`."""

    wait: Duration = Field(1800.0, description="simulator: how long people take to approve, from the request")
    timeout: Duration = Field(
        7 * 86400.0, description="no approval by then: the version is rolled back (CodePipeline's approvals "
        "expire after 7 days)"
    )

    @model_validator(mode="after")
    def _positive_timeout(self):
        if self.timeout <= 0:
            raise ValueError("an approval's timeout must be longer than 0 s")
        return self


def _approval_shorthand(value: object) -> object:
    if value is True:
        return {}
    return value


ApprovalSpec = Annotated[Approval, BeforeValidator(_approval_shorthand)]


class Stage(Frozen):
    """A pre-production or production step of a pipeline."""

    name: str
    kind: Literal["preproduction", "production"]
    regions: tuple[str, ...] = ()
    duration: Duration = Field(0.0, description="pre-production: time to deploy and test")
    bake: BakeSpec = Field(Bake(), description="pre-production: bake after the tests")
    one_box: OneBox | None = None
    waves: tuple[Wave, ...] = ()
    batching: Batching = Batching()
    watch: Watch | None = Field(None, description="alarms for this stage (default: the pipeline's watch)")
    approval: ApprovalSpec | None = Field(
        None, description="a person approves before the stage starts (`true` for the defaults)"
    )

    @model_validator(mode="after")
    def _production_needs_targets(self):
        if self.kind == "production":
            if not self.regions:
                raise ValueError("a production stage needs at least one region")
            if not self.waves:
                raise ValueError("a production stage needs at least one wave")
            weights = [w.weight for w in self.waves if w.weight is not None]
            if any(b <= a for a, b in zip(weights, weights[1:], strict=False)):
                raise ValueError(f"traffic weights are cumulative and must grow from wave to wave, got "
                                 f"{', '.join(f'{w:g}' for w in weights)}")
        return self


class TimeWindow(WeeklyHours):
    """Hours (local time of each region) in which a production step (or stage, see `Blockers.check`) may start."""


class Freeze(Frozen):
    """A change freeze: no production step (or stage) starts between `start` and `end` (UTC)."""

    start: dt.datetime
    end: dt.datetime

    @model_validator(mode="after")
    def _ordered(self):
        if self.end <= self.start:
            raise ValueError("freeze end must be after start")
        return self


class Blockers(Frozen):
    """What stops a production step (one-box or a wave) from starting."""

    time_windows: tuple[TimeWindow, ...] = Field((), description="empty: any time")
    holidays: bool = Field(True, description="regions' holidays block")
    freezes: tuple[Freeze, ...] = ()
    incidents: bool = Field(
        True, description="an active incident (aggregate alarm in ALARM or infrastructure fault) blocks"
    )
    incident_alarm: str | None = Field(None, description="the aggregate alarm that signals an incident in a region")
    recheck: Duration = Field(300.0, description="how often a blocked stage checks the incident state again")
    check: Literal["every_step", "stage_start"] = Field(
        "every_step",
        description="when blockers are checked: before every step (one-box and each wave) of a production stage, "
        "or only before its first step",
    )


class Rollback(Frozen):
    automatic: bool = True
    scope: Literal["everywhere", "stage"] = Field(
        "everywhere", description="revert every host running the change, or only the alarming stage's hosts"
    )
    duration: Duration = Field(
        600.0, description="time to revert one batch; with max_share 1, from the decision to the last host reverted"
    )
    max_share: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        1.0, description="largest share of the hosts to revert reverted at once (batches one after another, "
        "like a deployment's); 1: all at once"
    )


class PipelinePolicy(Frozen):
    """How one kind of change travels: ordered stages, the alarms watched, rollback and blockers."""

    stages: Annotated[tuple[Stage, ...], Field(min_length=1)]
    watch: Watch = Watch()
    rollback: Rollback = Rollback()
    blockers: Blockers = Blockers()


class Policy(Frozen):
    pipelines: dict[str, PipelinePolicy]


# ---------------------------------------------------------------- replay: a scripted world


def _time_point(value: object) -> object:
    # "2d3h" or seconds: since the scenario's start; anything else is read as a date and time.
    if isinstance(value, str):
        try:
            return parse_duration_s(value)
        except ValueError:
            pass
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected seconds, a duration such as '2d3h' or a date and time, got {value!r}") from None
    return value


TimePoint = Annotated[float | dt.datetime, BeforeValidator(_time_point)]


class ReplayChange(Frozen):
    """One change of a replayed incident: it enters `pipeline` at `at`, with `defect` (None: a good change)."""

    pipeline: str
    at: TimePoint = Field(description="seconds or a duration since the scenario's start, or a date and time")
    defect: str | Defect | None = Field(
        None, description="a defect's name in changes.<pipeline>.defects, or a defect written out")
    caught_in_preprod: bool = False
    mitigation: Duration | None = Field(None, description="people's revert time (default: drawn from humans)")


class ReplayFault(Frozen):
    """One infrastructure fault of a replayed incident."""

    kind: Literal["az_outage", "region_event", "dependency_degradation"]
    region: str
    az: Annotated[int, Field(ge=1)] = Field(1, description="az_outage: which AZ of the region, from 1")
    second_az: Annotated[int, Field(ge=1)] | None = Field(
        None, description="az_outage: a second AZ of the region down for the same time (a correlated outage)")
    dependency: str | None = Field(None, description="dependency_degradation: which dependency")
    start: TimePoint
    duration: Duration
    error_rate: Probability = Field(0.2, description="dependency_degradation: share of its calls that fail; "
                                    "region_event: share of every host's requests that fail")
    failover: Duration = Field(300.0, description="az_outage: time its share of requests fails before traffic shifts")

    @model_validator(mode="after")
    def _dependency_named(self):
        if self.kind == "dependency_degradation" and not self.dependency:
            raise ValueError("a dependency_degradation needs `dependency`")
        if self.second_az is not None and (self.kind != "az_outage" or self.second_az == self.az):
            raise ValueError("`second_az` belongs to an az_outage and names an AZ other than `az`")
        return self


class Replay(Frozen):
    """A scripted world: exactly these changes and faults (traffic is still drawn from the seed)."""

    changes: tuple[ReplayChange, ...] = ()
    faults: tuple[ReplayFault, ...] = ()


# ---------------------------------------------------------------- uncertainty: where fitted parameters lie


class LognormalPosterior(Frozen):
    """A lognormal duration fitted to `n` values: the mean and standard deviation of their logarithms."""

    n: Annotated[int, Field(ge=2)]
    mean_log: float = Field(description="mean of the natural logarithms of the durations in seconds")
    sd_log: NonNegFloat = Field(description="their standard deviation (n - 1 in the denominator)")


class ExponentialPosterior(Frozen):
    """An exponential duration fitted to `n` values summing to `total_s` seconds."""

    n: Annotated[int, Field(ge=1)]
    total_s: PositiveFloat


class ParameterPosterior(Frozen):
    """Where one fitted world parameter lies (written by `deploysim fit`, docs/fit.md):
    `monte_carlo(..., parameter_uncertainty=True)` draws each replication's value from it. Exactly
    one of `beta`, `gamma`, `lognormal`, `exponential`."""

    parameter: str = Field(description="the scenario field path, e.g. changes.code.bad_probability")
    beta: tuple[PositiveFloat, PositiveFloat] | None = Field(
        None, description="a probability ~ Beta(a, b)")
    gamma: tuple[PositiveFloat, PositiveFloat] | None = Field(
        None, description="a rate ~ Gamma(shape, exposure): the events seen plus 1/2, and the time they were "
        "seen over in the field's unit (weeks for changes_per_week, months for rate_per_month)")
    lognormal: LognormalPosterior | None = Field(
        None, description="a duration distribution (lognormal): median and sigma drawn jointly")
    exponential: ExponentialPosterior | None = Field(
        None, description="a duration distribution (exponential): its mean drawn")

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [k for k in ("beta", "gamma", "lognormal", "exponential") if getattr(self, k) is not None]
        if len(given) != 1:
            got = ", ".join(given) or "none"
            raise ValueError(f"give exactly one of beta, gamma, lognormal, exponential (got {got})")
        return self


# ---------------------------------------------------------------- the whole scenario


class Scenario(Frozen):
    """A complete, validated scenario: world (fleet, traffic, changes, faults) and policy."""

    name: str
    description: str = ""
    start: dt.datetime = Field(dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc), description="simulated time zero (UTC)")
    metric_period: Duration = Field(60.0, description="seconds per metric datapoint")
    fleet: Fleet
    traffic: Traffic
    baseline: Baseline = Baseline()
    load_balancer: LoadBalancer = LoadBalancer()
    latency_slo_ms: PositiveFloat | None = Field(
        None, description="requests slower than this (ms) count as bad in the uptime figures, as failed "
        "requests do (default: latency does not count)")
    dependencies: tuple[Dependency, ...] = ()
    changes: dict[str, ChangeSource]
    faults: Faults = Faults()
    humans: Humans = Humans()
    alarms: Alarms = Alarms()
    policy: Policy
    replay: Replay | None = Field(None, description="replace the random changes and faults with these")
    uncertainty: tuple[ParameterPosterior, ...] = Field(
        (), description="where fitted world parameters lie (written by `deploysim fit`); used only by "
        "monte_carlo(..., parameter_uncertainty=True)")

    @field_validator("start")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)

    @field_validator("metric_period")
    @classmethod
    def _whole_seconds(cls, value: float) -> float:
        if value < 1 or value != int(value) or 300 % int(value) != 0:
            raise ValueError(
                "metric_period must be a whole number of seconds that divides 5 minutes (e.g. 10s, 60s, 300s)"
            )
        return value
