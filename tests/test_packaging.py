"""What `pip install .` takes: every folder of app/ as a package, so setuptools warns of none.

With `packages = ["app"]` setuptools printed "Package would be ignored" for each folder of
data (templates, static files, locales) and for every subpackage, on every `make run`.
"""

import tomllib
from pathlib import Path

from setuptools import find_namespace_packages

ROOT = Path(__file__).resolve().parents[1]


def test_every_folder_of_the_app_is_a_package_setuptools_finds() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = set(find_namespace_packages(where=str(ROOT), include=setuptools["packages"]["find"]["include"]))
    folders = {
        ".".join(folder.relative_to(ROOT).parts)
        for folder in [ROOT / "app", *(ROOT / "app").rglob("*")]
        if folder.is_dir() and folder.name != "__pycache__" and any(path.is_file() for path in folder.iterdir())
    }
    assert {"app.web.ui.templates", "app.web.ui.static", "app.web.ui.locales"} <= folders
    assert folders - found == set()


def test_the_uis_files_are_package_data() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    patterns = data["app.web.ui"]
    ui = ROOT / "app" / "web" / "ui"
    for folder in ("templates", "static", "locales"):
        for path in (ui / folder).iterdir():
            assert any(path.match(f"*/{pattern}") for pattern in patterns), path
