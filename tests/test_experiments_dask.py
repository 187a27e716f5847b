"""The same replications on a real Dask distributed cluster (two worker processes) give the same
frames as the local run for the same seed."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import patched, tiny_scenario_dict

import deploysim

distributed = pytest.importorskip("distributed", reason="Dask is the optional extra deploysim[dask]")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as local:
        yield local


def test_dask_cluster_gives_the_local_results(cluster):
    scenario = deploysim.scenario_from_dict(patched(tiny_scenario_dict(), "changes.code.bad_probability", 0.5))
    local = deploysim.monte_carlo(scenario, replications=6, seed=21, months=0.25, workers=2)
    with distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        remote = deploysim.monte_carlo(scenario, replications=6, seed=21, months=0.25, client=client)
    pd.testing.assert_frame_equal(local.replications, remote.replications)
    pd.testing.assert_frame_equal(local.changes, remote.changes)


def test_cli_runs_on_a_dask_scheduler_by_address(cluster, tmp_path):
    from click.testing import CliRunner

    from deploysim.cli import main

    path = tmp_path / "tiny.yaml"
    import yaml

    path.write_text(yaml.safe_dump(patched(tiny_scenario_dict(), "changes.code.bad_probability", 0.5)))
    args = ["run", str(path), "--replications", "4", "--months", "0.25", "--json", "--seed", "3"]
    on_dask = CliRunner().invoke(main, args + ["--dask-scheduler", cluster.scheduler_address])
    here = CliRunner().invoke(main, args + ["--workers", "1"])
    assert on_dask.exit_code == 0, on_dask.output
    assert on_dask.stdout == here.stdout
