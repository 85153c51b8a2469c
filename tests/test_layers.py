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
ENTRY_POINTS = {"train.py", "probe.py", "embed.py", "analyze.py", "tables.py", "grid.py", "hear.py", "bench/__main__.py"}


def _room(module: str) -> str:
    """'leaf_ssl.training.loop' -> 'training'; 'leaf_ssl.progress' -> 'progress'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path):
    """(imported module, line, inside an `if __name__ == "__main__":` block) of every leaf_ssl import."""
    tree = ast.parse(path.read_text())
    main_blocks = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
    in_main = {id(child) for block in main_blocks for child in ast.walk(block)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("leaf_ssl"):
            names = [node.module] if node.module != "leaf_ssl" else [f"leaf_ssl.{a.name}" for a in node.names]
            yield from ((name, node.lineno, id(node) in in_main) for name in names)
        elif isinstance(node, ast.Import):
            yield from ((a.name, node.lineno, id(node) in in_main) for a in node.names if a.name.startswith("leaf_ssl"))


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
        for module, line, in_main in _imports(path):
            target = _room(module)
            if target and not in_main and FLOORS.get(target, 99) > FLOORS[room]:
                upward.append(f"{relative}:{line} imports {module}")
    assert not upward, "\n".join(upward)


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
