"""deploysim's own history format: deployments and incidents as CSV or JSON, one record per change or
incident (field tables in docs/fit.md).

deployments: pipeline, change_id, entered, finished, outcome, cause
incidents:   incident_id, start, detected, mitigated, resolved, cause, change_id, severity, detected_by, scope
JSON holds the same fields: ``{"deployments": [...]}``, ``{"incidents": [...]}``, or a bare list.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..history import (
    CAUSES,
    DEPLOYMENT_CAUSES,
    OUTCOMES,
    Deployment,
    History,
    HistoryError,
    Incident,
    check_order,
    choose,
    iso,
    parse_time,
)
from .common import JsonRecords, csv_rows, read_text

DEPLOYMENT_FIELDS = ("pipeline", "change_id", "entered", "finished", "outcome", "cause")
INCIDENT_FIELDS = ("incident_id", "start", "detected", "mitigated", "resolved", "cause", "change_id", "severity",
                   "detected_by", "scope")
OUTCOME_ALIASES = {"rolled_back": "rolled_back", "rolledback": "rolled_back", "rollback": "rolled_back",
                   "failed_in_pre_production": "failed_preprod", "failed_in_preproduction": "failed_preprod",
                   "failed_preproduction": "failed_preprod", "preprod": "failed_preprod", "succeeded": "completed",
                   "deployed": "completed", "success": "completed", "in_flight": "in_progress",
                   "inprogress": "in_progress"}
CAUSE_ALIASES = {"infra": "infrastructure", "": "unknown", "deployment": "change", "code": "change"}


def deployment_from(record: Mapping[str, Any], source: str, line: int | None) -> Deployment:
    for name in ("pipeline", "change_id", "entered", "outcome"):
        if str(record.get(name) or "").strip() == "":
            raise HistoryError(source, line, name, "missing")
    outcome = choose(record.get("outcome"), OUTCOMES, OUTCOME_ALIASES, source, line, "outcome")
    entered = parse_time(record.get("entered"), source, line, "entered")
    finished = parse_time(record.get("finished"), source, line, "finished", required=outcome == "completed")
    cause = choose(record.get("cause") or "", DEPLOYMENT_CAUSES, {}, source, line, "cause")
    check_order(source, line, [("entered", entered), ("finished", finished)])
    assert entered is not None
    return Deployment(str(record["pipeline"]).strip(), str(record["change_id"]).strip(), entered, finished,
                      outcome, cause)


def incident_from(record: Mapping[str, Any], source: str, line: int | None) -> Incident:
    if str(record.get("incident_id") or "").strip() == "":
        raise HistoryError(source, line, "incident_id", "missing")
    cause = choose(record.get("cause"), CAUSES, CAUSE_ALIASES, source, line, "cause")
    times = {name: parse_time(record.get(name), source, line, name, required=False)
             for name in ("start", "detected", "mitigated", "resolved")}
    if times["start"] is None and times["detected"] is None:
        raise HistoryError(source, line, "start", "missing (an incident needs a start or a detected time)")
    check_order(source, line, list(times.items()))
    detected_by = choose(record.get("detected_by") or "", ("alarm", "people", ""), {}, source, line, "detected_by")
    scope = choose(record.get("scope") or "", ("az", "region", ""), {}, source, line, "scope")
    return Incident(str(record["incident_id"]).strip(), times["start"], times["detected"], times["mitigated"],
                    times["resolved"], cause, str(record.get("change_id") or "").strip(),
                    str(record.get("severity") or "").strip(), detected_by, scope,
                    str(record.get("service") or "").strip())


def read_csv(path: str | Path) -> History:
    """A generic deployments or incidents CSV (which one: from its header)."""
    source = str(path)
    text = read_text(path)
    deployments: list[Deployment] = []
    incidents: list[Incident] = []
    for line, row in csv_rows(text, source):
        if "incident_id" in row:
            incidents.append(incident_from(row, source, line))
        elif "entered" in row:
            deployments.append(deployment_from(row, source, line))
        else:
            raise HistoryError(source, 1, "", "neither a deployments header (pipeline, change_id, entered, ...) "
                               "nor an incidents header (incident_id, start, detected, ...)")
    return History(tuple(deployments), tuple(incidents), sources=(source,))


def read_json(path: str | Path, records: JsonRecords | None = None) -> History:
    """A generic deployments or incidents JSON file."""
    source = str(path)
    records = records or JsonRecords(read_text(path), source)
    data = records.data
    deployments: list[Deployment] = []
    incidents: list[Incident] = []
    parts: list[tuple[str | None, list[Any]]] = []
    if isinstance(data, list):
        parts.append((None, data))
    elif isinstance(data, dict) and ("deployments" in data or "incidents" in data):
        parts += [(key, data[key]) for key in ("deployments", "incidents") if key in data]
    else:
        raise records.error((), "", "expected a list of records or an object with `deployments` or `incidents`")
    for key, items in parts:
        if not isinstance(items, list):
            raise records.error((key,) if key else (), key or "", "expected a list of records")
        for i, item in enumerate(items):
            where: tuple[Any, ...] = ((key,) if key else ()) + (i,)
            if not isinstance(item, dict):
                raise records.error(where, "", f"record {i}: expected an object")
            kind = key or ("incidents" if "incident_id" in item else "deployments")
            make: Callable[..., Any] = incident_from if kind == "incidents" else deployment_from
            try:
                record = make(item, source, None)
            except HistoryError as error:
                raise HistoryError(source, records.line(where), error.field, f"record {i}: {error.detail}") from None
            (incidents if kind == "incidents" else deployments).append(record)
    return History(tuple(deployments), tuple(incidents), sources=(source,))


def deployment_row(d: Deployment) -> dict[str, str]:
    return {"pipeline": d.pipeline, "change_id": d.change_id, "entered": iso(d.entered), "finished": iso(d.finished),
            "outcome": d.outcome, "cause": d.cause}


def incident_row(i: Incident) -> dict[str, str]:
    return {"incident_id": i.incident_id, "start": iso(i.start), "detected": iso(i.detected),
            "mitigated": iso(i.mitigated), "resolved": iso(i.resolved), "cause": i.cause, "change_id": i.change_id,
            "severity": i.severity, "detected_by": i.detected_by, "scope": i.scope}


def write(history: History, out_dir: Path) -> list[Path]:
    """deployments.csv, deployments.json, incidents.csv and incidents.json in `out_dir`."""
    tables = {"deployments": (DEPLOYMENT_FIELDS, [deployment_row(d) for d in history.deployments]),
              "incidents": (INCIDENT_FIELDS, [incident_row(i) for i in history.incidents])}
    written = []
    for name, (fields, rows) in tables.items():
        with open(out_dir / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        (out_dir / f"{name}.json").write_text(json.dumps({name: rows}, indent=1) + "\n", encoding="utf-8")
        written += [out_dir / f"{name}.csv", out_dir / f"{name}.json"]
    return written
