"""An incident export with the fields PagerDuty's incident CSV has: created, acknowledged, resolved,
urgency, service (and the incident's number and title).

Column names are matched without regard to case, spaces or underscores, with the spellings
PagerDuty's exports and API use (`created_at`/`created_on`, `acknowledged_at`/`first_acknowledged_at`,
`resolved_at`/`resolved_on`, `service_name`/`service`, `title`/`description`/`summary`).
PagerDuty knows when on-call was paged, not when the impact began: `created` is read as detected,
`resolved` as mitigated and resolved, and the start as unknown. It has no cause: a `cause`
column is used when present, else a tag at the start of the title (`[change 42]`,
`[infrastructure az]`, `[infrastructure region]`, `[dependency]`), else the cause is unknown.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

from ..history import CAUSES, History, HistoryError, Incident, check_order, choose, iso, parse_time
from .common import csv_rows, read_text

COLUMNS = {
    "created": ("created_at", "created_on", "created"),
    "acknowledged": ("acknowledged_at", "first_acknowledged_at", "acknowledged_on", "acknowledged"),
    "resolved": ("resolved_at", "resolved_on", "resolved"),
    "urgency": ("urgency",),
    "service": ("service_name", "service"),
    "title": ("title", "description", "summary"),
    "number": ("incident_number", "id", "number"),
}
TAG = re.compile(r"^\s*\[(change|infrastructure|dependency)(?:\s+([^\]]*))?\]", re.IGNORECASE)


def _column(header: list[str], field_name: str) -> str | None:
    return next((c for c in COLUMNS[field_name] if c in header), None)


def looks_like(header: list[str]) -> bool:
    return _column(header, "created") is not None and _column(header, "urgency") is not None


def read(path: str | Path) -> History:
    source = str(path)
    out = []
    for line, row in csv_rows(read_text(path), source):
        header = list(row)
        col = {name: _column(header, name) for name in COLUMNS}
        for name in ("created", "resolved", "urgency", "number"):
            if col[name] is None:
                raise HistoryError(source, 1, name, f"no such column (expected one of {', '.join(COLUMNS[name])})")
        created = parse_time(row[col["created"] or ""], source, line, col["created"] or "created")
        acked = parse_time(row.get(col["acknowledged"] or "", ""), source, line, col["acknowledged"] or "acknowledged",
                           required=False)
        resolved = parse_time(row[col["resolved"] or ""], source, line, col["resolved"] or "resolved", required=False)
        check_order(source, line, [("created", created), ("acknowledged", acked), ("resolved", resolved)])
        urgency = choose(row[col["urgency"] or ""], ("high", "low"), {}, source, line, col["urgency"] or "urgency")
        title = row.get(col["title"] or "", "")
        cause, change_id, scope = "unknown", "", ""
        if row.get("cause", "").strip():
            cause = choose(row["cause"], CAUSES, {"infra": "infrastructure"}, source, line, "cause")
        tag = TAG.match(title)
        if tag:
            cause = tag.group(1).lower() if cause == "unknown" else cause
            detail = (tag.group(2) or "").strip()
            if cause == "change":
                change_id = detail
            elif cause == "infrastructure":
                scope = detail.lower() if detail.lower() in ("az", "region") else ""
        out.append(Incident(str(row[col["number"] or ""]).strip(), None, created, resolved, resolved, cause,
                            change_id, urgency, "people" if cause == "change" else "", scope,
                            row.get(col["service"] or "", "").strip()))
    return History(incidents=tuple(out), sources=(source,))


FIELDS = ("id", "incident_number", "title", "status", "urgency", "service_name", "created_at", "acknowledged_at",
          "resolved_at")


def write(history: History, out_dir: Path, service: str = "my-service") -> list[Path]:
    """pagerduty-incidents.csv: the incidents that paged people (changes found by people, and every
    infrastructure or dependency incident); changes an alarm rolled back paged nobody."""
    path = out_dir / "pagerduty-incidents.csv"
    rows = []
    for n, i in enumerate(sorted((i for i in history.incidents if i.detected is not None and
                                  (i.cause != "change" or i.detected_by != "alarm")),
                                 key=lambda i: i.detected or i.start or dt.datetime.min), start=1):
        tag = {"change": f"[change {i.change_id}]", "infrastructure": f"[infrastructure {i.scope or 'az'}]",
               "dependency": "[dependency]"}.get(i.cause, "")
        rows.append({"id": f"Q{n:06d}", "incident_number": n, "title": f"{tag} {i.incident_id}".strip(),
                     "status": "resolved" if i.resolved else "triggered", "urgency": "high", "service_name": service,
                     "created_at": iso(i.detected), "acknowledged_at": iso(i.detected),
                     "resolved_at": iso(i.resolved)})
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return [path]
