"""Where the bundled task definitions and training recipes live.

In a checkout they are the top-level ``tasks/`` and ``recipes/`` folders; in a wheel (or a
non-editable ``pip install .``) setup.py ships them inside the package as ``vpbench/tasks`` and
``vpbench/recipes``. ``VPBENCH_TASKS_DIR`` / ``VPBENCH_RECIPES_DIR`` point elsewhere.
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
