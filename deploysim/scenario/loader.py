"""Read a scenario file (YAML) into a validated, immutable Scenario; the one place input is checked.

Every problem is reported with the field path (``policy.pipelines.code.stages[2].waves[0].bake``)
and what was expected, all at once, never as a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from .schema import Scenario

MAX_BLOCKED_S = 14 * 86400.0  # a stage whose time windows stay shut longer than this is a policy error


class ScenarioError(ValueError):
    """A scenario that cannot be used; ``problems`` lists (field path, what was expected)."""

    def __init__(self, problems: Iterable[tuple[str, str]], source: str = "scenario"):
        self.problems = list(problems)
        self.source = source
        lines = [f"{source}: {len(self.problems)} problem(s)"]
        lines += [f"  {path or '<top>'}: {message}" for path, message in self.problems]
        super().__init__("\n".join(lines))


def format_path(loc: Iterable[Any]) -> str:
    """Turn a pydantic location tuple into ``a.b[2].c``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_TYPE_TAGS = {"int", "str", "float", "bool", "constrained-int", "constrained-float", "function-after",
              "function-before", "function-plain", "function-wrap", "list", "dict", "tuple"}


def _pydantic_problems(error: ValidationError) -> list[tuple[str, str]]:
    by_path: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        # Drop pydantic's tags for union members and validators from the path.
        loc = [p for p in item["loc"] if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS))]
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if item["type"] == "extra_forbidden":
            message = "unknown field (check its spelling and indentation)"
        elif item["type"] == "missing":
            message = "required field is missing"
        messages = by_path.setdefault(format_path(loc), [])
        if message not in messages:
            messages.append(message)
    # A value that fits no member of a union gets one line listing what each member expected.
    return [(path, messages[0] if len(messages) == 1 else "expected one of: " + "; or ".join(messages))
            for path, messages in by_path.items()]


def scenario_from_dict(data: Mapping[str, Any], source: str = "scenario") -> Scenario:
    """Validate plain data (as loaded from YAML) into a Scenario, or raise ScenarioError."""
    if not isinstance(data, Mapping):
        raise ScenarioError([("", f"expected a mapping at the top level, got {type(data).__name__}")], source)
    try:
        scenario = Scenario.model_validate(dict(data))
    except ValidationError as error:
        raise ScenarioError(_pydantic_problems(error), source) from None
    problems = list(_cross_references(scenario))
    if problems:
        raise ScenarioError(problems, source)
    return scenario


def read_yaml_file(source: str, error: type[ScenarioError] = ScenarioError) -> Any:
    """The data of a YAML file; an unreadable file, text that is not UTF-8 or broken YAML raises
    `error` with one problem at the top (error classes take (problems, source))."""
    try:
        with open(source, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise error([("", f"cannot read file: {exc.strerror}")], source) from None
    except UnicodeDecodeError as exc:
        raise error([("", f"not UTF-8 text (byte {exc.start}): save the file as UTF-8")], source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error([("", f"not valid YAML{where}: {problem}")], source) from None


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario file; raises ScenarioError naming each bad field."""
    source = os.fspath(path)
    data = read_yaml_file(source)
    return scenario_from_dict(data if data is not None else {}, source)


def _cross_references(sc: Scenario) -> Iterable[tuple[str, str]]:
    """Checks that span fields: names that must exist, waves that must cover their regions."""
    from ..alarms import RuleSyntaxError, parse_rule

    regions = {r.name: r for r in sc.fleet.regions}
    apis = set(sc.traffic.apis) | {"All"}
    deps = {d.name for d in sc.dependencies}
    metric_alarms = {a.name for a in sc.alarms.metric}
    composite = {a.name for a in sc.alarms.composite}
    all_alarms = metric_alarms | composite

    dupes = metric_alarms & composite
    if dupes or len(metric_alarms) != len(sc.alarms.metric) or len(composite) != len(sc.alarms.composite):
        yield ("alarms", "alarm names must be unique across metric and composite alarms")

    for i, alarm in enumerate(sc.alarms.metric):
        if alarm.api is not None and alarm.api not in apis:
            yield (f"alarms.metric[{i}].api", f"unknown API {alarm.api!r}; expected one of {sorted(apis)}")
        if alarm.dependency is not None and alarm.dependency not in deps:
            yield (
                f"alarms.metric[{i}].dependency",
                f"unknown dependency {alarm.dependency!r}; expected one of {sorted(deps)}",
            )
    for i, composite_alarm in enumerate(sc.alarms.composite):
        try:
            rule = parse_rule(composite_alarm.rule)
        except RuleSyntaxError as error:
            yield (f"alarms.composite[{i}].rule", str(error))
            continue
        for name in sorted(rule.alarm_names - all_alarms):
            yield (f"alarms.composite[{i}].rule", f"refers to unknown alarm {name!r}")
        if composite_alarm.name in rule.alarm_names:
            yield (f"alarms.composite[{i}].rule", "a composite alarm cannot refer to itself")

    for k, name in enumerate(sc.humans.pages or ()):
        if name not in all_alarms:
            yield (f"humans.pages[{k}]", f"unknown alarm {name!r}; expected one of {sorted(all_alarms)}")

    for name, source in sc.changes.items():
        if name not in sc.policy.pipelines:
            yield (
                f"changes.{name}",
                f"no pipeline '{name}' in policy.pipelines (known: {sorted(sc.policy.pipelines)})",
            )
        for j, defect in enumerate(source.defects):
            base = f"changes.{name}.defects[{j}]"
            if defect.api is not None and defect.api not in apis:
                yield (f"{base}.api", f"unknown API {defect.api!r}; expected one of {sorted(apis)}")
            if defect.dependency is not None and defect.dependency not in deps:
                yield (
                    f"{base}.dependency",
                    f"unknown dependency {defect.dependency!r}; expected one of {sorted(deps)}",
                )

    yield from _check_replay(sc, regions, deps, apis)

    one_box_share: dict[str, float] = {}
    for name, pipe in sc.policy.pipelines.items():
        base = f"policy.pipelines.{name}"
        if name not in sc.changes:
            yield (base, f"no change source: add changes.{name}")
        yield from _check_watch(pipe.watch, all_alarms, f"{base}.watch")
        if pipe.blockers.incident_alarm is not None and pipe.blockers.incident_alarm not in all_alarms:
            yield (f"{base}.blockers.incident_alarm", f"unknown alarm {pipe.blockers.incident_alarm!r}")
        covered: dict[str, int] = {}
        for s, stage in enumerate(pipe.stages):
            sbase = f"{base}.stages[{s}]"
            if stage.watch is not None:
                yield from _check_watch(stage.watch, all_alarms, f"{sbase}.watch")
            if stage.kind == "preproduction":
                if stage.regions or stage.waves or stage.one_box:
                    yield (sbase, "a preproduction stage has no regions, waves or one_box (it serves no customers)")
                continue
            for r, region in enumerate(stage.regions):
                if region not in regions:
                    yield (f"{sbase}.regions[{r}]", f"unknown region {region!r}; expected one of {sorted(regions)}")
                elif region in covered:
                    yield (
                        f"{sbase}.regions[{r}]",
                        f"region {region!r} is already deployed by stages[{covered[region]}]",
                    )
                else:
                    covered[region] = s
            yield from _check_bake(stage.one_box.bake if stage.one_box else None, apis, f"{sbase}.one_box.bake")
            if stage.one_box is not None and stage.one_box.traffic_share is not None:
                for region in stage.regions:
                    previous = one_box_share.setdefault(region, stage.one_box.traffic_share)
                    if previous != stage.one_box.traffic_share:
                        yield (
                            f"{sbase}.one_box.traffic_share",
                            f"region {region!r} already has a one-box share of {previous}",
                        )
            known = [regions[r] for r in stage.regions if r in regions]
            yield from _check_waves(stage, known, apis, sbase)
            yield from _check_windows_overlap(pipe.blockers, known, sc.start, sbase)
        for region in regions:
            if region not in covered:
                yield (f"{base}.stages", f"region {region!r} is in no production stage, so changes would never finish")


def _check_watch(watch, all_alarms, base):
    for scope in ("one_box", "wave", "region"):
        for k, name in enumerate(getattr(watch, scope)):
            if name not in all_alarms:
                yield (f"{base}.{scope}[{k}]", f"unknown alarm {name!r}; expected one of {sorted(all_alarms)}")


def _check_bake(bake, apis, base):
    if bake is None:
        return
    for api in bake.min_requests:
        if api not in apis:
            yield (f"{base}.min_requests.{api}", f"unknown API {api!r}; expected one of {sorted(apis)}")


def _check_windows_overlap(blockers, regions, start, sbase):
    """A stage over several regions starts only when all are open: their windows must overlap,
    in every week of the year (daylight saving time moves local windows against each other)."""
    from ..policy.blockers import Calendar, RegionCalendar

    if not blockers.time_windows or not regions:
        return
    # Freezes are meant to block for long; the question here is whether the windows ever open.
    calendar = Calendar(blockers.model_copy(update={"freezes": ()}), start)
    calendars = [RegionCalendar(r.timezone, frozenset(r.holidays)) for r in regions]
    names = ", ".join(r.name for r in regions)
    for week in range(53):
        t_s = week * 7 * 86400.0
        try:
            opens = calendar.next_allowed_s(t_s, calendars)
        except ValueError:
            opens = float("inf")
        if opens - t_s > MAX_BLOCKED_S:
            when = (start + dt.timedelta(seconds=t_s)).date().isoformat()
            what = "do not overlap in local time" if len(regions) > 1 else "stay closed (with its holidays)"
            yield (f"{sbase}.regions", f"the time windows of {names} {what} for over "
                   f"{MAX_BLOCKED_S / 86400:.0f} days from {when}; widen the windows or split the stage")
            return


def _check_waves(stage, regions, apis, sbase):
    units_total = {
        "region": len(regions),
        "az": sum(r.azs for r in regions),
        "cell": sum(r.azs * r.cells_per_az for r in regions),
    }
    share_done = 0.0  # share of the stage's hosts covered so far
    for w, wave in enumerate(stage.waves):
        wbase = f"{sbase}.waves[{w}]"
        yield from _check_bake(wave.bake, apis, f"{wbase}.bake")
        total = units_total[wave.unit]
        if total == 0:
            return
        if wave.count == "rest":
            share_done = 1.0
        else:
            in_region = {"region": [1 for r in regions], "az": [r.azs for r in regions],
                         "cell": [r.azs * r.cells_per_az for r in regions]}[wave.unit]
            per = min(in_region) if wave.per_region and in_region else total
            if wave.per_region and wave.unit == "region" and wave.count > 1:
                yield (f"{wbase}.count", "with per_region, a wave of unit 'region' takes count: 1 or rest")
            elif wave.count > per:
                where = "each region of the stage has" if wave.per_region else "the stage has"
                yield (f"{wbase}.count", f"{where} only {per} unit(s) of kind '{wave.unit}'")
            share_done = min(1.0, share_done + wave.count / per)
    if share_done < 1.0 - 1e-9:
        yield (
            f"{sbase}.waves",
            "the waves do not cover every host of the stage's regions; end with a wave of count: rest",
        )


def _check_replay(sc, regions, deps, apis):
    if sc.replay is None:
        return
    for i, change in enumerate(sc.replay.changes):
        base = f"replay.changes[{i}]"
        if change.pipeline not in sc.policy.pipelines:
            known = sorted(sc.policy.pipelines)
            yield (f"{base}.pipeline", f"unknown pipeline {change.pipeline!r}; expected one of {known}")
        elif isinstance(change.defect, str):
            source = sc.changes.get(change.pipeline)
            names = [d.name for d in source.defects] if source else []
            if change.defect not in names:
                yield (f"{base}.defect", f"unknown defect {change.defect!r}; expected one of {names}")
        elif change.defect is not None:
            if change.defect.api is not None and change.defect.api not in apis:
                yield (f"{base}.defect.api", f"unknown API {change.defect.api!r}; expected one of {sorted(apis)}")
            if change.defect.dependency is not None and change.defect.dependency not in deps:
                yield (f"{base}.defect.dependency", f"unknown dependency {change.defect.dependency!r}")
        if _seconds_since(sc, change.at) < 0:
            yield (f"{base}.at", f"before the scenario's start ({sc.start.isoformat()})")
    for i, fault in enumerate(sc.replay.faults):
        base = f"replay.faults[{i}]"
        if fault.region not in regions:
            yield (f"{base}.region", f"unknown region {fault.region!r}; expected one of {sorted(regions)}")
        elif fault.kind == "az_outage" and fault.az > regions[fault.region].azs:
            yield (f"{base}.az", f"region {fault.region!r} has {regions[fault.region].azs} AZ(s)")
        if fault.dependency is not None and fault.dependency not in deps:
            yield (f"{base}.dependency", f"unknown dependency {fault.dependency!r}; expected one of {sorted(deps)}")
        if _seconds_since(sc, fault.start) < 0:
            yield (f"{base}.start", f"before the scenario's start ({sc.start.isoformat()})")


def _seconds_since(sc, at) -> float:
    """A replay time point in seconds since the scenario's start (a date and time without a zone is UTC)."""
    if isinstance(at, dt.datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.timezone.utc)
        return (at - sc.start).total_seconds()
    return float(at)
