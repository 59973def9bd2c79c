"""Where the bundled task definitions, training recipes and reports data live.

In a checkout they are the top-level ``tasks/``, ``recipes/`` and ``reports/`` folders; in a wheel
(or a non-editable ``pip install .``) setup.py ships them inside the package as ``vpbench/tasks``,
``vpbench/recipes`` and ``vpbench/reports_data``. ``VPBENCH_TASKS_DIR`` / ``VPBENCH_RECIPES_DIR`` /
``VPBENCH_REPORTS_DIR`` point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from vpbench.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent


def _bundled(name: str, env: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env])
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):  # installed, then checkout
        if (candidate / "__init__.py").is_file():
            return candidate
    raise ConfigError(f"the bundled {name}/ folder is missing (looked in {_PACKAGE / name} and "
                      f"{_PACKAGE.parent / name}): reinstall vpbench, or set {env} to a vpbench checkout's {name}/")


def reports_dir() -> Path:
    """``reports/``: the paper's numbers, table specs, model configs and ablation grids of
    ``vpbench reproduce`` (installed as ``vpbench/reports_data``; a data folder, no ``__init__.py``)."""
    if os.environ.get("VPBENCH_REPORTS_DIR"):
        return Path(os.environ["VPBENCH_REPORTS_DIR"])
    for candidate in (_PACKAGE / "reports_data", _PACKAGE.parent / "reports"):  # installed, then checkout
        if (candidate / "tables.yaml").is_file():
            return candidate
    raise ConfigError(f"the bundled reports/ folder is missing (looked in {_PACKAGE / 'reports_data'} and "
                      f"{_PACKAGE.parent / 'reports'}): reinstall vpbench, or set VPBENCH_REPORTS_DIR to a "
                      "vpbench checkout's reports/")


def bundled_path(path: str | Path) -> Path:
    """A path as the bundled configs spell it: ``recipes/...`` and ``reports/...`` in this checkout or
    installed vpbench; absolute paths as given; any other relative path from the working directory."""
    given = Path(path)
    if given.is_absolute() or not given.parts:
        return given
    head, rest = given.parts[0], given.parts[1:]
    if head == "recipes":
        return recipes_dir().joinpath(*rest)
    if head == "reports":
        return reports_dir().joinpath(*rest)
    return given.resolve()


def tasks_dir() -> Path:
    return _bundled("tasks", "VPBENCH_TASKS_DIR")


def recipes_dir() -> Path:
    return _bundled("recipes", "VPBENCH_RECIPES_DIR")


def recipe_script(name: str) -> Path:
    """``recipes/<name>.py``, found in a checkout or an installed vpbench."""
    path = recipes_dir() / f"{name}.py"
    if not path.is_file():
        raise ConfigError(f"recipe not found: {path}")
    return path


def resolve_recipe_config(path: str | Path) -> Path:
    """A config path as given; when it does not exist and reads ``recipes/...`` (the README's
    spelling), the bundled copy, so the documented commands also work outside a checkout."""
    given = Path(path)
    if given.exists():
        return given
    parts = given.parts
    if len(parts) > 1 and parts[0] == "recipes":
        bundled = recipes_dir().joinpath(*parts[1:])
        if bundled.exists():
            return bundled
    raise ConfigError(f"config file not found: {given} (bundled configs: {recipes_dir() / 'configs'})")
