"""`python -m deploysim ...`: the same command as `deploysim ...`."""

from .cli import main

main(prog_name="deploysim")
