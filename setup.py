"""Packaging: the top-level ``tasks/``, ``recipes/`` and ``reports/`` folders ship inside the package
as ``vpbench.tasks``, ``vpbench.recipes`` and ``vpbench.reports_data`` (with their READMEs, YAML
configs and the paper's CSV tables), so a wheel or a non-editable install works outside the checkout
(``vpbench/resources.py`` finds them). Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, find_packages, setup

BUNDLED = {"vpbench.tasks": "tasks", "vpbench.recipes": "recipes", "vpbench.reports_data": "reports"}
"""Package name → top-level folder shipped inside vpbench."""

DATA = ["**/*.md", "**/*.yaml", "**/*.yml", "**/*.json", "**/*.txt", "**/*.csv"]

packages = find_packages(include=["vpbench", "vpbench.*"])
package_dir = {}
for name, folder in BUNDLED.items():
    # namespace discovery: data-only folders (recipes/configs/...) are packages too, so no warnings
    packages += [name] + [f"{name}.{p}" for p in find_namespace_packages(folder, exclude=["*__pycache__*"])]
    package_dir[name] = folder

setup(packages=packages, package_dir=package_dir, package_data={name: DATA for name in BUNDLED})
