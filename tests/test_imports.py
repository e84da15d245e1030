"""The package's import structure: no import cycles, and a command line that starts without torch."""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "visionzoo"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST):
    """Every import statement, at module level and inside functions, except those under `if TYPE_CHECKING:`
    (never executed)."""
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking_block(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def import_graph() -> dict[str, set[str]]:
    """visionzoo module -> the visionzoo modules it imports (`from pkg import mod` counts as importing
    mod)."""
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        edges = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in files else module
                           for a in node.names]
            edges |= {t for t in targets if t in files and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "visionzoo.registry" in graph["visionzoo.factory"]  # module level, relative
    assert "visionzoo.validation" in graph["visionzoo.cli.validate"]  # inside `run`
    assert "visionzoo.models.vit" in graph["visionzoo.models"]  # `from . import vit` in a package


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _imports_visionzoo(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return bool(node.level) or (node.module or "").split(".")[0] == "visionzoo"
    return isinstance(node, ast.Import) and any(a.name.split(".")[0] == "visionzoo" for a in node.names)


def test_the_library_imports_its_own_modules_at_module_level():
    # Function-level imports hide the real dependencies (and cycles); they are kept for heavy optional
    # packages, and for the command modules, whose `run` loads the library so that the parser starts fast.
    inside_functions = []
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        if name.startswith("visionzoo.cli."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                inside_functions += [f"{name}:{inner.lineno} in {node.name}()" for inner in ast.walk(node)
                                     if _imports_visionzoo(inner)]
    assert not inside_functions, f"visionzoo imports inside functions: {inside_functions}"


def test_the_command_line_parser_and_help_load_no_torch():
    code = ("import sys\n"
            "from visionzoo.cli.main import build_parser\n"
            "build_parser()\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'numpy'))\n"
            "print(heavy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    for args in (["--help"], ["validate", "--model"], ["benchmark", "--model", "x", "--batch-size", "0"]):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "visionzoo", *args],
                              capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(SRC)})
        imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                    if "import time:" in line]
        assert "visionzoo.cli.main" in imported and "torch" not in imported, args
        assert done.returncode == (0 if args == ["--help"] else 2), done.stderr[-2000:]
