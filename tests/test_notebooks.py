"""The notebooks in notebooks/: each one runs top to bottom without an error (fixed seed, small
replication counts) and shows what it promises; every one is stored without outputs, exactly as
notebooks/build_notebooks.py writes it."""

from __future__ import annotations

import importlib.util
import json
import re
import sys

import nbformat
import pytest
from conftest import REPO
from nbclient import NotebookClient

NOTEBOOKS = REPO / "notebooks"
EXPECTED = ["01-quickstart.ipynb", "02-tuning-bake-times.ipynb", "03-sla-budget-planning.ipynb",
            "04-policy-comparison.ipynb", "05-calibrate-from-history.ipynb",
            "06-canary-judge-vs-thresholds.ipynb"]
KERNEL = "deploysim-tests"


def _generator():
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kernel_path(tmp_path_factory):
    """A kernel spec that runs this very interpreter (the venv's), whatever other kernels are installed."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "deploysim tests", "language": "python"}))
    return str(root)


def _run(name: str, kernel_path: str, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("JUPYTER_PATH", kernel_path)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=600, allow_errors=False,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def _text(nb) -> str:
    """Everything the notebook printed or showed as text."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o["text"])
            elif "data" in o:
                out.append(o["data"].get("text/plain", ""))
    return "\n".join(out)


def _images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


# ---------------------------------------------------------------- stored without outputs


def test_every_numbered_notebook_is_there():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED
    assert list(_generator().NOTEBOOKS) == EXPECTED


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a code cell has outputs; run notebooks/build_notebooks.py"
            assert cell.execution_count is None, f"{path.name}: a code cell has an execution count"
    assert nb.cells[0].cell_type == "markdown"
    assert re.match(r"# \d\. ", nb.cells[0].source)


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_what_the_generator_writes(name):
    generator = _generator()
    expected = nbformat.writes(generator.build(name)) + "\n"
    assert (NOTEBOOKS / name).read_text(encoding="utf-8") == expected, \
        f"{name} differs from notebooks/build_notebooks.py: edit the generator and run it"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_parameters_are_small_and_seeded(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    params = nb.cells[1].source
    assert "SEED = 1" in params
    reps = re.search(r"REPLICATIONS = (\d+)", params)
    assert reps is None or int(reps.group(1)) <= 20
    # Monthly figures (SLA breach, credits) are judged on 30-day months, never on a shorter run.
    months = re.search(r"MONTHS = ([0-9.]+)", params)
    assert months is None or float(months.group(1)) == 1.0


# ---------------------------------------------------------------- executed


def test_quickstart_shows_a_bad_changes_rollout_and_blast_radius(kernel_path, monkeypatch):
    nb = _run("01-quickstart.ipynb", kernel_path, monkeypatch)
    text = _text(nb)
    assert "Scenario aws-typical, seed 1, 1 month(s)" in text
    assert "allowed downtime at 99.99%: 4.32 min per 30-day month" in text
    assert re.search(r"blast radius: [\d,]+ failed requests", text)
    assert re.search(r"time to detect [\d.]+ min, time to roll back [\d.]+ min", text)
    assert _images(nb) >= 3  # rollout timeline, error rate, budget burn-down


def test_tuning_notebook_picks_a_policy(kernel_path, monkeypatch):
    nb = _run("02-tuning-bake-times.ipynb", kernel_path, monkeypatch)
    text = _text(nb)
    assert "Flag lead time against SLA breach probability" in text
    assert re.search(r"pick: .*bake\.duration=", text)
    assert _images(nb) >= 1


def test_budget_planning_notebook_covers_three_targets(kernel_path, monkeypatch):
    nb = _run("03-sla-budget-planning.ipynb", kernel_path, monkeypatch)
    text = _text(nb)
    for variant in ("as is", "4x deploys", "3x bad", "slower alarms"):
        assert variant in text
    for target in ("99.9", "99.99", "99.999"):
        assert target in text
    assert "breach_probability" in text and "expected_credit_pct" in text


def test_policy_comparison_notebook_pairs_the_policies(kernel_path, monkeypatch):
    nb = _run("04-policy-comparison.ipynb", kernel_path, monkeypatch)
    text = _text(nb)
    assert "aws-typical and no-safety share their world: True" in text
    assert "Difference from aws-typical, replication by replication" in text
    assert _images(nb) >= 3


def test_calibration_notebook_fits_the_sample_history_and_recovers_the_truth(kernel_path, monkeypatch):
    nb = _run("05-calibrate-from-history.ipynb", kernel_path, monkeypatch)
    text = _text(nb)
    assert "deployments in pipelines code, config" in text
    assert text.count("inside: True") == 5 and "inside: False" not in text
    assert "parameters drawn from the fit" in text and "breach probability at 99.99%" in text
    assert _images(nb) >= 2  # arrivals, detection delay CDF and Q-Q


def test_canary_judge_notebook_measures_both_detectors_and_the_baselines_cost(kernel_path, monkeypatch):
    nb = _run("06-canary-judge-vs-thresholds.ipynb", kernel_path, monkeypatch)
    text = _text(nb)
    assert "kayenta judge, baseline deploy, every 5 min of a 30 min bake" in text
    assert "judge - threshold" in text and "false rollback" in text
    assert "canary-judge and startup-fast share their world: True" in text
    assert re.search(r"baseline host-hours [1-9][\d.]*", text)
    assert _images(nb) >= 1
