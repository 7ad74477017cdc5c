"""The architecture the code map describes, enforced: layers, no import cycle, small modules.

The layer contracts live in pyproject.toml (``[tool.importlinter]``); ``make lint`` runs the
same check with ``lint-imports``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "selfinstruct"
MAX_MODULE_LINES = 400
MAX_PIPELINE_LINES = 300


def test_import_linter_contracts_are_kept():
    check = ("import sys; from importlinter.cli import lint_imports; "
             "sys.exit(lint_imports(no_cache=True))")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    report = result.stdout[result.stdout.find("Contracts") :]
    assert result.returncode == 0, report + result.stderr


def test_no_module_is_over_400_lines_and_the_pipeline_is_at_most_300():
    lengths = {
        path.relative_to(REPO).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}
    assert lengths["selfinstruct/pipeline.py"] <= MAX_PIPELINE_LINES


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycle_between_modules():
    """Module by module (a package's ``__init__`` counts as a module). Imports made only for
    type checking count too: two modules that need each other's types belong together."""
    graph = grimp.build_graph("selfinstruct", cache_dir=None)
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(module)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.c", imported="p.a")
    assert import_cycles(graph) == [["p.a", "p.b"]]
