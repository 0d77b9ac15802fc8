"""The architecture is a contract: layers, no import cycles, public boundaries, small rooms.

docs/architecture.md says what each rule protects; these tests make a change that breaks one fail
in CI with the offending import, cycle, name or size in the message.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mlre"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
#: A module or function over the limits must say at its top why it is one piece.
WHY_ONE_PIECE = "one piece:"
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(root: Path = ROOT) -> subprocess.CompletedProcess:
    """Run import-linter with the contracts of ``root``'s pyproject.toml."""
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def module_cycles(package: str = "mlre") -> list[list[str]]:
    """Every group of modules that import each other in a circle, at module level or inside
    functions (strongly connected components of the import graph with more than one module)."""
    graph = grimp.build_graph(package, cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # iterative Tarjan: the graph is small, but recursion depth should not depend on it
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_import_contracts_are_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_contract_fails_when_the_service_imports_the_search(tmp_path):
    # the contract must be able to fail: a copy of the tree where serve imports search breaks it
    import shutil

    shutil.copytree(SRC, tmp_path / "src" / "mlre")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    guard = tmp_path / "src" / "mlre" / "serve" / "__init__.py"
    guard.write_text(guard.read_text() + "\nimport mlre.search  # noqa: F401\n")
    env_path = str(tmp_path / "src")
    result = subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "mlre.serve is not allowed to import mlre.search" in result.stdout


def test_no_module_imports_in_a_circle():
    assert module_cycles() == []


def _imported_private_names() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlre"):
                found += [
                    f"{path.relative_to(SRC)}:{node.lineno} imports {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    return found


def test_no_module_imports_another_modules_private_names():
    assert _imported_private_names() == []


def _says_why(lines: list[str], first: int) -> bool:
    """Whether the comment or docstring at the top of a block says why it is one piece."""
    head = " ".join(lines[first : first + 12]).lower()
    return WHY_ONE_PIECE in head


def _oversized() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        name = str(path.relative_to(SRC))
        if len(lines) > MAX_MODULE_LINES and not _says_why(lines, 0):
            found.append(f"{name}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES and not _says_why(lines, node.lineno - 1):
                    found.append(f"{name}:{node.lineno} {node.name}(): {length} lines")
    return found


def test_modules_and_functions_are_small_or_say_why():
    assert _oversized() == []


@pytest.mark.parametrize("layer", ["serve"])
def test_the_service_starts_without_the_search(layer: str):
    # what the contract promises, seen from a fresh interpreter: serving loads no search code
    code = (
        f"import sys, mlre.{layer}.app; "
        "bad = sorted(m for m in sys.modules if m.startswith(('mlre.search', 'mlre.evaluate', "
        "'mlre.report'))); print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
