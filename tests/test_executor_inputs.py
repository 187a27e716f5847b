"""Inputs the executor must refuse in one line naming the field (exit 2) before anything is touched,
the state directory or journal it cannot write (one line, nothing lost), `--resume --inventory`
(fix the cause when the cause is the inventory), and the exit codes, each its own."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import sys

import pytest
import yaml
from click.testing import CliRunner
from executor_support import fast_scenario_dict, manual_rollback, versions, write_inputs

import deploysim.executor.journal as journal_module
from deploysim.cli import main
from deploysim.executor.journal import Journal
from deploysim.executor.outcome import (
    EXIT_BAD_INPUT,
    EXIT_COMPLETE,
    EXIT_HALTED,
    EXIT_INTERNAL,
    EXIT_ROLLED_BACK,
)


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def one_line_error(result, code: int = EXIT_BAD_INPUT) -> str:
    """The result is exit `code`, nothing on stdout, one `error:` line on stderr (after the run's log
    lines, if it began), and no traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    assert result.stdout == "", result.output
    errors = [line for line in result.stderr.splitlines() if not line[:8].replace(":", "").isdigit()]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    return errors[0]


def execute(scenario, inventory, version, state, *more):
    return run("execute", str(scenario), "--inventory", str(inventory), "--version", version,
               "--state-dir", str(state), *more)


# ------------------------------------------------------------------ bad input, one line, nothing touched


def test_region_names_that_are_paths_or_options_are_refused_by_execute_and_local_up(tmp_path):
    for region in ("../../escape", "-rm"):
        data = fast_scenario_dict()
        data["fleet"]["regions"][0]["name"] = region
        data["policy"]["pipelines"]["code"]["stages"][0]["regions"] = [region]
        scenario = tmp_path / "bad-region.yaml"
        scenario.write_text(yaml.safe_dump(data))
        result = run("execute", str(scenario), "--version", "v2", "--plan")
        assert "fleet.regions[0].name" in one_line_error(result) and repr(region) in result.output
        work = tmp_path / "work" / "fleet"
        local = run("local", "up", str(scenario), "--dir", str(work), "--metrics", "probe")
        assert "fleet.regions[0].name" in one_line_error(local)
        assert not (tmp_path / "work").exists() and not (tmp_path / "escape").exists()


@pytest.mark.parametrize("version", ["..", ".", "-rm", "a/b", "\U0001f600" * 70, "v" * 65, "v2 beta"])
def test_a_version_that_is_no_version_name_is_refused_before_any_file_is_made(tmp_path, monkeypatch, version):
    monkeypatch.chdir(tmp_path)
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    result = run("execute", str(scenario), "--inventory", str(inventory), "--version", version)
    assert "--version" in one_line_error(result)
    assert not (tmp_path / ".deploysim-state").exists() and not (tmp_path / "journal.sqlite").exists()
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}


def _inventory_case(tmp_path, change):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    data = yaml.safe_load(inventory.read_text())
    text = change(data, names)
    inventory.write_text(text if isinstance(text, str) else yaml.safe_dump(data, sort_keys=False))
    result = execute(scenario, inventory, "v2", tmp_path / "state")
    assert not (tmp_path / "state").exists()
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}
    return one_line_error(result), inventory


def test_a_key_given_twice_in_an_inventory_is_refused_with_both_lines(tmp_path):
    def twice(data, names):
        text = yaml.safe_dump(data, sort_keys=False)
        return text.replace("  timeout: 20s\n", "  timeout: 20s\n  timeout: 1h\n")
    line, inventory = _inventory_case(tmp_path, twice)
    assert f"{inventory}: adapter.timeout: duplicate key 'timeout'" in line and "first given at line" in line


def test_targets_sharing_one_address_are_refused(tmp_path):
    def same(data, names):
        for name in names:
            data["targets"][name]["address"] = "10.0.0.1"
    line, inventory = _inventory_case(tmp_path, same)
    assert f"{inventory}:" in line and "address '10.0.0.1' is also the address of 5 other target(s)" in line


def test_a_metrics_url_that_is_no_url_is_refused_by_field_and_line(tmp_path):
    def url(data, names):
        data["metrics"] = {"kind": "prometheus", "url": "not a url"}
    line, inventory = _inventory_case(tmp_path, url)
    assert line.startswith(f"error: {inventory}:") and "metrics.url: expected an http(s) URL" in line


def test_a_time_out_no_command_can_meet_is_refused(tmp_path):
    def short(data, names):
        data["adapter"]["timeout"] = 0.001
    line, _ = _inventory_case(tmp_path, short)
    assert "adapter.timeout: expected at least 0.1s" in line


def test_a_bad_fleet_dir_is_one_line_naming_the_field(tmp_path):
    def local(data, names):
        data["adapter"] = {"kind": "local", "fleet_dir": "no-such-fleet"}
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    data = yaml.safe_load(inventory.read_text())
    local(data, names)
    inventory.write_text(yaml.safe_dump(data))
    line = one_line_error(execute(scenario, inventory, "v2", tmp_path / "state"))
    assert f"{inventory}: adapter.fleet_dir: 'no-such-fleet' is not a usable local fleet" in line


def test_current_version_printing_an_error_with_exit_0_is_not_a_version(tmp_path):
    """An error message must never become the version a rollback returns to."""
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    data = yaml.safe_load(inventory.read_text())
    data["adapter"]["current_version"] = [sys.executable, "-c", "print('error: connection refused')"]
    inventory.write_text(yaml.safe_dump(data))
    result = execute(scenario, inventory, "v2", tmp_path / "state")
    assert result.exit_code == EXIT_HALTED, result.output
    assert "reported 'error: connection refused': not a version" in result.output
    assert "nothing was changed" in result.output
    journal = Journal.open_existing(tmp_path / "state", readonly=True)
    assert journal.previous_versions() == {}
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}


def test_the_version_pattern_is_settable_in_the_inventory(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(bakes_s=(0, 0, 0)), tmp_path / "fleet")
    for name in names:
        (tmp_path / "fleet" / f"{name}.version").write_text("build-6\n")
    data = yaml.safe_load(inventory.read_text())
    data["adapter"]["version_pattern"] = "^build-[0-9]+$"
    inventory.write_text(yaml.safe_dump(data))
    assert "^build-[0-9]+$" in one_line_error(execute(scenario, inventory, "v2", tmp_path / "s1"))
    done = execute(scenario, inventory, "build-7", tmp_path / "s2")
    assert done.exit_code == EXIT_COMPLETE, done.output
    assert set(versions(tmp_path / "fleet", names).values()) == {"build-7"}


# ------------------------------------------------------------------ a state directory that cannot be written


def test_a_read_only_state_directory_is_one_line(tmp_path, monkeypatch):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: the file system says no instead
        import deploysim.executor.lock as lock_module

        real_open = os.open

        def read_only(path, *args, **kwargs):
            if str(path).startswith(str(state)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, *args, **kwargs)
        monkeypatch.setattr(lock_module.os, "open", read_only)
    try:
        line = one_line_error(execute(scenario, inventory, "v2", state))
    finally:
        state.chmod(0o755)
    assert f"cannot use the state directory {state}" in line
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}
    under_a_file = tmp_path / "plain-file"
    under_a_file.write_text("")
    assert "cannot make the state directory" in one_line_error(
        execute(scenario, inventory, "v2", under_a_file / "state"))


class _DiskFills:
    """A journal connection whose writes fail with ENOSPC once `writes` INSERTs have gone through."""

    def __init__(self, db: sqlite3.Connection, budget: list[int]):
        self._db = db
        self._budget = budget

    def _spend(self, sql: str) -> None:
        if sql.lstrip().upper().startswith("INSERT"):
            if self._budget[0] <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self._budget[0] -= 1

    def execute(self, sql, *args):
        self._spend(sql)
        return self._db.execute(sql, *args)

    def executemany(self, sql, *args):
        self._spend(sql)
        return self._db.executemany(sql, *args)

    def __getattr__(self, name):
        return getattr(self._db, name)


def _disk_fills_after(monkeypatch, writes: int) -> None:
    budget = [writes]
    real_connect = sqlite3.connect

    def connect(*args, **kwargs):
        return _DiskFills(real_connect(*args, **kwargs), budget)
    monkeypatch.setattr(journal_module.sqlite3, "connect", connect)


def test_a_full_disk_is_one_line_and_nothing_is_lost(tmp_path, monkeypatch):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(bakes_s=(0, 0, 0)), tmp_path / "fleet")
    # Full before the run's metadata is written: bad input (exit 2), nothing touched.
    with monkeypatch.context() as patch:
        _disk_fills_after(patch, 0)
        line = one_line_error(execute(scenario, inventory, "v2", tmp_path / "early"))
    assert "cannot write the journal" in line and "No space left on device" in line
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}
    # Full half way through: halted (exit 3) in one line; once there is room, --resume finishes.
    state = tmp_path / "state"
    with monkeypatch.context() as patch:
        _disk_fills_after(patch, 12)
        line = one_line_error(execute(scenario, inventory, "v2", state), EXIT_HALTED)
    assert "cannot write the journal" in line and "--resume" in line
    assert "v2" in versions(tmp_path / "fleet", names).values()  # it had begun
    resumed = run("execute", "--resume", str(state))
    assert resumed.exit_code == EXIT_COMPLETE, resumed.output
    assert set(versions(tmp_path / "fleet", names).values()) == {"v2"}


# ------------------------------------------------------------------ --resume --inventory


def test_resume_takes_a_corrected_inventory_of_the_same_targets(tmp_path):
    """With automatic rollback off, a deploy broken by its inventory halts; a corrected inventory then finishes it."""
    scenario, inventory, names = write_inputs(tmp_path, manual_rollback(fast_scenario_dict(bakes_s=(0, 0, 0))),
                                              tmp_path / "fleet")
    good = yaml.safe_load(inventory.read_text())
    broken = json.loads(json.dumps(good))
    broken["adapter"]["deploy"][1] = str(tmp_path / "no-such-helper.py")  # the cause is in the inventory
    broken_path = tmp_path / "broken.yaml"
    broken_path.write_text(yaml.safe_dump(broken))
    state = tmp_path / "state"
    halted = execute(scenario, broken_path, "v2", state)
    assert halted.exit_code == EXIT_HALTED, halted.output
    # Another fleet's inventory (other target names) is refused in one line; the journal is unchanged.
    other = json.loads(json.dumps(good))
    other["targets"] = {name.replace("r1-", "r2-"): spec for name, spec in good["targets"].items()}
    other_path = tmp_path / "other.yaml"
    other_path.write_text(yaml.safe_dump(other))
    line = one_line_error(run("execute", "--resume", str(state), "--inventory", str(other_path)))
    assert "describes other targets than the rollout journaled" in line and names[0] in line
    assert Journal.open_existing(state, readonly=True).meta()["inventory_path"] == str(broken_path)
    # The corrected inventory (same targets) is taken, journaled, and the rollout finishes.
    fixed = run("execute", "--resume", str(state), "--inventory", str(inventory))
    assert fixed.exit_code == EXIT_COMPLETE, fixed.output
    assert set(versions(tmp_path / "fleet", names).values()) == {"v2"}
    journal = Journal.open_existing(state, readonly=True)
    meta = journal.meta()
    assert meta["inventory_path"] == str(inventory) and meta["inventory_text"] == inventory.read_text()
    assert meta["replaced_inventories"][0]["inventory_text"] == broken_path.read_text()  # nothing lost
    assert any(kind == "inventory_replaced" and str(inventory) in detail for _, _, kind, detail in journal.events())
    assert run("status", str(state)).output.count("State: complete") == 1


# ------------------------------------------------------------------ exit codes, each its own


def test_every_way_a_run_ends_has_its_own_exit_code(tmp_path, monkeypatch):
    codes = {EXIT_COMPLETE, EXIT_ROLLED_BACK, EXIT_BAD_INPUT, EXIT_HALTED, EXIT_INTERNAL}
    assert len(codes) == 5
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    assert execute(scenario, inventory, "v2", tmp_path / "a").exit_code == EXIT_COMPLETE
    assert execute(scenario, inventory, "v3-bad", tmp_path / "b").exit_code == EXIT_ROLLED_BACK
    assert execute(scenario, inventory, "--rm", tmp_path / "c").exit_code == EXIT_BAD_INPUT
    # A failed deploy with automatic rollback off halts for people.
    (tmp_path / "manual").mkdir()
    manual, manual_inventory, _ = write_inputs(tmp_path / "manual", manual_rollback(fast_scenario_dict()),
                                               tmp_path / "fleet")
    (tmp_path / "fleet" / f"fail-{names[0]}").write_text("")
    assert execute(manual, manual_inventory, "v4", tmp_path / "d").exit_code == EXIT_HALTED
    (tmp_path / "fleet" / f"fail-{names[0]}").unlink()
    # A bug during a run: exit 4, one line, the traceback in the state directory.
    from deploysim.executor.driver import Executor

    def bug(self):
        raise KeyError("a bug")
    with monkeypatch.context() as patch:
        patch.setattr(Executor, "_start", bug)
        result = execute(scenario, inventory, "v5", tmp_path / "e")
    assert result.exit_code == EXIT_INTERNAL and "internal error KeyError" in result.output
    assert "Traceback" not in result.output and (tmp_path / "e" / "internal-error.txt").exists()
    # A bug outside a run (status): exit 4 and one line too, never Python's exit 1 (`rolled back`).
    import deploysim.executor.status as status_module

    def broken_status(*args, **kwargs):
        raise RuntimeError("a bug in status")
    with monkeypatch.context() as patch:
        patch.setattr(status_module, "rollout_status", broken_status)
        line = one_line_error(run("status", str(tmp_path / "a")), EXIT_INTERNAL)
    assert "internal error RuntimeError: a bug in status" in line
