"""Readers and writers of history files: deploysim's generic CSV/JSON, AWS CodePipeline's
list-pipeline-executions JSON, GitHub's deployments with their statuses, and a PagerDuty-style
incident CSV. `read_history` tells them apart by their content."""

from __future__ import annotations

from pathlib import Path

from ..history import History, HistoryError
from . import codepipeline, generic, github, pagerduty
from .common import JsonRecords, csv_header, read_text

FORMATS = ("generic", "codepipeline", "github", "pagerduty")


def split_name(spec: str) -> tuple[str | None, str]:
    """`NAME=PATH` -> (NAME, PATH); a plain PATH -> (None, PATH)."""
    if "=" in spec and not Path(spec).exists():
        name, path = spec.split("=", 1)
        return name.strip() or None, path
    return None, spec


def detect(path: str | Path) -> str:
    """Which format a file is in, from its content."""
    text = read_text(path)
    if str(path).lower().endswith(".csv"):
        return "pagerduty" if pagerduty.looks_like(csv_header(text)) else "generic"
    data = JsonRecords(text, str(path)).data
    if codepipeline.looks_like(data):
        return "codepipeline"
    if github.looks_like(data):
        return "github"
    return "generic"


def read_file(spec: str) -> History:
    """One history file, any supported format; `NAME=PATH` names the pipeline of a one-pipeline file
    (CodePipeline, GitHub), else the file's name does."""
    name, path = split_name(spec)
    source = str(path)
    text = read_text(path)
    pipeline = name or Path(path).stem
    if source.lower().endswith(".csv"):
        return pagerduty.read(path) if pagerduty.looks_like(csv_header(text)) else generic.read_csv(path)
    records = JsonRecords(text, source)
    if codepipeline.looks_like(records.data):
        return codepipeline.read(path, pipeline, records)
    if github.looks_like(records.data):
        return github.read(path, pipeline, records)
    return generic.read_json(path, records)


def read_history(*specs: str) -> History:
    """Every file's records in one history."""
    history = History()
    for spec in specs:
        history = history.merged(read_file(spec))
    return history


def write_history(history: History, out_dir: str | Path, service: str = "my-service") -> list[Path]:
    """The history in every format deploysim reads, in `out_dir` (see docs/fit.md)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return (generic.write(history, out) + codepipeline.write(history, out) + github.write(history, out)
            + pagerduty.write(history, out, service))


__all__ = ["FORMATS", "History", "HistoryError", "detect", "read_file", "read_history", "split_name",
           "write_history"]
