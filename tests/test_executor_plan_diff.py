"""`deploysim execute --plan --inventory`: every target is asked its version, read-only, and each
step of the plan says what would change; a target that cannot tell is said plainly, without
failing the plan; nothing is ever deployed."""

from __future__ import annotations

from click.testing import CliRunner
from executor_support import fast_scenario_dict, versions, write_inputs

from deploysim.cli import main
from deploysim.executor.fake import FakeAdapter
from deploysim.executor.plan_diff import current_versions, format_diff
from deploysim.executor.rollout import load_rollout_files


def _diff_rows(out: str) -> dict[str, str]:
    """'    r1-az1-c1-h1  v1  -> v2' -> {'r1-az1-c1-h1': 'v1  -> v2'}, from the diff section."""
    section = out.split("\nCurrent versions and what would change", 1)[1]
    return {line.split()[0]: line.strip().split("  ", 1)[1].strip() for line in section.splitlines()
            if line.startswith("    ")}


def test_plan_with_an_inventory_shows_each_targets_version_and_what_would_change(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fleet = tmp_path / "fleet"
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), fleet, parallel=3)
    # h1, h2 and c2-h3 run v1 (the old version); c1-h3 and c2-h2 already run v2; c2-h1 prints garbage.
    (fleet / f"{names[2]}.version").write_text("v2\n")
    (fleet / f"{names[4]}.version").write_text("v2\n")
    (fleet / f"{names[3]}.version").write_text("ERROR: connection refused\n")
    before = versions(fleet, names)

    result = CliRunner().invoke(main, ["execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
                                       "--plan"])

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Expected duration: 4.0s" in out  # the plan itself is still there
    rows = _diff_rows(out)
    assert rows == {
        names[0]: "v1  -> v2", names[1]: "v1  -> v2", names[2]: "v2  already v2",
        names[3]: "unknown (reported 'ERROR: connection refused': not a version, expected a match of "
                  "adapter.version_pattern ^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$)",
        names[4]: "v2  already v2", names[5]: "v1  -> v2"}
    # Targets are listed under the step that deploys them, labelled as the plan and status label steps.
    section = out.split("\nCurrent versions and what would change", 1)[1]
    assert section.index("  stage 1/1 prod, step 1/3 one-box\n") < section.index(names[0]) \
        < section.index("  stage 1/1 prod, step 2/3 wave-1\n") < section.index(names[1]) < section.index(names[2]) \
        < section.index("  stage 1/1 prod, step 3/3 wave-2\n") < section.index(names[3])
    assert "3 at a time" in section.splitlines()[0]
    lines = out.strip().splitlines()
    assert lines[-2] == ("1 target(s) cannot tell their version: a real run would halt before changing anything "
                         "until every target can tell it")
    assert lines[-1] == "3 of 6 targets would change, 2 already run v2, 1 unknown"
    # Nothing was deployed: the fleet's deploy command (which appends to `history`) never ran.
    assert not (fleet / "history").exists()
    assert versions(fleet, names) == before
    assert not (tmp_path / ".deploysim-state").exists()


def test_a_target_the_adapter_cannot_reach_is_unknown_with_the_reason_and_the_plan_still_succeeds(tmp_path):
    fleet = tmp_path / "fleet"
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), fleet)
    (fleet / f"{names[0]}.version").unlink()  # its current_version command exits 1
    (fleet / f"{names[1]}.version").write_text("v2\n")

    result = CliRunner().invoke(main, ["execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
                                       "--plan"])

    assert result.exit_code == 0, result.output
    rows = _diff_rows(result.stdout)
    assert rows[names[0]] == ("unknown (no version reported: the adapter failed, timed out (time-out 20.0s) or the "
                              "target is unreachable)")
    assert rows[names[1]] == "v2  already v2"
    assert result.stdout.strip().splitlines()[-1] == "4 of 6 targets would change, 1 already run v2, 1 unknown"
    assert not (fleet / "history").exists()


def test_an_adapter_that_raises_is_unknown_and_only_current_version_is_ever_called(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    rollout = load_rollout_files(scenario, inventory, "v2", None)

    class Broken(FakeAdapter):
        def current_version(self, target, *, timeout_s):
            version = super().current_version(target, timeout_s=timeout_s)  # logged in `calls`
            if target.name == names[5]:
                raise ConnectionError("no route to host")
            return version

    adapter = Broken({name: "v2" if name == names[0] else "v1" for name in names})
    text = format_diff(rollout, current_versions(rollout, adapter))

    assert {kind for kind, _, _ in adapter.calls} == {"current_version"}
    assert sorted(name for _, name, _ in adapter.calls) == sorted(names)
    assert f"    {names[5]}  unknown (adapter error: ConnectionError: no route to host)" in text.splitlines()
    assert f"    {names[0]}  v2  already v2" in text.splitlines()
    assert text.splitlines()[-1] == "4 of 6 targets would change, 1 already run v2, 1 unknown"


def test_every_target_already_on_the_version_means_nothing_would_change(tmp_path):
    fleet = tmp_path / "fleet"
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), fleet)
    for name in names:
        (fleet / f"{name}.version").write_text("v2\n")
    result = CliRunner().invoke(main, ["execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
                                       "--plan"])
    assert result.exit_code == 0, result.output
    assert set(_diff_rows(result.stdout).values()) == {"v2  already v2"}
    assert "cannot tell" not in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "0 of 6 targets would change, 6 already run v2, 0 unknown"


def test_plan_without_an_inventory_asks_nothing_and_says_current_versions_need_it(tmp_path):
    fleet = tmp_path / "fleet"
    scenario, _, _ = write_inputs(tmp_path, fast_scenario_dict(), fleet)
    result = CliRunner().invoke(main, ["execute", str(scenario), "--version", "v2", "--plan"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "stage 1/1 prod, step 3/3 wave-2: 3 host(s) in 3 batch(es)" in out
    assert "Current versions and what would change" not in out and "would change," not in out
    assert out.strip().splitlines()[-1] == ("Current versions need --inventory: with it, every target is asked its "
                                            "version (read-only) and the plan shows which would change")
    assert not (fleet / "history").exists()

