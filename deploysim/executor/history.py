"""Everything a journaled rollout did, in time order, read-only (safe while the executor runs): what
`deploysim history` prints. Decisions, actions (each intent and each outcome), events and operators'
controls (each request, with what the executor did with it) are merged into one list of records by
the time the journal stamped them."""

from __future__ import annotations

import time

from .journal import Journal
from .labels import stage_label, step_label
from .status import journaled_plan

_SOURCE_ORDER = {"control": 0, "event": 1, "decision": 2, "action": 3}
"""At one instant: an event (started, resumed) before the decision it led to, before that decision's actions."""


def _place(plan, stage: int | None, step: int | None, batch: int | None) -> str:
    if stage is None:
        return ""
    return step_label(plan, stage, step, batch) if step is not None else stage_label(plan, stage)


def _decision_summary(kind: str, detail: dict) -> str:
    """The fields of a decision people look for, in a few words."""
    if kind == "DeployBatch":
        return f"deploy {', '.join(detail.get('hosts') or [])}"
    if kind == "BakeWait":
        return f"bake until {_clock(detail.get('min_until_s'))} (data until {_clock(detail.get('deadline_s'))})"
    if kind == "WaitBlocker":
        return f"blocked ({detail.get('reason')}) until {_clock(detail.get('until_s'))}"
    if kind == "RollBack":
        cause = str(detail.get("cause"))
        why = f" {detail['alarm']}" if detail.get("alarm") else ""
        who = f": {detail['detail']}" if detail.get("detail") else ""
        mode = "automatic" if detail.get("automatic") else "manual"
        return f"roll back ({cause}{why}{who}; scope {detail.get('scope')}, {mode})"
    if kind == "Fail":
        return f"failed ({detail.get('reason')})"
    if kind == "DeployBaseline":
        return f"deploy the old version to {detail.get('size')} baseline target(s) for the canary judge"
    if kind == "RemoveBaseline":
        return "revert the canary judge's baseline targets"
    if kind == "WaitApproval":
        return f"await approval until {_clock(detail.get('until_s'))}"
    return ""


def _clock(time_s) -> str:
    if not isinstance(time_s, (int, float)):
        return "?"
    return time.strftime("%H:%M:%S", time.localtime(float(time_s)))


def history_records(journal: Journal) -> list[dict]:
    """Every decision, action, event and operator's control of the journal as records ordered by
    time: `time_s`, `source` (decision | action | event | control), `kind`, `label` (the place in
    the rollout, decisions only), `target`, `version`, `phase` (actions: intent | done | failed),
    `summary` (a few words) and `detail` (the decision's fields as a dict; the action's or event's text)."""
    plan = journaled_plan(journal.meta())
    records: list[dict] = []
    for row in journal.decisions():
        records.append({
            "time_s": row.time_s, "source": "decision", "seq": row.seq, "kind": row.kind,
            "label": _place(plan, row.stage, row.step, row.batch), "target": None, "version": None, "phase": None,
            "summary": _decision_summary(row.kind, row.detail), "detail": row.detail})
    for action in journal.actions():
        if action.phase == "intent":
            summary = f"{action.kind} {action.target} -> {action.version}"
        else:
            reports = action.current if action.current is not None else "cannot tell"
            tries = f", {action.attempts} attempt(s)" if action.attempts else ""
            summary = f"{action.kind} {action.target} -> {action.version}: {action.phase} (reports {reports}{tries})"
        records.append({
            "time_s": action.time_s, "source": "action", "seq": action.seq, "kind": action.kind, "label": "",
            "target": action.target, "version": action.version, "phase": action.phase,
            "current": action.current, "intent": action.intent, "summary": summary, "detail": action.detail})
    for seq, time_s, kind, detail in journal.events():
        records.append({
            "time_s": time_s, "source": "event", "seq": seq, "kind": kind, "label": "", "target": None,
            "version": None, "phase": None, "summary": detail, "detail": detail})
    for c in journal.controls():
        taken = f"; {c.effect}" if c.effect else "; not taken yet"
        records.append({
            "time_s": c.time_s, "source": "control", "seq": c.seq, "kind": c.kind, "label": "", "target": None,
            "version": None, "phase": None, "operator": c.operator, "reason": c.reason, "effect": c.effect,
            "summary": f"{c.kind} asked by {c.who}{taken}", "detail": c.detail})
    records.sort(key=lambda r: (r["time_s"], _SOURCE_ORDER[r["source"]], r["seq"]))
    return records


def format_history(records: list[dict]) -> str:
    """`history_records(...)` as a table for people: time, what, where, and a few words."""
    rows = [("time", "record", "where", "details")]
    for r in records:
        what = f"{r['source']} {r['kind']}" + (f" {r['phase']}" if r["phase"] else "")
        millis = int(r["time_s"] * 1000) % 1000
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["time_s"])) + f".{millis:03d}"
        rows.append((stamp, what, r["label"] or "", " ".join(str(r["summary"] or "").split())))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3]).rstrip()
                     for row in rows)
