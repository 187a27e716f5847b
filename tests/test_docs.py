"""The Python recipes in docs/howto.md run as written."""

from __future__ import annotations

import os
import re

import pytest
from conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "howto.md").read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_howto_recipe_runs(index, capsys):
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        exec(compile(BLOCKS[index], f"docs/howto.md[{index}]", "exec"), {})
    finally:
        os.chdir(cwd)
    assert capsys.readouterr().out.strip(), "every recipe prints what it shows"


def test_the_recipes_are_found():
    assert len(BLOCKS) == 6
