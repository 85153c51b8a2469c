"""Packages made unimportable for a subprocess, as on a machine where they are not installed."""
from pathlib import Path


def without(packages, folder: Path) -> str:
    """A PYTHONPATH entry under which these packages are not installed: its `sitecustomize` marks them missing
    at start-up, so `import` raises ImportError and `importlib.util.find_spec` finds nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in packages))
    return str(folder)


def shadowed(packages, folder: Path) -> str:
    """A PYTHONPATH entry whose packages of these names raise ImportError; an entry before it (wheels installed
    for one run) can still provide them. Unlike a missing package, `find_spec` finds them: a library that probes
    before importing fails (etils' paths, and so JAX's compilation cache, on a shadowed tensorflow), so shadow
    only what such wheels may provide."""
    for name in packages:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    return str(folder)
