"""Packaging: the top-level ``tasks/`` and ``recipes/`` folders ship inside the package as
``vpbench.tasks`` and ``vpbench.recipes`` (with their READMEs and YAML configs), so a wheel or a
non-editable install works outside the checkout. Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, find_packages, setup

BUNDLED = {"vpbench.tasks": "tasks", "vpbench.recipes": "recipes"}
"""Package name → top-level folder shipped inside vpbench."""

DATA = ["**/*.md", "**/*.yaml", "**/*.yml", "**/*.json", "**/*.txt"]

packages = find_packages(include=["vpbench", "vpbench.*"])
package_dir = {}
for name, folder in BUNDLED.items():
    # namespace discovery: data-only folders (recipes/configs/...) are packages too, so no warnings
    packages += [name] + [f"{name}.{p}" for p in find_namespace_packages(folder, exclude=["*__pycache__*"])]
    package_dir[name] = folder

setup(packages=packages, package_dir=package_dir, package_data={name: DATA for name in BUNDLED})
