"""The `deploysim` command: parse arguments, call the library, print what it returns.

One module per command group - simulate (run, validate, schema), experiments (run --replications,
compare, sweep, tune), fit, detectors, report, execute (execute, status, history),
control (abort, pause, resume, promote, approve), local, interop (import, export) - over the options they share
(options.py). Building the command tree imports only click and what `import deploysim` loads; each
command imports the rest of the library inside its function, so `deploysim --help` and
`deploysim validate` never load pandas, scipy, SimPy or matplotlib.
"""

from __future__ import annotations

import click

from .control import abort, approve, pause, promote, resume
from .detectors import detectors
from .execute import execute, history, status
from .experiments import compare, sweep, tune
from .fit import fit
from .init import init
from .interop import export, import_
from .local import local
from .report import report
from .simulate import run, schema, validate

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deploysim", prog_name="deploysim")
def main() -> None:
    """Simulate safe, hands-off deployment policies and the uptime they buy."""


for _command in (init, run, validate, schema, compare, sweep, tune, detectors, execute, status, history, abort, pause,
                 resume, promote, approve, local, report, fit, import_, export):
    main.add_command(_command)
