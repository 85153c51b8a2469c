"""What a package needs besides its code: the license it declares, how to cite it, one version everywhere,
and console scripts that name real commands."""
import hashlib
import importlib
import re
import tomllib
from pathlib import Path

import yaml

import leaf_ssl

REPO = Path(__file__).resolve().parent.parent
# SHA-256 of the Apache License 2.0 as the Apache Software Foundation publishes it (LICENSE-2.0.txt).
APACHE_2_SHA256 = "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4"


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_the_license_file_is_the_apache_2_text_pyproject_declares():
    assert _pyproject()["project"]["license"] == "Apache-2.0"
    assert hashlib.sha256((REPO / "LICENSE").read_bytes()).hexdigest() == APACHE_2_SHA256


def test_one_version_in_the_package_pyproject_changelog_and_citation():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    newest = re.search(r"^## (\S+)", (REPO / "CHANGELOG.md").read_text(), re.MULTILINE).group(1)
    assert leaf_ssl.__version__ == _pyproject()["project"]["version"] == newest == citation["version"]
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "Apache-2.0"
    assert citation["preferred-citation"]["title"] == "Learning neural audio features without supervision"


def test_every_console_script_names_a_command_line_function():
    scripts = _pyproject()["project"]["scripts"]
    assert {"leaf-ssl-train", "leaf-ssl-probe", "leaf-ssl-embed", "leaf-ssl-analyze", "leaf-ssl-tables"} <= set(scripts)
    for name, target in scripts.items():
        module, function = target.split(":")
        assert module.startswith("leaf_ssl.cli."), name
        assert callable(getattr(importlib.import_module(module), function)), name
