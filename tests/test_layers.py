"""The package's layering, read from its source: imports point down, command lines stay on top."""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "leaf_ssl"
# Floors, bottom first: a module may import its own floor and those below it.
FLOORS = {"progress": 0, "frontends": 0, "encoders": 0, "data": 0, "model": 1, "training": 2, "inference": 3,
          "evaluation": 4, "bench": 5, "cli": 6}
# `python -m` entry points: each imports its command line, only when run as a program.
ENTRY_POINTS = {"train.py", "probe.py", "embed.py", "analyze.py", "tables.py", "grid.py", "hear.py", "supervise.py",
                "bench/__main__.py",
                "data/demo/__main__.py", "data/audioset/__main__.py", "data/folder/__main__.py",
                "data/pack/__main__.py"}


def _room(module: str) -> str:
    """'leaf_ssl.training.loop' -> 'training'; 'leaf_ssl.progress' -> 'progress'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path):
    """(imported module, line) of every leaf_ssl import, at any depth of the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("leaf_ssl"):
            names = [node.module] if node.module != "leaf_ssl" else [f"leaf_ssl.{a.name}" for a in node.names]
            yield from ((name, node.lineno) for name in names)
        elif isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names if a.name.startswith("leaf_ssl"))


def _module_name(relative: str) -> str:
    """'data/demo/__init__.py' -> 'leaf_ssl.data.demo'; 'progress.py' -> 'leaf_ssl.progress'."""
    parts = relative.removesuffix(".py").split("/")
    return ".".join(["leaf_ssl", *(parts[:-1] if parts[-1] == "__init__" else parts)])


def _library_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative not in ENTRY_POINTS and relative != "__init__.py":
            yield relative, path


def test_every_import_points_down_or_sideways():
    upward = []
    for relative, path in _library_modules():
        room = relative.split("/")[0].removesuffix(".py")
        assert room in FLOORS, f"{relative} is in no known floor: add its folder to FLOORS"
        for module, line in _imports(path):
            target = _room(module)
            if target and FLOORS.get(target, 99) > FLOORS[room]:
                upward.append(f"{relative}:{line} imports {module}")
    assert not upward, "\n".join(upward)


def test_no_module_imports_one_that_imports_it_back():
    """Import circles over the package's modules (entry points included), found as strongly connected
    components of the import graph; an import of a package counts as one of its `__init__`."""
    paths = {_module_name(p.relative_to(PACKAGE).as_posix()): p for p in sorted(PACKAGE.rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("leaf_ssl"):
                # `from leaf_ssl.data import demo` imports the module demo, `from leaf_ssl.data.demo import x` a name.
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths else node.module
                            for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("leaf_ssl")}
        graph[name] = {target for target in targets if target in paths and target != name}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_command_line_parsing_lives_in_cli_only():
    offenders = []
    for relative, path in _library_modules():
        if relative.startswith("cli/"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{relative} imports {name}" for name in names
                          if name == "argparse" or name.startswith(("absl.flags", "absl.app", "ml_collections.config_flags"))]
    assert not offenders, "\n".join(offenders)


def test_the_python_and_hear_apis_load_without_tensorflow():
    code = ("import sys, leaf_ssl, leaf_ssl.hear; from leaf_ssl.inference import embedder, files;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow')[:3])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
