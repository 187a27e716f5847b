"""The JSON Schema of scenario files, accepting exactly the forms `load_scenario` accepts.

Pydantic's own schema describes the models after validation; scenario files may also use the
shorthands the loader expands before it: a bake given as a duration (``bake: 1h`` for
``bake: {duration: 1h}``), an approval given as ``approval: true`` (the defaults), a random
duration given as a fixed one (``mitigation: 30m`` for ``{dist: fixed, value: 30m}``), and
durations written with spaces (``1h 30m``) or as a plain number in quotes (``"90"``). This module
adds those forms, so an editor that checks a file against `scenario_json_schema()` underlines what
`deploysim validate` rejects, and nothing else.
"""

from __future__ import annotations

import copy
from typing import Any

from .schema import Scenario

DURATION_PATTERN = (
    r"^ *((\d+(\.\d+)?) *(ms|s|m|h|d|w) *)+$"
    r"|^ *\+?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)? *$"
)
"""A duration string: number-unit parts ("1h30m", "1h 30m", "90s") or a plain number of seconds ("90")."""

DURATION = {
    "anyOf": [
        {"type": "number", "minimum": 0, "description": "seconds"},
        {"type": "string", "pattern": DURATION_PATTERN, "examples": ["90s", "5m", "1h30m", "2d"]},
    ]
}

# Models a scalar may stand for: (the scalar's schema, what it means there).
_SHORTHANDS = {
    "Bake": (DURATION, "a duration alone is the bake's duration"),
    "DurationDistribution": (DURATION, "a duration alone is a fixed duration"),
    "Approval": ({"const": True}, "`true` alone is an approval with the defaults"),
}


def _is_duration(node: Any) -> bool:
    """The duration schema as the scenario models emit it (a number of seconds or a duration string)."""
    if not isinstance(node, dict) or "anyOf" not in node:
        return False
    kinds = [m.get("type") for m in node["anyOf"] if isinstance(m, dict)]
    strings = [m for m in node["anyOf"] if isinstance(m, dict) and m.get("type") == "string"]
    return sorted(k for k in kinds if k) == ["number", "string"] and any("pattern" in s for s in strings) and \
        any("1h30m" in map(str, s.get("examples", ())) for s in strings)


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        if _is_duration(node):
            extra = {k: v for k, v in node.items() if k != "anyOf"}
            return {**copy.deepcopy(DURATION), **extra}
        return {k: _walk(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v) for v in node]
    return node


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file, shorthands included."""
    schema = _walk(Scenario.model_json_schema())
    defs = schema.get("$defs", {})
    for name, (scalar, meaning) in _SHORTHANDS.items():
        if name not in defs:
            continue
        fields = defs.pop(name)
        defs[f"{name}Fields"] = fields
        defs[name] = {
            "title": fields.get("title", name),
            "description": f"{fields.get('description', '')} ({meaning})".strip(),
            "anyOf": [copy.deepcopy(scalar), {"$ref": f"#/$defs/{name}Fields"}],
        }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
