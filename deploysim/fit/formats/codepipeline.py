"""AWS CodePipeline: the JSON `aws codepipeline list-pipeline-executions --pipeline-name NAME` prints.

One file holds one pipeline's executions (`pipelineExecutionSummaries`); the pipeline's name is not
in it, so it is given (`NAME=FILE`) or taken from the file's name. Each STANDARD execution is one
change (its source revisions): `Succeeded` is completed; `Failed` is rolled back when a ROLLBACK
execution (`executionType`, or a `ManualRollback`/`AutomatedRollback` trigger) started while it
ran or up to its last update, else failed in pre-production; `InProgress`/`Stopping` are in
progress; `Stopped`, `Superseded` and `Cancelled` never reached production and are skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from ..history import Deployment, History, HistoryError, check_order, iso, parse_time
from .common import JsonRecords, read_text

STATUSES = ("Cancelled", "InProgress", "Stopped", "Stopping", "Succeeded", "Superseded", "Failed")
ROLLBACK_TRIGGERS = ("ManualRollback", "AutomatedRollback")
SKIPPED = ("Stopped", "Superseded", "Cancelled")


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and "pipelineExecutionSummaries" in data


def read(path: str | Path, pipeline: str, records: JsonRecords | None = None) -> History:
    source = str(path)
    records = records or JsonRecords(read_text(path), source)
    items = records.data.get("pipelineExecutionSummaries") if isinstance(records.data, dict) else None
    if not isinstance(items, list):
        raise records.error((), "pipelineExecutionSummaries", "expected the list list-pipeline-executions prints")
    standard: list[tuple[int, dict[str, Any], dt.datetime, dt.datetime | None]] = []
    rollbacks: list[tuple[dt.datetime, dt.datetime | None]] = []
    rollbacks_by: list[tuple[dt.datetime, str]] = []
    for i, item in enumerate(items):
        where = ("pipelineExecutionSummaries", i)
        try:
            if not isinstance(item, dict):
                raise HistoryError(source, None, "", "expected an object")
            status = item.get("status")
            if status not in STATUSES:
                raise HistoryError(source, None, "status", f"expected one of {', '.join(STATUSES)}, got {status!r}")
            start = parse_time(item.get("startTime"), source, None, "startTime")
            last = parse_time(item.get("lastUpdateTime"), source, None, "lastUpdateTime",
                              required=status not in ("InProgress", "Stopping"))
            check_order(source, None, [("startTime", start), ("lastUpdateTime", last)])
            if not item.get("pipelineExecutionId"):
                raise HistoryError(source, None, "pipelineExecutionId", "missing")
        except HistoryError as error:
            raise HistoryError(source, records.line(where), error.field,
                               f"execution {i}: {error.detail}") from None
        assert start is not None
        trigger = (item.get("trigger") or {}).get("triggerType", "")
        if item.get("executionType") == "ROLLBACK" or trigger in ROLLBACK_TRIGGERS:
            rollbacks.append((start, last))
            rollbacks_by.append((start, "people" if trigger == "ManualRollback" else "alarm"))
        elif status not in SKIPPED:
            standard.append((i, item, start, last))
    out = []
    for _i, item, start, last in standard:
        status = item["status"]
        rollback_start = next((s for s, _ in sorted(rollbacks) if last is not None and start <= s <= last), None)
        if status == "Succeeded":
            outcome = "completed"
        elif status == "Failed":
            outcome = "rolled_back" if rollback_start is not None else "failed_preprod"
        else:
            outcome, last = "in_progress", None
        revisions = item.get("sourceRevisions") or []
        change = (revisions[0].get("revisionId") if revisions and isinstance(revisions[0], dict) else None)
        trigger_of = dict(rollbacks_by)
        out.append(Deployment(pipeline, str(change or item["pipelineExecutionId"]), start, last, outcome,
                              rollback_started=rollback_start,
                              rolled_back_by=trigger_of.get(rollback_start, "") if rollback_start else ""))
    return History(tuple(out), sources=(source,))


def execution_id(pipeline: str, key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"deploysim/{pipeline}/{key}"))


def revision(change_id: str) -> str:
    return hashlib.sha1(f"change-{change_id}".encode()).hexdigest()


def write(history: History, out_dir: Path) -> list[Path]:
    """codepipeline/<pipeline>.json for each pipeline, newest execution first (as the API lists them)."""
    folder = out_dir / "codepipeline"
    folder.mkdir(exist_ok=True)
    written = []
    for pipeline in history.pipelines:
        executions: list[tuple[dt.datetime, dict[str, Any]]] = []
        last_good = None
        for d in sorted((d for d in history.deployments if d.pipeline == pipeline), key=lambda d: d.entered):
            ident = execution_id(pipeline, d.change_id)
            status = {"completed": "Succeeded", "rolled_back": "Failed", "failed_preprod": "Failed",
                      "in_progress": "InProgress"}[d.outcome]
            summary: dict[str, Any] = {
                "pipelineExecutionId": ident, "status": status, "startTime": iso(d.entered),
                "sourceRevisions": [{"actionName": "Source", "revisionId": revision(d.change_id),
                                     "revisionSummary": f"change {d.change_id}"}],
                "trigger": {"triggerType": "CloudWatchEvent", "triggerDetail": "source change"},
                "executionMode": "QUEUED", "executionType": "STANDARD"}
            if d.outcome != "in_progress":  # the API always gives a finished execution's last update
                summary["lastUpdateTime"] = iso(d.finished or d.entered)
            executions.append((d.entered, summary))
            if d.outcome == "rolled_back" and d.finished is not None:
                began = d.rollback_started or d.finished
                rollback: dict[str, Any] = {
                    "pipelineExecutionId": execution_id(pipeline, f"{d.change_id}/rollback"), "status": "Succeeded",
                    "startTime": iso(began), "lastUpdateTime": iso(d.finished),
                    "trigger": {"triggerType": ("ManualRollback" if d.rolled_back_by == "people"
                                                else "AutomatedRollback"),
                                "triggerDetail": f"rollback of change {d.change_id}"},
                    "executionMode": "QUEUED", "executionType": "ROLLBACK"}
                if last_good is not None:
                    rollback["rollbackMetadata"] = {"rollbackTargetPipelineExecutionId": last_good}
                executions.append((began, rollback))
            if d.outcome == "completed":
                last_good = ident
        executions.sort(key=lambda e: e[0], reverse=True)
        path = folder / f"{pipeline}.json"
        path.write_text(json.dumps({"pipelineExecutionSummaries": [e for _, e in executions]}, indent=1) + "\n",
                        encoding="utf-8")
        written.append(path)
    return written
