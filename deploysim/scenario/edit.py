"""Write changed fields into a scenario file, keeping everything else as its author wrote it.

`deploysim tune --write-scenario` uses this: the tuned values go into a copy of the user's YAML
(comments, order, quoting and shorthands kept, via ruamel.yaml's round trip), not into a dump of
every field with its default. Paths are positional (``stages[3]``); a bake written as a duration
(``bake: 4h``) stays a duration when only its duration changes.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from typing import Any

from .loader import ScenarioError, load_scenario


def duration_text(seconds: float) -> str:
    """Seconds as a scenario file writes them: 7200 → "2h", 5400 → "1h30m", 0 → "0s"."""
    if seconds <= 0:
        return "0s"
    out, rest = "", float(seconds)
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        whole = int(rest // size)
        if whole:
            out += f"{whole}{unit}"
            rest -= whole * size
    if rest > 1e-9:
        out += f"{rest:g}s"
    return out


_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parts(path: str) -> list[str | int]:
    """``"a.b[2].c"`` → ``["a", "b", 2, "c"]`` (positional paths only, as the tuner reports them)."""
    return [name if name else int(index) for name, index in _PART.findall(path)]


def _shown(path: str, value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and not path.endswith("duration"):
        return int(value)
    if path.endswith("duration") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return duration_text(float(value))
    return value


def _set(node: Any, parts: list[str | int], value: Any, path: str) -> None:
    from ruamel.yaml.comments import CommentedMap

    *head, last = parts
    for i, part in enumerate(head):
        if isinstance(part, int):
            node = node[part]
            continue
        child = node.get(part) if isinstance(node, Mapping) else None
        if child is None or not isinstance(child, (Mapping, list)):
            rest = head[i + 1:]
            if part == "bake" and rest == [] and last == "duration":
                node[part] = value  # a bake written as a duration stays one
                return
            if rest and not all(isinstance(r, str) for r in rest):
                raise ValueError(f"{path}: the file has no list to change there")
            new = CommentedMap()
            if child is not None and part == "bake":  # `bake: 4h` gaining another field: spell it out
                new["duration"] = child
            node[part] = new
            child = new
        node = child
    node[last] = value


def _value_position(data: Any, parts: list[str | int]) -> tuple[int, int] | None:
    """(line, column), 0-based, of the scalar at `parts` in the file (a bake written as a duration
    stands for its duration); None when the file does not spell that scalar out."""
    node: Any = data
    parent: Any = None
    key: Any = None
    for i, part in enumerate(parts):
        if isinstance(node, Mapping) and isinstance(part, str) and part in node:
            parent, key, node = node, part, node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parent, key, node = node, part, node[part]
        elif part == "duration" and i == len(parts) - 1 and key == "bake" and not isinstance(node, (Mapping, list)):
            break  # `bake: 4h`: the scalar is the duration
        else:
            return None
    if isinstance(node, (Mapping, list)) or parent is None:
        return None
    lc = getattr(parent, "lc", None)
    if lc is None:
        return None
    line, column = lc.value(key) if isinstance(parent, Mapping) else lc.item(key)
    return int(line), int(column)


_PLAIN_END = re.compile(r"[^,\]}#]*")


def _splice(lines: list[str], line: int, column: int, text: str) -> None:
    """Replace the scalar that starts at (line, column) by `text`."""
    row = lines[line]
    if row[column:column + 1] in ("'", '"'):
        end = row.index(row[column], column + 1) + 1
    else:
        match = _PLAIN_END.match(row, column)
        end = column + len(match.group(0).rstrip()) if match else len(row)
    lines[line] = row[:column] + text + row[end:]


def _scalar_text(value: Any) -> str:
    from ruamel.yaml import YAML

    buffer = io.StringIO()
    YAML(typ="safe", pure=True).dump(value, buffer)
    return buffer.getvalue().strip().removesuffix("...").strip()


def write_scenario(source: str | os.PathLike[str], values: Mapping[str, Any], target: str | os.PathLike[str],
                   name: str | None = None) -> None:
    """Write `source` with each positional path set to its value (and `name`, if given) to `target`;
    the result is loaded again to check it is a valid scenario (ScenarioError if not).

    A value the file spells out is replaced where it stands, so every other byte of the file is
    kept; a field the file leaves to its default is added by a round trip through ruamel.yaml (which
    keeps comments and order, though not the alignment of flow mappings)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    with open(source, encoding="utf-8") as handle:
        text = handle.read()
    data = yaml.load(text)
    changes = dict(values) | ({"name": name} if name is not None else {})
    spots = {path: _value_position(data, _parts(path)) for path in changes}
    if all(spot is not None for spot in spots.values()):
        lines = text.split("\n")
        for path, spot in sorted(spots.items(), key=lambda kv: kv[1] or (0, 0), reverse=True):
            assert spot is not None
            _splice(lines, spot[0], spot[1], _scalar_text(_shown(path, changes[path])))
        out = "\n".join(lines)
    else:
        for path, value in changes.items():
            _set(data, _parts(path), _shown(path, value), path)
        buffer = io.StringIO()
        yaml.dump(data, buffer)
        out = buffer.getvalue()
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(out)
    try:
        load_scenario(target)
    except ScenarioError as error:  # a value that fit the model but not this file's form: say so
        raise ScenarioError(error.problems, os.fspath(target), error.positions) from None
