"""GitHub deployments: the REST API's `GET /repos/{owner}/{repo}/deployments` list, each deployment
with the list `GET .../deployments/{id}/statuses` returns for it under the key `statuses`.

One file holds one pipeline (given as `NAME=FILE`, else the file's name). Each deployment is one
change (`sha`); its latest status other than `inactive` decides: `success` is completed;
`failure` or `error` is rolled back when the deployment was to production (`production_environment`,
or an environment named `production`/`prod`) and failed in pre-production otherwise;
`queued`/`pending`/`in_progress` are in progress. A deployment whose only statuses are `inactive`
was superseded after it succeeded: completed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..history import Deployment, History, HistoryError, iso, parse_time
from .codepipeline import revision
from .common import JsonRecords, read_text

STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")


def looks_like(data: Any) -> bool:
    items = data.get("deployments") if isinstance(data, dict) else data
    return (isinstance(items, list) and bool(items) and isinstance(items[0], dict)
            and "sha" in items[0] and "environment" in items[0])


def _production(item: dict[str, Any]) -> bool:
    if "production_environment" in item and item["production_environment"] is not None:
        return bool(item["production_environment"])
    return str(item.get("environment", "")).lower() in ("production", "prod")


def read(path: str | Path, pipeline: str, records: JsonRecords | None = None) -> History:
    source = str(path)
    records = records or JsonRecords(read_text(path), source)
    data = records.data
    key: tuple[Any, ...] = ("deployments",) if isinstance(data, dict) else ()
    items = data.get("deployments") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise records.error((), "", "expected the list GET /repos/{owner}/{repo}/deployments returns")
    out = []
    for i, item in enumerate(items):
        where = (*key, i)
        try:
            out.append(_deployment(item, pipeline, source))
        except HistoryError as error:
            raise HistoryError(source, records.line(where), error.field, f"deployment {i}: {error.detail}") from None
    return History(tuple(out), sources=(source,))


def _deployment(item: Any, pipeline: str, source: str) -> Deployment:
    if not isinstance(item, dict):
        raise HistoryError(source, None, "", "expected an object")
    for name in ("id", "sha", "environment", "created_at"):
        if item.get(name) in (None, ""):
            raise HistoryError(source, None, name, "missing")
    entered = parse_time(item["created_at"], source, None, "created_at")
    statuses = item.get("statuses")
    if not isinstance(statuses, list):
        raise HistoryError(source, None, "statuses", "missing: add the list GET .../deployments/{id}/statuses "
                           "returns for this deployment under `statuses`")
    timed = []
    for j, status in enumerate(statuses):
        if not isinstance(status, dict) or status.get("state") not in STATES:
            got = status.get("state") if isinstance(status, dict) else status
            raise HistoryError(source, None, f"statuses[{j}].state",
                               f"expected one of {', '.join(STATES)}, got {got!r}")
        when = parse_time(status.get("created_at"), source, None, f"statuses[{j}].created_at")
        assert when is not None
        timed.append((when, status["state"]))
    timed.sort(key=lambda s: s[0])
    live = [s for s in timed if s[1] != "inactive"]
    assert entered is not None
    if not live:
        outcome, finished = ("completed", timed[0][0]) if timed else ("in_progress", None)
    else:
        finished, state = live[-1]
        if state == "success":
            outcome = "completed"
        elif state in ("failure", "error"):
            outcome = "rolled_back" if _production(item) else "failed_preprod"
        else:
            outcome, finished = "in_progress", None
    if finished is not None and finished < entered:
        raise HistoryError(source, None, "statuses", f"a status ({iso(finished)}) before the deployment's "
                           f"created_at ({iso(entered)})")
    return Deployment(pipeline, str(item["sha"]), entered, finished, outcome)


def write(history: History, out_dir: Path) -> list[Path]:
    """github/<pipeline>.json for each pipeline: deployments newest first, each with its statuses newest first."""
    folder = out_dir / "github"
    folder.mkdir(exist_ok=True)
    written = []
    next_id = 1
    for pipeline in history.pipelines:
        deployments = []
        for d in sorted((d for d in history.deployments if d.pipeline == pipeline), key=lambda d: d.entered):
            production = d.outcome != "failed_preprod"
            env = "production" if production else "pre-production"
            ident, next_id = next_id, next_id + 1
            statuses = [{"id": ident * 10, "state": "in_progress", "description": "deploying", "environment": env,
                         "created_at": iso(d.entered), "updated_at": iso(d.entered)}]
            if d.finished is not None:
                state = "success" if d.outcome == "completed" else "failure"
                text = {"completed": "deployed everywhere", "rolled_back": "rolled back",
                        "failed_preprod": "failed in pre-production"}[d.outcome]
                statuses.append({"id": ident * 10 + 1, "state": state, "description": text, "environment": env,
                                 "created_at": iso(d.finished), "updated_at": iso(d.finished)})
            deployments.append({
                "id": ident, "sha": revision(d.change_id), "ref": "main", "task": "deploy", "payload": {},
                "environment": env, "original_environment": env, "description": f"change {d.change_id}",
                "production_environment": production, "transient_environment": False,
                "created_at": iso(d.entered), "updated_at": iso(d.finished or d.entered),
                "statuses": list(reversed(statuses))})
        path = folder / f"{pipeline}.json"
        path.write_text(json.dumps(list(reversed(deployments)), indent=1) + "\n", encoding="utf-8")
        written.append(path)
    return written
