"""Which detector wins: threshold alarm vs Kayenta-style judge on the same keyed draws."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import patched, tiny_scenario_dict
from scipy.stats import binomtest

import deploysim
from deploysim.cli import main
from deploysim.experiments.detectors import SUMMARY_COLUMNS, compare_detectors, simulate_detectors


def noisy_dict(threshold: float = 0.02) -> dict:
    """The tiny scenario with a 1% baseline error rate and a one-box alarm at `threshold`, 10 min bake."""
    data = patched(tiny_scenario_dict(), "baseline.error_rate", 0.01)
    return patched(data, "alarms.metric[0].threshold", threshold)


@pytest.fixture(scope="module")
def noisy():
    return deploysim.scenario_from_dict(noisy_dict())


def test_same_seed_gives_the_same_frame(noisy):
    kw = {"replications": 4, "seed": 7, "defects": (0.0, 0.02), "traffic_rpm": (200.0,)}
    first, second = compare_detectors(noisy, **kw), compare_detectors(noisy, **kw)
    pd.testing.assert_frame_equal(first, second)
    assert list(first.columns) == list(SUMMARY_COLUMNS)
    assert set(first["detector"]) == {"threshold", "judge", "judge - threshold"}
    assert (first["bake_minutes"] == 10).all()


def test_large_defect_on_high_traffic_is_caught_by_the_judge_at_its_first_judgement(noisy):
    out = simulate_detectors(noisy, replications=10, seed=3, defects=(0.2,), traffic_rpm=(10000.0,))
    judge = out[out["detector"] == "judge"]
    assert judge["caught"].all()
    assert (judge["minutes_to_catch"] == out.attrs["looks_minutes"][0]).all()


def test_without_defect_the_judge_fails_no_more_often_than_its_alpha(noisy):
    n, alpha = 120, 0.05
    out = simulate_detectors(noisy, replications=n, seed=11, defects=(0.0,), traffic_rpm=(2000.0,), alpha=alpha)
    fails = int(out.loc[out["detector"] == "judge", "caught"].sum())
    assert binomtest(fails, n, alpha, alternative="greater").pvalue > 0.001, fails


def test_threshold_results_do_not_depend_on_the_other_defect_sizes(noisy):
    kw = {"replications": 8, "seed": 5, "traffic_rpm": (300.0,)}
    alone = simulate_detectors(noisy, defects=(0.01,), **kw)
    among = simulate_detectors(noisy, defects=(0.0, 0.01, 0.05), **kw)
    pick = ["replication", "caught", "minutes_to_catch"]
    a = alone[alone["detector"] == "threshold"][pick].reset_index(drop=True)
    b = among[(among["detector"] == "threshold") & (among["defect_error_rate"] == 0.01)][pick].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert 0 < a["caught"].sum() < len(a)  # the draws matter: some replications catch it, some do not


@pytest.fixture(scope="module")
def noisy_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("scen") / "noisy.yaml"
    path.write_text(yaml.safe_dump(noisy_dict()))
    return path


def test_cli_writes_its_files(noisy_path, tmp_path):
    out = CliRunner().invoke(main, ["detectors", str(noisy_path), "-n", "3", "--defects", "0,0.2", "--traffic",
                                    "1000", "--bake", "10m", "-o", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "false rollback" in out.stdout and "judge - threshold" in out.stdout
    frame = pd.read_csv(tmp_path / "detectors.csv")
    assert len(frame) == 2 * 3 and (tmp_path / "detectors.png").stat().st_size > 0


@pytest.mark.parametrize("args", [["--defects", "0,abc"], ["--traffic", "-5"], ["--bake", "soon"],
                                  ["--defects", "1.5"]])
def test_cli_bad_option_is_one_line_and_exit_2(noisy_path, args):
    out = CliRunner().invoke(main, ["detectors", str(noisy_path), "-n", "2", *args])
    assert out.exit_code == 2, out.output
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
