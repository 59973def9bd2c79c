"""Training recipes (single-file scripts) and their YAML configs; shipped in the wheel as
``vpbench.recipes`` (see vpbench/resources.py). Run them with ``vpbench train <stage>``."""
