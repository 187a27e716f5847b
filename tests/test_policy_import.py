"""`deploysim import`: CodeDeploy, AppConfig, Flagger and Argo Rollouts policies as a scenario's
`policy:`, each field mapped as docs/import-export.md says, anything else refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO

import deploysim
from deploysim.cli import main
from deploysim.fleet import build_fleet
from deploysim.interop import import_policy, parse_metric_option
from deploysim.interop.aws import APPCONFIG, CODEDEPLOY_SERVER, CODEDEPLOY_TRAFFIC, appconfig_weights
from deploysim.policy.plan import build_plan
from deploysim.scenario.loader import ScenarioError

DATA = Path(__file__).parent / "data" / "interop"
ARGO = DATA / "argo-examples"
BASE = str(REPO / "scenarios" / "startup-fast.yaml")  # one region, 3 AZs of 2 cells of 4 hosts


def stage_of(text: str, pipeline: str | None = None) -> dict:
    """The imported production stage of `pipeline` (default: the only pipeline)."""
    data = yaml.safe_load(text)
    pipes = data["policy"]["pipelines"]
    (pipe,) = pipes.values() if pipeline is None else [pipes[pipeline]]
    return [s for s in pipe["stages"] if s["kind"] == "production"][0]


def waves(text: str) -> list[tuple]:
    return [(w.get("unit"), w.get("weight", w.get("count")), w["bake"]) for w in stage_of(text)["waves"]]


def imported(*sources, **options) -> str:
    options.setdefault("regions", ["us-east-1"])
    return import_policy([str(s) for s in sources], **options)


# ----------------------------------------------------------------------------- AWS CodeDeploy


@pytest.mark.parametrize(("name", "max_share"), [("CodeDeployDefault.AllAtOnce", 1.0),
                                                 ("CodeDeployDefault.HalfAtATime", 0.5)])
def test_codedeploy_predefined_server_configurations_keep_their_minimum_healthy_hosts(name, max_share):
    stage = stage_of(imported(name))
    assert stage["batching"] == {"max_share": max_share}
    assert stage["waves"] == [{"unit": "region", "count": "rest", "bake": "0s"}]


def test_one_at_a_time_needs_the_fleet_and_then_replaces_one_host_per_batch():
    with pytest.raises(ScenarioError, match="depends on how many hosts.*--into"):
        imported("CodeDeployDefault.OneAtATime")
    text = import_policy(["CodeDeployDefault.OneAtATime"], into=BASE, pipeline="code")
    scenario = deploysim.scenario_from_dict(yaml.safe_load(text))
    plan = build_plan("code", scenario.policy.pipelines["code"], build_fleet(scenario))
    production = [s for s in plan.stages if s.steps[0].hosts.size][0]
    assert {b.size for b in production.steps[0].batches} == {1} and production.steps[0].hosts.size == 24


@pytest.mark.parametrize("name", sorted(CODEDEPLOY_TRAFFIC))
def test_every_predefined_ecs_and_lambda_configuration_shifts_traffic_as_its_name_says(name):
    kind, pct, minutes = CODEDEPLOY_TRAFFIC[name]
    got = waves(imported(name))
    bake = f"{minutes}m"
    if kind == "AllAtOnce":
        assert got == [("traffic", 100, "0s")]
    elif kind == "TimeBasedCanary":
        assert got == [("traffic", pct, bake), ("traffic", 100, "0s")]
    else:
        assert got == [("traffic", pct * k, bake) for k in range(1, 10)] + [("traffic", 100, "0s")]
    assert stage_of(imported(name))["batching"]["hosts_keep_serving"] is True


def test_the_predefined_tables_hold_the_documented_numbers():
    assert CODEDEPLOY_SERVER["CodeDeployDefault.HalfAtATime"] == ("FLEET_PERCENT", 50)
    assert CODEDEPLOY_TRAFFIC["CodeDeployDefault.LambdaCanary10Percent30Minutes"] == ("TimeBasedCanary", 10, 30)
    assert CODEDEPLOY_TRAFFIC["CodeDeployDefault.ECSLinear10PercentEvery3Minutes"] == ("TimeBasedLinear", 10, 3)
    assert APPCONFIG["AppConfig.Linear20PercentEvery6Minutes"] == (30, "LINEAR", 20, 30)
    assert APPCONFIG["AppConfig.Canary10Percent20Minutes"] == (20, "EXPONENTIAL", 10, 10)


def test_a_custom_fleet_percent_is_the_share_replaced_at_once():
    stage = stage_of(imported(DATA / "codedeploy-server.json"))
    assert stage["batching"] == {"max_share": 0.25}  # 75% must stay healthy


def test_a_zonal_configuration_deploys_one_az_per_region_after_another_with_its_monitor_durations():
    """3 AZs: the first baked FirstZoneMonitorDurationInSeconds (1 h), the others MonitorDurationInSeconds
    (15 min); 6 of an AZ's 8 hosts stay healthy, so 2 of 8 (a quarter) are replaced at once."""
    text = import_policy([str(DATA / "codedeploy-zonal.yaml")], into=BASE, pipeline="code")
    stage = stage_of(text, "code")
    assert [(w["unit"], w["count"], w["per_region"], w["bake"]) for w in stage["waves"]] == [
        ("az", 1, True, "1h"), ("az", 1, True, "15m"), ("az", "rest", True, "15m")]
    assert stage["batching"] == {"max_share": 0.25}
    assert "# zonalConfig: AZ 1 of 3 in each region, then firstZoneMonitorDurationInSeconds 3600 s" in text


def test_a_custom_linear_traffic_configuration():
    assert waves(imported(DATA / "codedeploy-ecs-linear.json")) == [
        ("traffic", 25, "2m"), ("traffic", 50, "2m"), ("traffic", 75, "2m"), ("traffic", 100, "0s")]


def test_an_unknown_codedeploy_field_is_not_supported_naming_it_and_its_line():
    with pytest.raises(ScenarioError) as caught:
        imported(DATA / "codedeploy-unknown-field.json")
    assert "not supported: blueGreenDeploymentConfiguration" in str(caught.value)
    assert caught.value.positions[""][0] == 4


# ----------------------------------------------------------------------------- AWS AppConfig


@pytest.mark.parametrize(("name", "expected"), [
    ("AppConfig.Linear20PercentEvery6Minutes", [(20, "6m"), (40, "6m"), (60, "6m"), (80, "6m"), (100, "30m")]),
    ("AppConfig.Canary10Percent20Minutes", [(10, "4m"), (20, "4m"), (40, "4m"), (80, "4m"), (100, "10m")]),
    ("AppConfig.AllAtOnce", [(100, "10m")]),
    ("AppConfig.Linear50PercentEvery30Seconds", [(50, "30s"), (100, "1m")]),
])
def test_appconfig_predefined_strategies_grow_as_documented_then_bake_their_final_bake(name, expected):
    assert waves(imported(name)) == [("traffic", w, b) for w, b in expected]


def test_appconfig_exponential_growth_is_g_times_two_to_the_n():
    assert appconfig_weights("EXPONENTIAL", 5) == [5, 10, 20, 40, 80, 100]
    assert appconfig_weights("LINEAR", 30) == [30, 60, 90, 100]
    got = waves(imported(DATA / "appconfig-strategy.json"))
    assert got == [("traffic", w, "10m") for w in (5, 10, 20, 40, 80)] + [("traffic", 100, "30m")]


def test_an_appconfig_cloudformation_resource_imports_its_properties():
    got = waves(imported(DATA / "appconfig-cfn.yaml"))
    assert got == [("traffic", 25, "3m45s"), ("traffic", 50, "3m45s"), ("traffic", 75, "3m45s"),
                   ("traffic", 100, "5m")]


# ----------------------------------------------------------------------------- Flagger


def test_a_flagger_canary_steps_its_weight_each_interval_under_a_flagger_judge_then_promotes():
    text = imported(DATA / "flagger-podinfo.yaml")
    stage = stage_of(text)
    assert [(w["weight"], w["bake"]) for w in stage["waves"]] == [(10, "1m"), (20, "1m"), (30, "1m"), (40, "1m"),
                                                                   (50, "1m"), (100, "0s")]
    judge = stage["waves"][0]["judge"]
    assert judge["kind"] == "flagger" and judge["threshold"] == 5 and judge["interval"] == "1m"
    assert judge["metrics"] == [{"metric": "error_rate", "max": 0.01}, {"metric": "latency_p99_ms", "max": 500}]
    assert "judge" not in stage["waves"][-1]
    assert "spec.analysis.webhooks: Flagger calls them" in text
    # Into a scenario it validates, judge and all.
    deploysim.scenario_from_dict(yaml.safe_load(import_policy([str(DATA / "flagger-podinfo.yaml")], into=BASE,
                                                              pipeline="code")))


@pytest.mark.parametrize(("patch", "field"), [
    ({"match": [{"headers": {"x-canary": {"exact": "insider"}}}]}, "spec.analysis.match"),
    ({"metrics": [{"name": "cpu", "templateRef": {"name": "cpu"}, "thresholdRange": {"max": 80}}]},
     "spec.analysis.metrics[0].templateRef"),
])
def test_flagger_features_deploysim_cannot_simulate_are_refused_by_name(tmp_path, patch, field):
    data = yaml.safe_load((DATA / "flagger-podinfo.yaml").read_text())
    data["spec"]["analysis"].update(patch)
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as caught:
        imported(path)
    assert f"not supported: {field}" in str(caught.value)


# ----------------------------------------------------------------------------- Argo Rollouts


@pytest.mark.parametrize(("files", "outcome"), [
    (["rollout-canary.yaml"], [(20, "1h"), (40, "40s"), (60, "20s"), (80, "20s"), (100, "0s")]),
    (["istio-subset-split.yaml"], [(10, "1h"), (100, "0s")]),
    (["rollout-rolling-update.yaml"], [("rest", "0s")]),
    (["rollout-analysis-step.yaml", "analysis-templates.yaml"], "not supported: spec.metrics[0].provider.job"),
    (["rollout-background-analysis.yaml", "analysis-templates.yaml"], "not supported: spec.metrics[0].provider.job"),
    (["rollout-canary-with-analysis.yaml", "analysis-templates.yaml"], "not supported: spec.metrics[0].provider.job"),
    (["rollout-analysis-step.yaml"], "AnalysisTemplate 'random-fail' is not among the files given"),
    (["rollout-bluegreen.yaml"], "not supported: spec.strategy.blueGreen"),
    (["rollout-baseline-vs-canary.yaml"], "not supported: spec.strategy.canary.steps[0].experiment"),
    (["appmesh-canary-rollout.yaml"], [(25, "1h"), (50, "10m"), (75, "10m"), (100, "0s")]),
    (["rollout-linkerd.yaml"], "not valid YAML at line 43: found unhashable key (quote templated values"),
])
def test_the_argo_rollouts_examples_import_or_say_what_is_not_supported(files, outcome):
    """Minimal copies of argoproj/argo-rollouts' examples/ (tests/data/interop/argo-examples)."""
    sources = [ARGO / f for f in files]
    if isinstance(outcome, str):
        with pytest.raises(ScenarioError) as caught:
            imported(*sources)
        assert outcome in str(caught.value)
        assert caught.value.positions or "not among" in outcome or "line 43" in outcome  # where it is
        return
    got = [(w.get("weight", w.get("count")), w["bake"]) for w in stage_of(imported(*sources))["waves"]]
    assert got == outcome


def test_templates_no_rollout_uses_and_other_kubernetes_objects_are_listed_as_not_imported():
    text = imported(ARGO / "appmesh-canary-rollout.yaml")
    assert "AnalysisTemplate success-rate (" in text and "no Rollout uses it, not imported" in text
    text = imported(ARGO / "istio-subset-split.yaml")
    assert "Service istio-subset-split (not a rollout policy): ignored" in text


def test_an_indefinite_pause_before_the_first_weight_is_an_approval_and_after_it_a_bake_that_is_said(tmp_path):
    rollout = yaml.safe_load((ARGO / "rollout-canary.yaml").read_text())
    rollout["spec"]["strategy"]["canary"]["steps"].insert(0, {"pause": {}})
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(rollout))
    text = imported(path, indefinite_pause_s=7200)
    stage = stage_of(text)
    assert stage["approval"] is True
    assert stage["waves"][0]["bake"] == "2h"
    assert "pause {} waits for a person; deploysim bakes 2h instead" in text


def test_a_prometheus_analysis_step_is_the_waves_argo_judge_and_background_analysis_an_alarm():
    with pytest.raises(ScenarioError, match="cannot tell which deploysim metric the query of 'success-rate'"):
        imported(DATA / "rollout-prometheus.yaml")
    mapping = dict([parse_metric_option("success-rate=1-error_rate")])
    text = imported(DATA / "rollout-prometheus.yaml", metric_map=mapping)
    data = yaml.safe_load(text)
    stage = stage_of(text)
    first = stage["waves"][0]
    assert (first["weight"], first["bake"]) == (10, "5m")
    # success rate >= 0.99 on 1 - error_rate: error_rate <= 0.01; count, interval and failureLimit kept.
    assert first["judge"] == {"kind": "argo", "interval": "1m", "count": 5, "failure_limit": 1,
                              "metrics": [{"metric": "error_rate", "success_condition": "result <= 0.01"}]}
    assert [(w["weight"], w["bake"]) for w in stage["waves"][1:]] == [(50, "10m"), (100, "0s")]
    # Background analysis: failureCondition result[0] > 500 with failureLimit 2 -> 3 datapoints in a row.
    assert data["alarms"]["metric"] == [{"name": "latency_p99_ms", "metric": "latency_p99_ms", "threshold": 500,
                                         "comparison": "GreaterThanThreshold", "evaluation_periods": 3,
                                         "datapoints_to_alarm": 3}]
    assert data["policy"]["pipelines"]["checkout"]["watch"] == {"wave": ["latency_p99_ms"]}
    assert "# spec.strategy.canary.steps[0] setWeight: 10; spec.strategy.canary.steps[1] pause: {duration: 5m}" in text


def test_an_imported_rollout_runs_in_the_simulator():
    """Into startup-fast: the imported weights become plan steps over whole hosts, and a run completes."""
    text = import_policy([str(ARGO / "rollout-canary.yaml")], into=BASE, pipeline="code")
    scenario = deploysim.scenario_from_dict(yaml.safe_load(text))
    plan = build_plan("code", scenario.policy.pipelines["code"], build_fleet(scenario))
    prod = plan.stages[-1]
    assert [int(s.hosts.size) for s in prod.steps] == [5, 5, 5, 5, 4]  # 20% of 24 hosts is 4.8: 5, then 10, ...
    assert sum(s.hosts.size for s in prod.steps) == 24


# ----------------------------------------------------------------------------- the command


def test_the_command_writes_the_file_and_reports_bad_input_on_one_line(tmp_path):
    runner = CliRunner()
    out = tmp_path / "policy.yaml"
    result = runner.invoke(main, ["import", "AppConfig.AllAtOnce", "--region", "us-east-1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["policy"]["pipelines"]["AllAtOnce"]
    result = runner.invoke(main, ["import", str(ARGO / "rollout-bluegreen.yaml"), "--region", "us-east-1"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {ARGO / 'rollout-bluegreen.yaml'}:9: not supported: spec.strategy.blueGreen (deploysim imports "
        "canary strategies)"]
    result = runner.invoke(main, ["import", "NoSuchName", "--region", "us-east-1"])
    assert result.exit_code == 2 and "Traceback" not in result.output and "cannot read file" in result.output


@pytest.mark.parametrize(("path", "value", "says"), [
    (("spec",), "abc", "spec: expected a mapping of field: value, got text 'abc'"),
    (("spec", "strategy", "canary", "steps"), 5, "spec.strategy.canary.steps: expected a list"),
    (("spec", "strategy", "canary", "steps", 1, "pause"), "5m", "steps[1].pause: expected a mapping"),
    (("spec", "strategy", "canary", "steps", 0, "setWeight"), "ten", "steps[0].setWeight: expected a number"),
])
def test_a_malformed_rollout_is_refused_naming_the_field_never_with_a_traceback(tmp_path, path, value, says):
    documents = list(yaml.safe_load_all((DATA / "rollout-prometheus.yaml").read_text()))
    node = documents[0]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    source = tmp_path / "rollout.yaml"
    source.write_text(yaml.safe_dump_all(documents))
    with pytest.raises(ScenarioError) as caught:
        imported(source, metric_map=dict([parse_metric_option("success-rate=1-error_rate")]))
    assert says in str(caught.value)
