"""Scenario fields by path: read, set and sweep any field of a scenario (``a.b[2].c``).

Paths are the ones error messages print, e.g. ``policy.pipelines.code.stages[2].waves[0].bake.duration``;
an item of a list may also be named by one of its fields, ``stages[name=prod-2].waves[0]``, which
stays right when stages are added or reordered.
A changed scenario is validated again in full, so a value that does not fit its field is reported
with the field's path, as for a scenario file.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from ..scenario import Scenario, ScenarioError, scenario_from_dict

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\[([A-Za-z_]\w*)=([^\]]+)\]")

Part = str | int | tuple[str, str]  # a field, a position in a list, or (field, value) naming a list item


class ParameterError(ValueError):
    """A parameter path, grid or value that cannot be used; the message is one line."""


_SELECT = r"\[(\d+|[A-Za-z_]\w*=[^\]]+)\]"
_PATH = re.compile(rf"[^.\[\]]+({_SELECT})*(\.[^.\[\]]+({_SELECT})*)*")


def parse_path(path: str) -> list[Part]:
    """``"a.b[2].c"`` → ``["a", "b", 2, "c"]``; ``"stages[name=prod-2]"`` → ``["stages", ("name", "prod-2")]``."""
    text = path.strip()
    if not text:
        raise ParameterError("empty parameter path")
    if not _PATH.fullmatch(text):
        raise ParameterError(f"malformed parameter path {path!r}: expected names joined by dots, "
                             "with [N] or [name=NAME] after a list, e.g. policy.pipelines.code.stages[2].one_box.bake "
                             "or policy.pipelines.code.stages[name=prod-2].waves[0].bake")
    out: list[Part] = []
    for name, index, key, value in _TOKEN.findall(text):
        out.append(name if name else int(index) if index else (key, value.strip()))
    return out


def _format(parts: Sequence[Part]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, tuple):
            out += f"[{part[0]}={part[1]}]"
        else:
            out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


def _positional(data: Any, parts: Sequence[Part], path: str) -> list[str | int]:
    """The parts with every [field=value] replaced by the position of the item it names."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(parts):
        if isinstance(part, tuple):
            key, value = part
            here = _format(parts[:i])
            if not isinstance(node, list):
                raise ParameterError(f"unknown parameter path {path!r}: {here} is not a list")
            hits = [j for j, item in enumerate(node) if isinstance(item, dict) and str(item.get(key)) == value]
            if len(hits) != 1:
                known = ", ".join(str(item.get(key)) for item in node if isinstance(item, dict) and key in item)
                what = "no item" if not hits else f"{len(hits)} items"
                raise ParameterError(f"unknown parameter path {path!r}: {what} of {here} with {key} {value!r} "
                                     f"(known: {known or 'none'})")
            part = hits[0]
        out.append(part)
        node = _step(node, part, out, path)
    return out


def resolve_path(scenario: Scenario, path: str) -> str:
    """The path with items named by a field ([name=prod-2]) written by position ([3])."""
    return _format(_positional(scenario_data(scenario), parse_path(path), path))


def _walk(data: Any, named: Sequence[Part], path: str) -> tuple[Any, str | int]:
    """The container holding the last part of `parts`, and that part; errors name the first bad step."""
    parts = _positional(data, named, path)
    node = data
    for i, part in enumerate(parts[:-1] if parts else parts):
        node = _step(node, part, parts[: i + 1], path)
    last = parts[-1]
    _step(node, last, parts, path)  # the field itself must exist too
    return node, last


def _step(node: Any, part: str | int, so_far: Sequence[Part], path: str) -> Any:
    here = _format(so_far)
    if isinstance(part, int):
        if not isinstance(node, list):
            raise ParameterError(f"unknown parameter path {path!r}: {here} is not a list")
        if not 0 <= part < len(node):
            raise ParameterError(
                f"unknown parameter path {path!r}: {here} is out of range (list has {len(node)} items)"
            )
        return node[part]
    if not isinstance(node, dict):
        raise ParameterError(
            f"unknown parameter path {path!r}: {here} does not exist "
            f"({_format(so_far[:-1]) or 'the scenario'} has no fields)"
        )
    if part not in node:
        options = ", ".join(sorted(str(k) for k in node)[:12])
        raise ParameterError(f"unknown parameter path {path!r}: no field {here!r} (fields there: {options})")
    return node[part]


def scenario_data(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain data with every field present (defaults included)."""
    return scenario.model_dump(mode="json")


def get_value(scenario: Scenario, path: str) -> Any:
    container, last = _walk(scenario_data(scenario), parse_path(path), path)
    return container[last]


def with_values(scenario: Scenario, values: Mapping[str, Any], name: str | None = None) -> Scenario:
    """A copy of `scenario` with each path set to its value, validated again in full."""
    data = copy.deepcopy(scenario_data(scenario))
    for path, value in values.items():
        container, last = _walk(data, parse_path(path), path)
        # A bake given as a duration ("1h") stands for the bake's duration.
        if isinstance(container[last], dict) and not isinstance(value, dict) and "duration" in container[last]:
            container[last]["duration"] = value
        else:
            container[last] = value
    if name is not None:
        data["name"] = name
    try:
        return scenario_from_dict(data, source=scenario.name)
    except ScenarioError as error:
        problems = "; ".join(f"{p or '<top>'}: {m}" for p, m in error.problems)
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
        raise ParameterError(f"{shown} gives an invalid scenario: {problems}") from None


def parse_value(text: str) -> Any:
    """A grid value as YAML reads it: ``2`` → 2, ``0.5`` → 0.5, ``1h`` → "1h", ``true`` → True."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_param(spec: str) -> tuple[str, list[Any]]:
    """``"path=v1,v2,v3"`` → (path, [v1, v2, v3])."""
    if "=" not in spec:
        raise ParameterError(f"malformed --param {spec!r}: expected PATH=VALUE1,VALUE2,...")
    path, _, values = spec.partition("=")
    path = path.strip()
    parse_path(path)
    items = [v.strip() for v in values.split(",")]
    if not values.strip() or any(not v for v in items):
        raise ParameterError(f"empty grid for {path!r}: give at least one value, e.g. {path}=1h,2h")
    return path, [parse_value(v) for v in items]


def check_grid(scenario: Scenario, grid: Mapping[str, Iterable[Any]]) -> dict[str, list[Any]]:
    """Validate a grid up front: known paths, at least one value each, every value valid for its field."""
    if not grid:
        raise ParameterError("empty grid: give at least one parameter with at least one value")
    out: dict[str, list[Any]] = {}
    for path, values in grid.items():
        values = list(values)
        if not values:
            raise ParameterError(f"empty grid for {path!r}: give at least one value")
        get_value(scenario, path)
        for value in values:
            with_values(scenario, {path: value})
        out[path] = values
    return out


def swept_pipeline(paths: Iterable[str]) -> str | None:
    """The one pipeline whose settings `paths` name (`policy.pipelines.NAME....`), or None if none or several."""
    named = {p.split(".")[2] for p in paths if p.startswith("policy.pipelines.") and p.count(".") >= 3}
    return named.pop() if len(named) == 1 else None


def pick_setting(settings: Mapping[str, Mapping[str, Any]], pick: str) -> tuple[int, str]:
    """The setting `pick` names among a sweep's `settings` (label → values, in the sweep's order):
    its number (from 1, in the order the sweep prints them) or its label as printed (policy paths
    may also be written in full, ``policy.pipelines.code...``). Returns (number, label)."""
    labels = list(settings)
    text = pick.strip()
    if text.isdigit():
        number = int(text)
        if 1 <= number <= len(labels):
            return number, labels[number - 1]
        raise ParameterError(f"--pick: setting {number} does not exist; the sweep has settings 1 to {len(labels)}")
    wanted = _normal_label(text)
    for number, label in enumerate(labels, start=1):
        if _normal_label(label) == wanted:
            return number, label
    shown = "; ".join(f"{n}: {label}" for n, label in enumerate(labels[:6], start=1))
    more = f"; and {len(labels) - 6} more" if len(labels) > 6 else ""
    raise ParameterError(f"--pick: no setting is labelled {text!r}; give a setting's number (1 to {len(labels)}) "
                         f"or its label as sweep prints it ({shown}{more})")


def _normal_label(label: str) -> str:
    """A setting's label without spaces after commas and with policy paths written short."""
    return ",".join(part.strip().removeprefix("policy.pipelines.") for part in label.split(","))


def file_values(scenario: Scenario, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` (path → value, as sweeps and tuning take them) as positional paths for
    `deploysim.scenario.edit.write_scenario`: items named by a field are written by position, and a
    bake given a duration (``...bake=1h``) changes the bake's duration, not the whole bake."""
    out = {}
    for path, value in values.items():
        current = get_value(scenario, path)
        if isinstance(current, dict) and not isinstance(value, dict) and "duration" in current:
            path = f"{path}.duration"
        out[resolve_path(scenario, path)] = value
    return out
