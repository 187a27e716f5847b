"""The fitted scenario as a person would write it: the base file (its fleet, traffic, policy and
comments kept) with each world parameter the history could speak to replaced, and a comment on each
saying `fitted` (with its 95% interval and how many observations) or `prior` (kept, and why)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .base import Base
from .fitting import Estimate, Fit, window_text


def duration_text(seconds: float) -> str:
    """Seconds as a scenario duration a person reads: 7987 -> '2h13m7s', 0.25 -> '0.25s'."""
    if seconds < 1:
        return f"{seconds:.3g}s"
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{v}{u}" for v, u in parts if v) or "0s"


def _short(value: float, unit: str) -> str:
    if unit == "s":
        return duration_text(value) if math.isfinite(value) else "n/a"
    return f"{value:.3g}"


def _comment(e: Estimate) -> str:
    if e.status == "prior":
        return f"prior: {e.note}"
    interval = f"95% [{_short(e.low, e.unit)}, {_short(e.high, e.unit)}]"
    if isinstance(e.scenario_value, dict):  # a distribution: the interval is its median's
        return f"fitted: median {_short(e.value, e.unit)}, {interval}, n={e.n}"
    return f"fitted: {interval}, n={e.n}"


def _flow(mapping: dict[str, Any]) -> CommentedMap:
    out = CommentedMap(mapping)
    out.fa.set_flow_style()
    return out


def _distribution(value: dict[str, Any]) -> CommentedMap:
    out: dict[str, Any] = {"dist": value["dist"]}
    for key in ("value", "mean", "median"):
        if key in value:
            out[key] = duration_text(float(value[key]))
    if value["dist"] == "lognormal":
        out["sigma"] = round(float(value["sigma"]), 3)
    return _flow(out)


def _node(root: CommentedMap, parts: list[str]) -> CommentedMap:
    """The mapping at `parts` (made if missing), in block style down from the root so a comment can follow a key."""
    node = root
    for part in parts:
        if part not in node or not isinstance(node[part], dict):
            node[part] = CommentedMap()
        node = node[part]
        node.fa.set_block_style()
    return node


def _set(root: CommentedMap, path: str, value: Any, comment: str) -> None:
    *parents, last = path.split(".")
    node = _node(root, parents)
    node[last] = value
    node.yaml_add_eol_comment(comment, last)


def fitted_yaml(fit: Fit, base: str | Path | Base, name: str | None = None) -> str:
    """The text of the fitted scenario, from the base (a scenario file's path, or a `Base`)."""
    yaml = YAML(typ="rt")
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    if isinstance(base, Base):
        root, base_name = yaml.load(base.text), base.name
    else:
        root, base_name = yaml.load(Path(base).read_text(encoding="utf-8")), Path(base).name
    root["name"] = name or f"{root.get('name', 'service')}-fitted"
    root["description"] = (f"{base_name}'s fleet, traffic and policy, with the world fitted from "
                           f"{', '.join(Path(s).name for s in fit.history.sources)}")
    root.ca.comment = None  # the base's opening comment gives way to this one
    root.yaml_set_start_comment(
        f"Fitted by `deploysim fit` from {', '.join(Path(s).name for s in fit.history.sources)}\n"
        f"over {window_text(fit.history)}.\n"
        f"`fitted`: estimated from the history (95% interval, n observations); `prior`: the history was\n"
        f"too thin for it, so {base_name}'s value is kept (docs/fit.md). `uncertainty` at the end lets\n"
        f"monte_carlo(..., parameter_uncertainty=True) draw each replication's world from the fit.")
    changes = _node(root, ["changes"])
    for pipeline in fit.arrivals:
        if pipeline not in changes:
            changes[pipeline] = CommentedMap(
                arrivals=_flow({"changes_per_week": 1.0}), bad_probability=0.05, preprod_catch_probability=0.5,
                defects=CommentedSeq([_flow({"name": "fault-spike", "error_rate": 0.3})]))
            changes.yaml_add_eol_comment("not in the base scenario: defects are a prior (docs/fit.md)", pipeline)
    for pipeline in changes:
        if pipeline not in fit.arrivals:
            changes.yaml_add_eol_comment(f"not in the history: kept from {base_name}", pipeline)
        elif isinstance(changes[pipeline], dict) and "defects" in changes[pipeline]:
            changes[pipeline].fa.set_block_style()
            changes[pipeline].yaml_add_eol_comment(
                f"kept from {base_name}: a history says a change was bad, not what it did", "defects")
    for e in fit.estimates:
        if not e.parameter or e.status == "reported":
            continue
        if e.parameter.endswith(".working_hours_only"):
            if e.status == "fitted":
                arrivals = _node(root, e.parameter.split(".")[:-1])
                for key, value in e.scenario_value.items():
                    arrivals[key] = CommentedSeq(value) if isinstance(value, list) else value
                    if isinstance(value, list):
                        arrivals[key].fa.set_flow_style()
                arrivals.yaml_add_eol_comment(f"fitted: {e.note}", "working_hours_only")
            continue
        if e.status == "prior":
            if _exists(root, e.parameter):
                *parents, last = e.parameter.split(".")
                _node(root, parents).yaml_add_eol_comment(_comment(e), last)
            continue
        value = _distribution(e.scenario_value) if isinstance(e.scenario_value, dict) else e.scenario_value
        if e.unit == "s" and not isinstance(value, CommentedMap):
            value = duration_text(float(value))
        _set(root, e.parameter, value, _comment(e))
        if e.parameter == "humans.detection_delay":
            _set(root, "humans.detection", "fixed_delay", "the history shows how long people took, not why")
            # The base's comment on how people detect no longer holds: say what does.
            root["humans"].ca.comment = None
            root.yaml_add_eol_comment("people: fitted from the history (docs/fit.md)", "humans")
    posteriors = [dict(parameter=e.parameter, **e.posterior) for e in fit.estimates
                  if e.posterior is not None and e.status == "fitted"]
    if posteriors:
        seq = CommentedSeq()
        for p in posteriors:
            item = CommentedMap()
            for key, value in p.items():
                item[key] = _flow(value) if isinstance(value, dict) else (
                    _flow_seq(value) if isinstance(value, list) else value)
            item.fa.set_flow_style()
            seq.append(item)
        root["uncertainty"] = seq
        root.yaml_set_comment_before_after_key(
            "uncertainty", before="\nWhere each fitted parameter lies (posteriors, docs/fit.md)")
    out = io.StringIO()
    yaml.dump(root, out)
    return out.getvalue()


def _flow_seq(values: list[Any]) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _exists(root: CommentedMap, path: str) -> bool:
    node: Any = root
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
