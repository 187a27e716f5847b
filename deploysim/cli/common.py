"""What every command does the same way: report unusable input as one line on stderr with exit code 2,
load a scenario, write frames as CSV, connect to Dask. Imports nothing heavy at module level."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import click

import deploysim


def fail(message: str, code: int = 2) -> NoReturn:
    """Report unusable input on stderr and exit (2 by default, as click does for usage errors)."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def error_text(error: ValueError, path: str | None = None) -> str:
    """The error's message, led by the file it is about; one line when the whole file is unusable."""
    if not isinstance(error, deploysim.ScenarioError):
        return f"{path}: {error}" if path else str(error)
    # An unreadable file or broken YAML is one problem at the top: say it on one line.
    if len(error.problems) == 1 and not error.problems[0][0]:
        return f"{error.source}: {error.problems[0][1]}"
    return str(error)


def input_error(error: ValueError) -> NoReturn:
    """Bad input, one line per problem, each naming its file, line (when known) and field; exit 2."""
    if not isinstance(error, deploysim.ScenarioError):
        fail(str(error).replace("\n", "; "))
    for path, message in error.problems[:-1]:
        click.echo(f"error: {problem_line(error, path, message)}", err=True)
    fail(problem_line(error, *error.problems[-1]) if error.problems else error.source)


def problem_line(error: deploysim.ScenarioError, path: str, message: str) -> str:
    """`FILE:LINE: FIELD: MESSAGE` (the line when known, the field when the problem has one)."""
    where = error.positions.get(path)
    return f"{error.source}{f':{where[0]}' if where else ''}: {path + ': ' if path else ''}{message}"


def load(path: str) -> deploysim.Scenario:
    """The scenario at `path`, or its problems on stderr and exit 2."""
    try:
        return deploysim.load_scenario(path)
    except ValueError as error:
        fail(error_text(error, path))


def load_to_simulate(path: str) -> deploysim.Scenario:
    """`load`, then this process (the command's own, never a library user's) is tuned for
    simulating: malloc thresholds and a settled garbage collector (`deploysim.process_tuning`)."""
    scenario = load(path)
    from ..process_tuning import tune_process

    tune_process()
    return scenario


def guarded(func: Callable) -> Callable:
    """Turn the library's input errors into one line and exit code 2."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..experiments.params import ParameterError

        try:
            return func(*args, **kwargs)
        except ParameterError as error:
            fail(str(error))
        except deploysim.ScenarioError as error:
            fail(str(error).replace("\n", ";"))
    return wrapper


@contextlib.contextmanager
def dask_client(address: str | None) -> Iterator[Any]:
    """A Dask client for `address`, or None; a clear error if Dask is missing or the scheduler is unreachable."""
    if address is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        fail("--dask-scheduler needs Dask: pip install 'deploysim[dask]'")
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as error:
        fail(f"cannot reach the Dask scheduler at {address}: {error}")
    try:
        yield client
    finally:
        client.close()


FILE_FORMATS = ("csv", "parquet")


def write_csvs(out_dir: Path | None, frames: Mapping[str, Any], file_format: str = "csv") -> None:
    """Write each frame as `<name>.csv` (or `.parquet`) in `out_dir` (nothing if it is None) and say so on stderr."""
    if out_dir is None:
        return
    if file_format == "parquet":
        try:
            import pyarrow  # type: ignore[import-untyped]  # noqa: F401  (pandas writes Parquet through it)
        except ImportError:
            fail("--format parquet needs pyarrow: pip install 'deploysim[parquet]'")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            if file_format == "parquet":
                frame.to_parquet(out_dir / f"{name}.parquet", index=False)
            else:
                frame.to_csv(out_dir / f"{name}.csv", index=False)
    except OSError as error:
        raise click.ClickException(f"cannot write to {out_dir}: {error.strerror or error}") from None
    click.echo(f"wrote {', '.join(f'{n}.{file_format}' for n in frames)} to {out_dir}", err=True)
