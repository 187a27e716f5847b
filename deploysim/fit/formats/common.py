"""What every reader shares: reading a file as CSV rows or JSON records with the line each starts on."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..history import HistoryError


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise HistoryError(str(path), None, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryError(str(path), None, "", f"cannot read it: {error}") from None


def csv_rows(text: str, source: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) for each CSV row, with header names lower-cased and spaces turned into underscores."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise HistoryError(source, None, "", "empty file (expected a header line)") from None
    names = [h.strip().lower().replace(" ", "_") for h in header]
    line = reader.line_num
    for values in reader:
        start, line = line + 1, reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(names):
            raise HistoryError(source, start, "", f"{len(values)} fields where the header has {len(names)}")
        yield start, dict(zip(names, values, strict=True))


def csv_header(text: str) -> list[str]:
    first = next(csv.reader(io.StringIO(text)), [])
    return [h.strip().lower().replace(" ", "_") for h in first]


def load_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise HistoryError(source, error.lineno, "", f"not JSON: {error.msg}") from None


def json_line(text: str, path: tuple[Any, ...]) -> int | None:
    """The line on which the JSON value at `path` (keys and indices) starts; looked up only when a
    record is reported, since it parses the file again with positions."""
    from ruamel.yaml import YAML

    try:
        node = YAML(typ="rt").load(text)
        line = None
        for part in path:
            if hasattr(node, "lc"):
                line = node.lc.key(part)[0] if isinstance(part, str) else node.lc.item(part)[0]
            node = node[part]
        if hasattr(node, "lc"):
            line = node.lc.line
        return None if line is None else int(line) + 1
    except Exception:  # positions are a courtesy: the error is reported without one
        return None


class JsonRecords:
    """Records of a JSON file: errors about record `path` name its line."""

    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.data = load_json(text, source)

    def error(self, path: tuple[Any, ...], field_name: str, message: str) -> HistoryError:
        return HistoryError(self.source, json_line(self.text, path), field_name, message)

    def line(self, path: tuple[Any, ...]) -> int | None:
        return json_line(self.text, path)
