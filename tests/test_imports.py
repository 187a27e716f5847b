"""The package's import graph has no cycles, and the light commands load none of the heavy libraries.

The graph is read from the source, not from a running interpreter: every .py under deploysim/ is
parsed with `ast`, relative imports are resolved against the module's package, and an edge runs
from a module to every deploysim module it imports ANYWHERE in its body - at module level and
inside functions alike (a lazy import is still a dependency: it only moves the moment the cycle
bites). Imports under `if TYPE_CHECKING:` are left out, as they never run. `from pkg import name`
is an edge to `pkg.name` when that is a module, else to `pkg`. A package's `__init__` is the module
named by the package; importing `pkg.sub` is an edge to `pkg.sub` only (Python runs `pkg/__init__`
first, but that is not something `pkg.sub` chose to depend on).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "deploysim"
HEAVY = ("pandas", "scipy", "simpy", "matplotlib")


def module_names() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node that can run (skips `if TYPE_CHECKING:` bodies)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (module level and inside functions)."""
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a name inside a.b
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, colours white/grey/black)."""
    colour = dict.fromkeys(graph, 0)
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if colour[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            if colour[nxt] == 0:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        colour[node] = 2
        return None

    for start in sorted(graph):
        if colour[start] == 0:
            found = visit(start)
            if found:
                return found
    return None


def test_the_graph_sees_relative_and_function_level_imports():
    """The walker itself: a relative import inside a function is an edge (else the test below proves little)."""
    graph = import_graph()
    assert "deploysim.scenario.loader" in graph["deploysim.scenario"]
    assert "deploysim.cli.simulate" in graph["deploysim.cli"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    """No module of deploysim imports itself through others, at module level or inside a function."""
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_library_does_not_import_the_command_line():
    """The CLI sits on top: no module outside deploysim.cli imports it (but `python -m deploysim`, which runs it)."""
    graph = import_graph()
    offenders = sorted(f"{module} -> {target}" for module, targets in graph.items()
                       if not module.startswith("deploysim.cli") and module != "deploysim.__main__"
                       for target in targets if target == "deploysim.cli" or target.startswith("deploysim.cli."))
    assert offenders == [], offenders


def test_notebooks_docs_and_scripts_import_from_the_library_not_the_cli():
    """What users copy (notebooks, their builder, docs, scripts) never imports deploysim.cli."""
    files = [*REPO.glob("notebooks/*"), *REPO.glob("docs/**/*.md"), *REPO.glob("scripts/*.py"), REPO / "README.md"]
    pattern = re.compile(r"(from\s+deploysim\.cli\b|import\s+deploysim\.cli\b|from\s+deploysim\s+import\s+cli\b)")
    offenders = [str(path.relative_to(REPO)) for path in files
                 if path.is_file() and pattern.search(path.read_text(encoding="utf-8", errors="replace"))]
    assert offenders == [], offenders


# ------------------------------------------------------------------ what the light commands load

LOADED = textwrap.dedent("""
    import sys
    from deploysim.cli import main
    try:
        main(sys.argv[1:], standalone_mode=False)
    except SystemExit:
        pass
    print("LOADED", " ".join(sorted(sys.modules)))
""")


def loaded_modules(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", LOADED, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("LOADED "))
    return set(line.split()[1:])


@pytest.mark.parametrize("args", [["--help"], ["validate", "scenarios/aws-typical.yaml"], ["schema"],
                                  ["run", "--help"], ["execute", "--help"], ["local", "--help"]])
def test_light_commands_do_not_load_heavy_libraries(args):
    """`deploysim --help`, `validate` and every `--help` start without pandas, scipy, SimPy or matplotlib."""
    loaded = loaded_modules(*args)
    assert "deploysim.cli" in loaded and "click" in loaded
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY)
    assert not heavy, f"deploysim {' '.join(args)} loaded {', '.join(heavy[:8])}"


def test_help_loads_no_numerics_or_schema_library():
    """Building the command tree needs click alone: `deploysim --help` loads neither numpy nor pydantic."""
    loaded = loaded_modules("--help")
    assert not {"numpy", "pydantic"} & loaded
