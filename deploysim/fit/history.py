"""A service's deployment and incident history, as deploysim reads it from any supported format.

Every reader (`deploysim.fit.formats`) turns its file into these records; fitting only ever sees
them. Times are timezone-aware UTC datetimes (a time written without an offset is read as UTC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

OUTCOMES = ("completed", "rolled_back", "failed_preprod", "in_progress")
"""What became of a change: running everywhere; rolled back (by an alarm or by people); stopped in
pre-production; still going when the history was taken (left out of every rate)."""
CAUSES = ("change", "infrastructure", "dependency", "unknown")
"""What caused an incident (`unknown`: the export does not say; such incidents are counted, not fitted)."""
DEPLOYMENT_CAUSES = ("defect", "false_alarm", "with_other_change", "")
"""Why a change was rolled back or stopped, when known: its own defect; an alarm with no defect
behind it; it shipped in one version with another change's defect. Empty: not said (read as `defect`)."""


class HistoryError(ValueError):
    """A record that does not fit its format: the message names the file, the line (when known) and the field."""

    def __init__(self, source: str, line: int | None, field_name: str, message: str):
        self.source, self.line, self.field, self.detail = source, line, field_name, message
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {field_name + ': ' if field_name else ''}{message}")


@dataclass(frozen=True)
class Deployment:
    """One change's trip through its pipeline."""

    pipeline: str
    change_id: str
    entered: dt.datetime
    finished: dt.datetime | None
    outcome: str  # one of OUTCOMES
    cause: str = ""  # one of DEPLOYMENT_CAUSES
    rollback_started: dt.datetime | None = None  # when its rollback began (when the export says)
    rolled_back_by: str = ""  # "alarm", "people" or "" (not said)


@dataclass(frozen=True)
class Incident:
    """One incident: when its impact began, was detected, mitigated and resolved (any may be unknown)."""

    incident_id: str
    start: dt.datetime | None
    detected: dt.datetime | None
    mitigated: dt.datetime | None
    resolved: dt.datetime | None
    cause: str  # one of CAUSES
    change_id: str = ""
    severity: str = ""
    detected_by: str = ""  # "alarm", "people" or "" (not said)
    scope: str = ""  # infrastructure: "az" or "region"
    service: str = ""


@dataclass(frozen=True)
class History:
    """Deployments and incidents over a window of time (`since` to `until`, UTC)."""

    deployments: tuple[Deployment, ...] = ()
    incidents: tuple[Incident, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    sources: tuple[str, ...] = field(default=())

    def merged(self, other: History) -> History:
        return History(self.deployments + other.deployments, self.incidents + other.incidents,
                       _earliest(self.since, other.since), _latest(self.until, other.until),
                       self.sources + other.sources)

    def with_window(self, since: dt.datetime | None, until: dt.datetime | None) -> History:
        """The same records over the given window; a bound not given is taken from the records
        (the earliest time rounded down to midnight UTC, the latest rounded up)."""
        times = [t for d in self.deployments for t in (d.entered, d.finished) if t is not None]
        times += [t for i in self.incidents for t in (i.start, i.detected, i.resolved) if t is not None]
        if since is None:
            since = self.since or (_midnight(min(times)) if times else None)
        if until is None:
            until = self.until or (_midnight(max(times)) + dt.timedelta(days=1) if times else None)
        if since is not None and until is not None and until <= since:
            raise ValueError(f"the history's window ends ({until.isoformat()}) before it starts ({since.isoformat()})")
        return History(self.deployments, self.incidents, since, until, self.sources)

    @property
    def pipelines(self) -> list[str]:
        return sorted({d.pipeline for d in self.deployments})

    @property
    def window_s(self) -> float:
        if self.since is None or self.until is None:
            raise ValueError("the history has no window (give --since and --until)")
        return (self.until - self.since).total_seconds()


def _midnight(t: dt.datetime) -> dt.datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return min(x for x in (a, b) if x is not None) if (a or b) else None


def _latest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return max(x for x in (a, b) if x is not None) if (a or b) else None


def parse_time(value: object, source: str, line: int | None, field_name: str,
               required: bool = True) -> dt.datetime | None:
    """An ISO 8601 time (`2026-01-05T09:30:00Z`, an offset, or none for UTC) or epoch seconds, as UTC."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise HistoryError(source, line, field_name, "missing (expected a time such as 2026-01-05T09:30:00Z)")
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            t = dt.datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
        except ValueError:
            pass
        else:
            return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)
    raise HistoryError(source, line, field_name, f"expected a time such as 2026-01-05T09:30:00Z, got {value!r}")


def iso(t: dt.datetime | None) -> str:
    """A UTC time as written in every export: 2026-01-05T09:30:00Z (milliseconds when it has them)."""
    if t is None:
        return ""
    t = t.astimezone(dt.timezone.utc)
    text = t.isoformat(timespec="milliseconds" if t.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def choose(value: object, allowed: Sequence[str], aliases: dict[str, str], source: str, line: int | None,
           field_name: str) -> str:
    """`value` as one of `allowed` (case, spaces and dashes ignored; `aliases` map other spellings)."""
    key = str(value if value is not None else "").strip().lower().replace("-", "_").replace(" ", "_")
    key = aliases.get(key, key)
    if key in allowed:
        return key
    shown = ", ".join(a for a in allowed if a) or "(none)"
    raise HistoryError(source, line, field_name, f"expected one of {shown}, got {value!r}")


def check_order(source: str, line: int | None, pairs: Sequence[tuple[str, dt.datetime | None]]) -> None:
    """Times that must not go backwards (e.g. start <= detected <= mitigated <= resolved)."""
    known = [(name, t) for name, t in pairs if t is not None]
    for (a, ta), (b, tb) in zip(known, known[1:], strict=False):
        if tb < ta:
            raise HistoryError(source, line, b, f"{iso(tb)} is before {a} ({iso(ta)})")
