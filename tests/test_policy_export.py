"""`deploysim export --format argo`: a pipeline as an Argo Rollouts canary strategy and AnalysisTemplates
whose fields are those Argo's CRDs define, which import back to the same pipeline, and whose header
lists what Argo cannot express."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO

import deploysim
from deploysim.cli import main
from deploysim.interop import export_argo, import_policy
from deploysim.interop.argo import ANNOTATION

DATA = Path(__file__).parent / "data" / "interop"
CRD = yaml.safe_load((DATA / "argo-crd-fields.yaml").read_text())
SCENARIOS = sorted(p for p in (REPO / "scenarios").glob("*.yaml") if "name:" in p.read_text())


def crd_problems(value, schema: dict, path: str = "") -> list[str]:
    """Where `value` has a field the CRD subset does not define, or a value of another type."""
    kind = schema.get("type")
    if kind == "int-or-string":
        return [] if isinstance(value, (int, str)) and not isinstance(value, bool) else [f"{path}: not int-or-string"]
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool) and -2**31 <= value < 2**31
        return [] if ok else [f"{path}: not an int32"]
    if kind == "string":
        return [] if isinstance(value, str) else [f"{path}: not a string"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: not a boolean"]
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        return [p for i, item in enumerate(value) for p in crd_problems(item, schema["items"], f"{path}[{i}]")]
    if not isinstance(value, dict):
        return [f"{path}: not an object"]
    problems = [f"{path}.{key}: required" for key in schema.get("required", []) if key not in value]
    for key, item in value.items():
        if "additionalProperties" in schema:
            problems += crd_problems(item, schema["additionalProperties"], f"{path}.{key}")
        elif key not in schema.get("properties", {}):
            problems.append(f"{path}.{key}: not a field of the CRD")
        else:
            problems += crd_problems(item, schema["properties"][key], f"{path}.{key}")
    return problems


def test_the_crd_checker_catches_wrong_names_and_types():
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "x"},
               "spec": {"strategy": {"canary": {"steps": [{"setWeight": "20"}, {"pauze": {}}]}}}}
    assert crd_problems(rollout, CRD["rollout"]) == [".spec.strategy.canary.steps[0].setWeight: not an int32",
                                                     ".spec.strategy.canary.steps[1].pauze: not a field of the CRD"]


def _pipelines():
    for path in SCENARIOS:
        scenario = deploysim.load_scenario(path)
        for name in scenario.policy.pipelines:
            yield pytest.param(path, name, id=f"{path.stem}-{name}")


def _fits_one_cluster(scenario, name: str) -> bool:
    production = [s for s in scenario.policy.pipelines[name].stages if s.kind == "production"]
    return len(production) == 1 and len(production[0].regions) == 1


@pytest.mark.parametrize(("path", "name"), list(_pipelines()))
def test_every_shipped_pipeline_exports_with_only_the_crds_fields_and_types(path, name):
    scenario = deploysim.load_scenario(path)
    text, _ = export_argo(scenario, name)
    documents = list(yaml.safe_load_all(text))
    assert documents[0]["kind"] == "Rollout"
    assert crd_problems(documents[0], CRD["rollout"]) == []
    for template in documents[1:]:
        assert template["kind"] == "AnalysisTemplate"
        assert crd_problems(template, CRD["analysisTemplate"]) == []
    named = {t["metadata"]["name"] for t in documents[1:]}
    canary = documents[0]["spec"]["strategy"]["canary"]
    referenced = {t["templateName"] for s in canary["steps"] if "analysis" in s for t in s["analysis"]["templates"]}
    referenced |= {t["templateName"] for t in canary.get("analysis", {}).get("templates", [])}
    assert referenced == named  # every template the Rollout names is written, and no other


@pytest.mark.parametrize(("path", "name"), list(_pipelines()))
def test_import_of_export_gives_back_every_shipped_pipeline_that_fits_one_cluster(tmp_path, path, name):
    scenario = deploysim.load_scenario(path)
    if not _fits_one_cluster(scenario, name):
        pytest.skip("its production stages span regions: one Rollout is one cluster")
    exported = tmp_path / "rollout.yaml"
    exported.write_text(export_argo(scenario, name)[0])
    again = deploysim.scenario_from_dict(yaml.safe_load(import_policy([str(exported)], into=str(path),
                                                                      pipeline=name)))
    assert again.policy == scenario.policy
    assert again.alarms == scenario.alarms


def test_some_shipped_pipelines_fit_one_cluster_so_the_round_trip_is_not_vacuous():
    fits = [(p.stem, n) for p in SCENARIOS for n in deploysim.load_scenario(p).policy.pipelines
            if _fits_one_cluster(deploysim.load_scenario(p), n)]
    assert len(fits) >= 6


def test_what_argo_cannot_express_is_listed_at_the_top():
    scenario = deploysim.load_scenario(REPO / "scenarios" / "aws-typical.yaml")
    text, lost = export_argo(scenario, "code")
    header = text[:text.index("apiVersion:")]
    assert lost and all(f"#   - {item}" in header for item in lost)
    assert "blockers.time_windows" in header
    assert "production stage" in header and "one Rollout per cluster" in header
    assert "pre-production stage" in header


def test_the_steps_alone_import_as_traffic_weights_with_the_same_bakes_and_alarms(tmp_path):
    """Without deploysim's annotation, what Argo's own fields say: startup-fast's code pipeline is a
    one-box of 1 host in 24 (4%) baking 30 min, then the rest; its alarms come back from their queries."""
    scenario = deploysim.load_scenario(REPO / "scenarios" / "startup-fast.yaml")
    text, _ = export_argo(scenario, "code")
    documents = list(yaml.safe_load_all(text))
    del documents[0]["metadata"]["annotations"][ANNOTATION]
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    data = yaml.safe_load(import_policy([str(path)], regions=["us-east-1"]))
    stage = data["policy"]["pipelines"]["code"]["stages"][-1]
    assert [(w["weight"], w["bake"]) for w in stage["waves"]] == [(4, "30m"), (100, "0s")]
    alarms = {a["name"]: a for a in data["alarms"]["metric"]}
    for original in scenario.alarms.metric:
        if original.metric in ("disk_pct", "dependency_error_rate"):
            continue  # no default query to read the metric back from
        got = alarms[original.name]
        assert (got["metric"], got.get("api"), got["threshold"], got["datapoints_to_alarm"]) == (
            original.metric, original.api, original.threshold, original.datapoints_to_alarm)


def test_steps_changed_after_the_export_win_over_the_annotation(tmp_path):
    scenario = deploysim.load_scenario(REPO / "scenarios" / "startup-fast.yaml")
    documents = list(yaml.safe_load_all(export_argo(scenario, "flag")[0]))
    documents[0]["spec"]["strategy"]["canary"]["steps"][1] = {"pause": {"duration": "20m"}}
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    text = import_policy([str(path)], regions=["us-east-1"])
    assert f"annotation{'s.' + ANNOTATION} ignored: the steps were changed" in text
    stage = yaml.safe_load(text)["policy"]["pipelines"]["flag"]["stages"][-1]
    assert stage["waves"][0]["bake"] == "20m"


def test_an_imported_argo_policy_exports_its_weights_and_judge_and_comes_back(tmp_path):
    """Import (a Prometheus Rollout) then export then import: the traffic waves and the Argo judge
    survive; the judge's template carries count, limits and the condition on result[0]."""
    first = import_policy([str(DATA / "rollout-prometheus.yaml")], into=str(REPO / "scenarios" / "startup-fast.yaml"),
                          pipeline="code", metric_map={"success-rate": __import__(
                              "deploysim.interop.argo", fromlist=["MetricMapping"]).MetricMapping(
                              "error_rate", complement=True)})
    base = tmp_path / "base.yaml"
    base.write_text(first)
    scenario = deploysim.load_scenario(base)
    text, _ = export_argo(scenario, "code")
    documents = list(yaml.safe_load_all(text))
    steps = documents[0]["spec"]["strategy"]["canary"]["steps"]
    assert steps[:3] == [{"setWeight": 10}, {"pause": {"duration": "5m"}},
                         {"analysis": {"templates": [{"templateName": "code-wave-1"}]}}]
    judge = next(d for d in documents if d["metadata"]["name"] == "code-wave-1")["spec"]["metrics"][0]
    assert (judge["successCondition"], judge["count"], judge["failureLimit"], judge["interval"]) == (
        "result[0] <= 0.01", 5, 1, "1m")
    exported = tmp_path / "rollout.yaml"
    exported.write_text(text)
    again = deploysim.scenario_from_dict(yaml.safe_load(import_policy([str(exported)], into=str(base),
                                                                      pipeline="code")))
    assert again.policy == scenario.policy and again.alarms == scenario.alarms


def test_the_command_writes_one_file_per_pipeline(tmp_path):
    result = CliRunner().invoke(main, ["export", str(REPO / "scenarios" / "startup-fast.yaml"), "--format", "argo",
                                       "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code.yaml", "config.yaml", "flag.yaml"]
    result = CliRunner().invoke(main, ["export", str(REPO / "scenarios" / "startup-fast.yaml"), "--pipeline", "nope"])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "code, config, flag" in result.output
