"""Read a scenario file (YAML) into a validated, immutable Scenario; the one place input is checked.

Every problem is reported with the field path (``policy.pipelines.code.stages[2].waves[0].bake``),
its line and column in the file, and what was expected, all at once, never as a traceback. A key
given twice in one mapping is a problem (YAML would silently keep the last).
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


Position = tuple[int, int]  # 1-based line and column in the file


class ScenarioError(ValueError):
    """A scenario that cannot be used; ``problems`` lists (field path, what was expected) and
    ``positions`` maps a field path to its (line, column) in the file, where known."""

    def __init__(self, problems: Iterable[tuple[str, str]], source: str = "scenario",
                 positions: Mapping[str, Position] | None = None):
        self.problems = list(problems)
        self.source = source
        self.positions = dict(positions or {})
        lines = [f"{source}: {len(self.problems)} problem(s)"]
        for path, message in self.problems:
            where = self.positions.get(path)
            at = f" (line {where[0]}, column {where[1]})" if where else ""
            lines.append(f"  {path or '<top>'}{at}: {message}")
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


FRACTION_HINT = "a fraction, e.g. 0.0001 for 0.01%"

_TYPE_MESSAGES = {
    "float_parsing": "expected a number", "float_type": "expected a number",
    "int_parsing": "expected a whole number (integer)", "int_type": "expected a whole number (integer)",
    "int_from_float": "expected a whole number (integer)",
    "bool_parsing": "expected true or false", "bool_type": "expected true or false",
    "string_type": "expected text",
    "tuple_type": "expected a list (one '- item' per line, or [a, b])",
    "list_type": "expected a list (one '- item' per line, or [a, b])",
    "dict_type": "expected a mapping of name: value",
    "model_type": "expected a mapping of field: value", "model_attributes_type": "expected a mapping of field: value",
    "datetime_parsing": "expected a date and time such as 2026-01-05T00:00:00Z",
    "datetime_type": "expected a date and time such as 2026-01-05T00:00:00Z",
    "datetime_from_date_parsing": "expected a date and time such as 2026-01-05T00:00:00Z",
    "date_parsing": "expected a date such as 2026-12-25", "date_type": "expected a date such as 2026-12-25",
    "finite_number": "expected a finite number",
}


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _message(item: Mapping[str, Any], path: str) -> str:
    """What a field expected, in words a scenario's author uses (never pydantic's)."""
    kind, ctx, given = item["type"], item.get("ctx") or {}, item.get("input")
    if kind == "extra_forbidden":
        return "unknown field (check its spelling and indentation)"
    if kind == "missing":
        return "required field is missing"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", item["msg"])).removeprefix("Value error, ")
    if kind in ("float_parsing", "float_type") and isinstance(given, str) and given.strip().endswith("%"):
        if path.endswith("_pct"):
            return "expected a number of percent without the % sign, e.g. 99.9"
        return f"expected {FRACTION_HINT}, not a percentage"
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    bounds = {"greater_than": "greater than", "greater_than_equal": "at least", "less_than": "less than",
              "less_than_equal": "at most"}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        text = f"must be {bounds[kind]} {_number(limit)}"
        if kind.startswith("less") and float(limit) == 1.0:
            text += f" ({FRACTION_HINT})"
        return text
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} item(s)"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}"
    message = str(item["msg"])
    return "expected " + message[len("Input should be "):] if message.startswith("Input should be ") else message


def _as_given(loc: list[Any], data: Any) -> list[Any]:
    """The path cut where the file has a single value: a shorthand (``bake: 5x``) is reported at the
    field the author wrote, not at the part of the long form it stands for (``bake.duration``)."""
    node: Any = data
    out: list[Any] = []
    for part in loc:
        if isinstance(node, Mapping):
            if part not in node:
                return [*out, part]
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int):
            if not 0 <= part < len(node):
                return [*out, part]
            node = node[part]
        else:
            return out
        out.append(part)
    return out


def _pydantic_problems(error: ValidationError, data: Any = None) -> list[tuple[str, str]]:
    by_path: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        # Drop pydantic's tags for union members and validators from the path.
        loc = [p for p in item["loc"] if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS))]
        if data is not None:
            loc = _as_given(loc, data)
        message = _message(item, format_path(loc))
        messages = by_path.setdefault(format_path(loc), [])
        if message not in messages:
            messages.append(message)
    # "needs at least 1 item" when the items are there but each is wrong says nothing: keep the items' problems.
    for path in [p for p, m in by_path.items() if any(x.startswith("needs at least") for x in m)]:
        if any(other.startswith(path + "[") for other in by_path):
            del by_path[path]
    # A value that fits no member of a union gets one line listing what each member expected.
    return [(path, messages[0] if len(messages) == 1 else
             "expected one of: " + "; or ".join(m.removeprefix("expected ") for m in messages))
            for path, messages in by_path.items()]


def _locate(problems: list[tuple[str, str]], positions: Mapping[str, Position] | None) -> dict[str, Position]:
    """Each problem's line and column: of its field, or of the nearest enclosing field the file has."""
    if not positions:
        return {}
    out = {}
    for path, _ in problems:
        probe = path
        while probe not in positions and probe:
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        if probe in positions:
            out[path] = positions[probe]
    return out


def scenario_from_dict(data: Mapping[str, Any], source: str = "scenario",
                       positions: Mapping[str, Position] | None = None) -> Scenario:
    """Validate plain data (as loaded from YAML) into a Scenario, or raise ScenarioError.
    `positions` (field path -> line, column) lets the error say where in the file each problem is."""
    if not isinstance(data, Mapping):
        raise ScenarioError([("", f"expected a mapping at the top level, got {type(data).__name__}")], source)
    try:
        scenario = Scenario.model_validate(dict(data))
    except ValidationError as error:
        problems = _pydantic_problems(error, data)
        raise ScenarioError(problems, source, _locate(problems, positions)) from None
    problems = list(_cross_references(scenario))
    if problems:
        raise ScenarioError(problems, source, _locate(problems, positions))
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


def _positions(node: yaml.Node, path: tuple[Any, ...], out: dict[str, Position],
               duplicates: list[tuple[str, str]]) -> None:
    """Field path -> (line, column) of every key and item under `node`; keys given twice go to `duplicates`."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = key_node.value
            child = (*path, int(key) if key_node.tag == "tag:yaml.org,2002:int" else key)
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in seen:
                duplicates.append((format_path(child), f"duplicate key {key!r} at line {where[0]} (first given at "
                                                       f"line {seen[key]}); give each field once"))
                continue
            seen[key] = where[0]
            out[format_path(child)] = where
            _positions(value_node, child, out, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[format_path((*path, i))] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _positions(item, (*path, i), out, duplicates)


def read_yaml_with_positions(source: str,
                             error: type[ScenarioError] = ScenarioError) -> tuple[Any, dict[str, Position]]:
    """The data of a YAML file and the (line, column) of each field path; a key given twice in a
    mapping raises `error` naming both lines (as do the problems of `read_yaml_file`)."""
    try:
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise error([("", f"cannot read file: {exc.strerror}")], source) from None
    except UnicodeDecodeError as exc:
        raise error([("", f"not UTF-8 text (byte {exc.start}): save the file as UTF-8")], source) from None
    return yaml_with_positions(text, source, error)


def yaml_with_positions(text: str, source: str,
                        error: type[ScenarioError] = ScenarioError) -> tuple[Any, dict[str, Position]]:
    """The data of YAML `text` (from `source`) and the (line, column) of each field path; a key
    given twice in a mapping, or broken YAML, raises `error`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        positions: dict[str, Position] = {}
        duplicates: list[tuple[str, str]] = []
        if node is not None:
            _positions(node, (), positions, duplicates)
        if duplicates:
            raise error(duplicates, source)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error([("", f"not valid YAML{where}: {problem}")], source) from None
    finally:
        loader.dispose()
    return data, positions


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario file; raises ScenarioError naming each bad field with its line and column."""
    source = os.fspath(path)
    data, positions = read_yaml_with_positions(source)
    return scenario_from_dict(data if data is not None else {}, source, positions)


def _cross_references(sc: Scenario) -> Iterable[tuple[str, str]]:
    """Checks that span fields: names that must exist, waves that must cover their regions."""
    from ..alarms import RuleSyntaxError, parse_rule

    regions = {r.name: r for r in sc.fleet.regions}
    apis = set(sc.traffic.apis) | {"All"}
    deps = {d.name for d in sc.dependencies}
    metric_alarms = {a.name for a in sc.alarms.metric}
    composite = {a.name for a in sc.alarms.composite}
    all_alarms = metric_alarms | composite

    yield from _check_uncertainty(sc)

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
            yield from _check_judges(stage, apis, sbase)
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


def _check_judges(stage, apis, sbase):
    """A judge's APIs exist, and a rest-of-scope baseline has hosts left to compare with."""
    steps = [("one_box", stage.one_box)] if stage.one_box is not None else []
    steps += [(f"waves[{w}]", wave) for w, wave in enumerate(stage.waves)]
    for where, step in steps:
        judge = step.judge
        if judge is None:
            continue
        for m, metric in enumerate(judge.metrics):
            if metric.api is not None and metric.api != "All" and metric.api not in apis:
                yield (f"{sbase}.{where}.judge.metrics[{m}].api",
                       f"unknown API {metric.api!r}; expected one of {sorted(apis)}")
        if judge.baseline_kind == "rest-of-scope" and where.startswith("waves") and (
                step.count == "rest" if step.weight is None else step.weight >= 100):
            yield (f"{sbase}.{where}.judge.baseline", "rest-of-scope: a wave of count 'rest' leaves no host of the "
                   "stage to compare with; use baseline: deploy")


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
        if wave.weight is not None:  # a traffic weight is cumulative: the share done so far
            share_done = max(share_done, wave.weight / 100.0)
            continue
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
            "the waves do not cover every host of the stage's regions; end with a wave of count: rest "
            "(or of weight: 100)",
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
        elif fault.kind == "az_outage":
            azs = regions[fault.region].azs
            if fault.az > azs:
                yield (f"{base}.az", f"region {fault.region!r} has {azs} AZ(s)")
            if fault.second_az is not None and fault.second_az > azs:
                yield (f"{base}.second_az", f"region {fault.region!r} has {azs} AZ(s)")
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


def _check_uncertainty(sc: Scenario) -> Iterable[tuple[str, str]]:
    """Each posterior names a field of the scenario of the kind it draws: a probability, a rate, a duration."""
    if not sc.uncertainty:
        return
    data = sc.model_dump(mode="json")
    for i, posterior in enumerate(sc.uncertainty):
        value: Any = data
        for j, part in enumerate(posterior.parameter.split(".")):
            if not isinstance(value, dict) or part not in value:
                here = ".".join(posterior.parameter.split(".")[: j + 1])
                yield (f"uncertainty[{i}].parameter", f"no field {here!r} in the scenario (a dotted path of fields, "
                       "e.g. changes.code.bad_probability)")
                break
            value = value[part]
        else:
            yield from _check_posterior_kind(i, posterior.parameter, posterior, value)


def _check_posterior_kind(i: int, path: str, posterior: Any, value: Any) -> Iterable[tuple[str, str]]:
    distribution = posterior.lognormal is not None or posterior.exponential is not None
    if distribution != isinstance(value, dict) or (isinstance(value, dict) and "dist" not in value):
        kind = "a duration distribution" if distribution else "a number"
        yield (f"uncertainty[{i}]", f"{path} is not {kind}, which this posterior draws")
