"""The tiny config of configs/tiny.py, loaded the way the train entry point loads config files."""
import importlib.util
from pathlib import Path

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def load_config_file(name: str, arg: str | None = None):
    spec = importlib.util.spec_from_file_location(f"configs_{Path(name).stem}", CONFIGS / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def tiny_config(frontend: str = "leaf"):
    return load_config_file("tiny.py", frontend)
