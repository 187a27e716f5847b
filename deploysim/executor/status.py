"""Where a journaled rollout stands, read-only (safe while the executor runs), and that as text:
what `deploysim status` prints."""

from __future__ import annotations

import time
from pathlib import Path

from ..durations import format_duration_s
from ..policy.plan import PipelinePlan
from .interfaces import Adapter
from .journal import TERMINAL_EVENTS, DecisionRow, Journal
from .labels import stage_label, step_label
from .lock import holder_pid
from .rollout import Rollout, load_plan


def journaled_plan(meta: dict) -> PipelinePlan | None:
    """The plan of the journaled rollout, from the scenario text the journal keeps (None if it no
    longer loads, e.g. after an upgrade changed the schema: status then numbers without names)."""
    try:
        return load_plan(meta["scenario_text"], meta["scenario_path"], meta["version"], meta["pipeline"]).plan
    except (KeyError, TypeError, ValueError):
        return None


def step_progress(plan: PipelinePlan, decisions: list[DecisionRow]) -> list[dict]:
    """Every step of the plan with its label and how far the journaled decisions took it: 'done',
    'deploying batch B/N', 'baking' or 'not reached' (and where a rollback or failure ended it)."""
    frontier: tuple[float, float] = (-1, -1)  # the furthest place decided: steps before it are done
    batches: dict[tuple[int, int], int] = {}
    baking: set[tuple[int, int]] = set()
    complete = False
    ended = ""
    for row in decisions:
        if row.kind == "Complete":
            complete = True
        elif row.kind in ("RollBack", "Fail"):
            ended = "rolled back from here" if row.kind == "RollBack" else "failed here"
        if row.stage is None:
            continue
        if row.kind == "EnterStage":
            frontier = max(frontier, (row.stage, -1))
        elif row.kind == "WaitBlocker" and row.detail.get("watch_step") is not None:
            frontier = max(frontier, (row.stage, row.detail["watch_step"] + 0.5))  # that step is baked, watched
        elif row.kind in ("DeployBatch", "BakeWait") and row.step is not None:
            place = (row.stage, row.step)
            frontier = max(frontier, place)
            if row.kind == "DeployBatch":
                batches[place] = max(batches.get(place, 0), (row.batch or 0) + 1)
            else:
                baking.add(place)
    out = []
    for s, stage in enumerate(plan.stages):
        for k, step in enumerate(stage.steps):
            if complete or (s, k) < frontier:
                state = "done"
            elif (s, k) == frontier:
                state = "baking" if (s, k) in baking else \
                    f"deploying batch {batches.get((s, k), 1)}/{len(step.batches) or 1}"
            else:
                state = "not reached"
            if ended and state != "not reached" and (s, k) >= frontier:
                state += f", {ended}"
            out.append({"stage": s, "step": k, "label": step_label(plan, s, k), "state": state})
    return out


def rollout_status(state_dir: Path, journal: Journal | None = None) -> dict:
    """Where every target stands and what the executor last did, read-only (works while it runs)."""
    own = journal is None
    journal = journal or Journal.open_existing(state_dir, readonly=True)
    try:
        meta = journal.meta()
        plan = journaled_plan(meta)
        previous = journal.previous_versions()
        current = journal.current_versions()
        intended: dict[str, str] = {}
        for action in journal.actions():
            if action.phase == "intent" and action.kind != "preprod":
                intended[action.target] = action.version
        pending = {a.target for a in journal.pending_intents()}
        last = journal.last_decision()
        terminal = journal.last_terminal_event()
        events = journal.events()
        pid = holder_pid(state_dir)
        controls = journal.controls()
        if pid is not None:
            state = "running"
        elif not events:
            state = "not started"
        elif events[-1][2] in TERMINAL_EVENTS:
            state = events[-1][2]
        else:  # the last process ended without saying how
            state = "interrupted (crashed or killed); continue with --resume"
        return {
            "state_dir": str(state_dir), "version": meta.get("version"), "pipeline": meta.get("pipeline"),
            "scenario": meta.get("scenario_path"), "scenario_sha256": meta.get("scenario_sha256"),
            "state": state, "executor_pid": pid if pid and pid > 0 else None,
            "last_message": terminal[1] if terminal else "",
            "last_decision": None if last is None else {
                "kind": last.kind, "stage": last.stage, "step": last.step, "batch": last.batch,
                "label": None if last.stage is None else step_label(plan, last.stage, last.step, last.batch),
                "time_s": last.time_s, "phase": last.controller.get("phase")},
            "steps": [] if plan is None else step_progress(plan, journal.decisions()),
            "targets": [{"name": name, "before": before, "intended": intended.get(name),
                         "current": None if name in pending else current.get(name), "in_progress": name in pending}
                        for name, before in previous.items()],
            "operator": _operator_state(controls, last, plan),
            "controls": [{"seq": c.seq, "time_s": c.time_s, "kind": c.kind, "operator": c.operator,
                          "reason": c.reason, "effect": c.effect, "detail": c.detail} for c in controls],
            "last_actions": [{"seq": a.seq, "time_s": a.time_s, "kind": a.kind, "target": a.target,
                              "version": a.version, "phase": a.phase, "current": a.current}
                             for a in journal.actions(limit=10)],
        }
    finally:
        if own:
            journal.close()


def _operator_state(controls, last: DecisionRow | None, plan: PipelinePlan | None) -> dict:
    """What operators' controls have in force: paused (by whom), the stage awaiting approval, and
    requests no executor has taken yet."""
    paused_by = None
    for c in controls:
        if c.effect == "paused":
            paused_by = f"{c.operator}" + (f" ({c.reason})" if c.reason else "")
        elif c.effect == "unpaused":
            paused_by = None
    awaiting = None
    if last is not None and last.kind == "WaitApproval" and last.stage is not None:
        approved = any(c.effect == "approved" and c.stage == last.stage for c in controls)
        if not approved:
            awaiting = stage_label(plan, last.stage) if plan is not None else f"stage {last.stage + 1}"
    return {"paused_by": paused_by, "awaiting_approval": awaiting,
            "pending": [f"#{c.seq} {c.kind} by {c.operator}" for c in controls if c.effect is None]}


def verify_status(info: dict, rollout: Rollout, adapter: Adapter) -> None:
    """Ask every target which version it runs now (`status --verify`); adds `reports_now` per target
    and `verified`: whether the targets show what the state says (complete: all on the version;
    rolled back: all on their previous version), None for states that promise neither."""
    timeout_s = float(rollout.inventory.adapter.timeout)
    by_name = {t.name: t for t in rollout.targets}
    for row in info["targets"]:
        try:
            row["reports_now"] = adapter.current_version(by_name[row["name"]], timeout_s=timeout_s)
        except Exception:  # an adapter that fails cannot tell
            row["reports_now"] = None
    expected = {"complete": lambda row: rollout.version, "rolled_back": lambda row: row["before"]}.get(info["state"])
    info["verified"] = None if expected is None else all(row["reports_now"] == expected(row) for row in info["targets"])


def format_status(info: dict, now_s: float | None = None) -> str:
    """`rollout_status(...)` as text for people: state, last decision, every target, the last actions."""
    now_s = time.time() if now_s is None else now_s
    out = [f"Rollout of {info['version']} through pipeline {info['pipeline']} ({info['scenario']})",
           f"State: {info['state']}" + (f" (pid {info['executor_pid']})" if info["executor_pid"] else "")]
    if info["last_message"]:
        out.append(f"  {info['last_message']}")
    if info.get("verified") is not None:
        out.append("  Verified: every target reports what this state says" if info["verified"] else
                   "  NOT VERIFIED: some targets do not report what this state says (see 'reports now')")
    operator = info.get("operator") or {}
    if operator.get("paused_by"):
        out.append(f"  PAUSED by {operator['paused_by']}: no new deploy starts until deploysim resume")
    if operator.get("awaiting_approval"):
        out.append(f"  AWAITING APPROVAL of {operator['awaiting_approval']}: deploysim approve {info['state_dir']}")
    if operator.get("pending"):
        out.append(f"  Controls not taken yet: {', '.join(operator['pending'])}")
    last = info["last_decision"]
    if last:
        ago = format_duration_s(max(0.0, now_s - last["time_s"]))
        where = last.get("label")
        out.append(
            f"Last decision: {last['kind']}{' ' + where if where else ''} ({ago} ago; controller phase {last['phase']})"
        )
    if info.get("steps"):
        width = max(len(row["label"]) for row in info["steps"])
        out += ["", "Steps"] + [f"  {row['label'].ljust(width)}  {row['state']}" for row in info["steps"]]
    verified = any("reports_now" in t for t in info["targets"])
    rows = [("target", "before", "intended", "current") + (("reports now",) if verified else ())] + [
        (t["name"], t["before"], t["intended"] or "-",
         (t["current"] or "unknown") + (" (action in progress)" if t["in_progress"] else ""))
        + ((t.get("reports_now") or "cannot tell",) if verified else ())
        for t in info["targets"]]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out += ["", "Targets"] + [
        "  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    out += ["", "Last actions"] + [
        f"  #{a['seq']} {time.strftime('%H:%M:%S', time.localtime(a['time_s']))} {a['kind']} {a['target']} "
        f"-> {a['version']}: {a['phase']}" + (f" (reports {a['current']})" if a["phase"] != "intent" else "")
        for a in info["last_actions"]]
    return "\n".join(out)
