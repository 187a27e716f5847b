"""The inventory's `adapter:` block and the argument templates its commands fill in: what both the
inventory (which validates them) and the command adapter (which runs them) need, so neither imports
the other for it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from ..scenario.schema import Duration, Frozen

PLACEHOLDERS = ("target", "address", "version", "region", "az", "cell", "stage")
"""Names that may appear in braces in a command's arguments; `{label_NAME}` reads a target's label."""

METRIC_PLACEHOLDERS = ("metric", "statistic", "api", "dependency", "start", "end", "period", "targets")
"""Placeholders of a metrics command: what to read, the window in Unix seconds, target names (comma-joined)."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

DEFAULT_VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
"""What a version looks like unless the inventory's `adapter.version_pattern` says otherwise: both
`--version` and what `current_version` prints must match it (an error message printed with exit 0
is not a version, and must not become the version a rollback returns to)."""

MIN_TIMEOUT_S = 0.1
"""The shortest time-out an adapter call or a metrics command may be given: no command starts faster."""

Argv = Annotated[list[str], Field(min_length=1)]



def check_timeout(value: float) -> float:
    if value < MIN_TIMEOUT_S:
        raise ValueError(f"expected at least {MIN_TIMEOUT_S:g}s (no command starts faster), got {value:g}s")
    return value


Timeout = Annotated[Duration, AfterValidator(check_timeout)]
"""A time-out in seconds (a duration like "5s"), at least MIN_TIMEOUT_S."""

class AdapterSpec(Frozen):
    """How targets are deployed: `local` (processes of `deploysim local up`) or `command` (argv lists)."""

    kind: Literal["local", "command"]
    fleet_dir: str | None = Field(None, description="local: the directory `deploysim local up` manages, "
                                     "relative to the inventory file")
    deploy: Argv | None = Field(None, description="command: puts {target} on {version}")
    rollback: Argv | None = Field(None, description="command: puts {target} back on {version}; "
                                     "default: the deploy command with the previous version")
    current_version: Argv | None = Field(None, description="command: prints the version {target} runs")
    health: Argv | None = Field(None, description="command: exits 0 when {target} is healthy")
    preprod: Argv | None = Field(None, description="command: runs pre-production tests of {version} "
                                    "for {stage}; exit 0 = passed")
    set_weight: Argv | None = Field(None, description="command: a traffic router sends {weight} percent of "
                                       "{region}'s requests (stage {stage}) to the hosts running {version}; "
                                       "0 before a rollback. Without it a traffic step's hosts serve the weight")
    timeout: Timeout = Field(60.0, description="seconds per attempt of an adapter call")
    retries: Annotated[int, Field(ge=0, le=20)] = Field(2, description="extra attempts after the first")
    backoff: Duration = Field(2.0, description="wait before the first retry; doubles each retry")
    parallel: Annotated[int, Field(ge=1)] = Field(1, description="hosts of a batch deployed at the same time")
    version_pattern: str = Field(DEFAULT_VERSION_PATTERN, description="regular expression a version must match: "
                                 "--version and what current_version reports")

    @model_validator(mode="after")
    def _needs_kind_fields(self):
        if self.kind == "local" and not self.fleet_dir:
            raise ValueError("kind 'local' needs fleet_dir")
        if self.kind == "command":
            missing = [name for name in ("deploy", "current_version") if getattr(self, name) is None]
            if missing:
                raise ValueError(f"kind 'command' needs {' and '.join(missing)}")
        return self

    @field_validator("version_pattern")
    @classmethod
    def _a_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        return value

    def is_version(self, text: str | None) -> bool:
        """Does `text` look like a version (matches `version_pattern`)?"""
        return text is not None and re.fullmatch(self.version_pattern, text) is not None




def placeholders(argv: Sequence[str]) -> set[str]:
    return {m.group(1) for arg in argv for m in _PLACEHOLDER.finditer(arg)}


def fill(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """`argv` with each `{name}` replaced by its value. Each value lands inside one argument and is
    never parsed again (no shell), so a target or version name cannot inject a command. Braces that
    are not a known placeholder (JSON in a kubectl patch) are left as they are."""
    return [_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), arg)
            for arg in argv]
