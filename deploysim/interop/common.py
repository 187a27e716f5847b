"""What every importer shares: the documents it reads (with each field's line), the error that
names an unsupported field, and the pipeline it builds (each part with where it came from)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..durations import parse_duration_s
from ..scenario.loader import Position, ScenarioError, _positions, format_path


class PolicyImportError(ScenarioError):
    """A source file deploysim cannot import: one problem, naming the field and its line."""

    def __init__(self, source: str, path: str, message: str, positions: Mapping[str, Position] | None = None):
        where = (positions or {}).get(path)
        super().__init__([("", f"{path}: {message}" if path else message)], source, {"": where} if where else {})


@dataclass(frozen=True)
class Document:
    """One YAML or JSON document of a source file, with the (line, column) of each field path."""

    source: str
    data: Any
    positions: Mapping[str, Position]

    def fail(self, path: str, message: str) -> PolicyImportError:
        return PolicyImportError(self.source, path, message, self.positions)

    def unsupported(self, path: str, why: str = "") -> PolicyImportError:
        """The error for a field deploysim has no equivalent of: `not supported: <field> (why)`."""
        where = self.positions.get(path)
        return PolicyImportError(self.source, "", f"not supported: {path}" + (f" ({why})" if why else ""),
                                 {"": where} if where else {})

    def get(self, path: str) -> Any:
        """The value at a dotted path (None when any part is missing)."""
        node = self.data
        for part in path.split("."):
            if not isinstance(node, Mapping):
                return None
            node = node.get(part)
        return node


def read_documents(source: str, text: str) -> list[Document]:
    """Every document of a YAML (or JSON) text, each with its fields' positions."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyImportError(source, "", f"not valid YAML or JSON{where}: {getattr(exc, 'problem', exc)}") from None
    out = []
    for node in nodes:
        if node is None:
            continue
        positions: dict[str, Position] = {}
        _positions(node, (), positions, [])
        loader = yaml.SafeLoader("")
        try:
            data = loader.construct_document(node)  # the node's marks are the file's lines
        except yaml.YAMLError as exc:
            # e.g. an unquoted {{ template }} (a mapping used as a key)
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise PolicyImportError(source, "", f"not valid YAML{where}: {getattr(exc, 'problem', exc)} "
                                                "(quote templated values such as {{args.x}})") from None
        finally:
            loader.dispose()
        out.append(Document(source, data, positions))
    return out


def child(path: str, key: str | int) -> str:
    return format_path([*_split(path), key]) if path else format_path([key])


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for dotted in path.split("."):
        name, *indexes = dotted.split("[")
        if name:
            parts.append(name)
        parts += [int(i.rstrip("]")) for i in indexes]
    return parts


def seconds(doc: Document, path: str, value: Any) -> float:
    """A duration as Argo and Flagger write it: a number of seconds, or "30s", "5m", "1h"."""
    try:
        return parse_duration_s(value)
    except ValueError as error:
        raise doc.fail(path, str(error)) from None


def number(doc: Document, path: str, value: Any, *, integer: bool = False) -> float:
    """A number (Kubernetes int-or-string fields may hold one as text)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise doc.fail(path, f"expected a number, got {value!r}") from None
    if not math.isfinite(out) or (integer and out != int(out)):
        raise doc.fail(path, f"expected {'a whole number' if integer else 'a finite number'}, got {value!r}")
    return out


@dataclass
class Commented:
    """A value of the output and the comment that says where it came from."""

    value: Any
    comment: str = ""


@dataclass
class ImportedPipeline:
    """One pipeline built from a source: a production stage over the cluster's region, its alarms,
    and notes for the top of the output (what was approximated or left out)."""

    name: str
    origin: str  # e.g. 'Argo Rollouts Rollout "rollout-canary" (rollout.yaml)'
    waves: list[Commented] = field(default_factory=list)
    batching: Commented | None = None
    one_box: Commented | None = None
    approval: Commented | None = None
    watch: dict[str, list[str]] = field(default_factory=dict)
    alarms: list[Commented] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exact: dict | None = None  # a stage, watch and alarms to use as they are (an export's annotation)


def _tidy(value: Any) -> Any:
    """Whole floats as integers (weight 100, not 100.0), recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tidy(v) for v in value]
    return value


def flow(value: Any) -> str:
    """One value as YAML on one line ({unit: traffic, weight: 20, bake: 40s})."""
    text = yaml.safe_dump(_tidy(value), default_flow_style=True, sort_keys=False, width=10**6).strip()
    return text[:-3].rstrip() if text.endswith("\n...") else text


def as_mapping(doc: Document, path: str, value: Any) -> Mapping:
    """`value` if it is a mapping (None: an empty one), else the error naming `path`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise doc.fail(path, f"expected a mapping of field: value, got {_kind(value)}")
    return value


def as_list(doc: Document, path: str, value: Any) -> list:
    """`value` if it is a list (None: an empty one), else the error naming `path`."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise doc.fail(path, f"expected a list (one '- item' per line), got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return {str: "text", bool: "true/false", int: "a number", float: "a number", list: "a list"}.get(
        type(value), type(value).__name__) + (f" {value!r}" if isinstance(value, (str, int, float)) else "")
