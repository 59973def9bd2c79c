"""Name → definition registries, resolved lazily (nothing is imported until asked for).

Tasks live in the repository's ``tasks/`` folder (one sub-folder per benchmark; shipped inside
the wheel as ``vpbench/tasks``, see vpbench/resources.py) and are loaded as the package
``vpbench_tasks`` by file location, so the library never ships a generic top-level ``tasks``
package. ``VPBENCH_TASKS_DIR`` points elsewhere.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from vpbench.config import suggest
from vpbench.errors import ConfigError
from vpbench.task import Task

TASKS: dict[str, str] = {
    "motionbench": "motionbench.task:TASK",
    "vru_accident_vqa": "vru_accident_vqa.task:TASK",
    "vru_accident_caption": "vru_accident_caption.task:TASK",
    "mvbench": "mvbench.task:TASK",
    "videomme": "videomme.task:TASK",
    "vsibench": "vsibench.task:TASK",
    "videommmu": "videommmu.task:TASK",
    "videommmu_adaptation_qonly": "videommmu.task:TASK_QONLY",
}
"""Registered tasks: name → "<module under tasks/>:<attribute>"."""

DERIVED: dict[str, tuple[tuple[str, ...], str]] = {
    "videommmu/Δknowledge": (("videommmu", "videommmu_adaptation_qonly"), "vpbench.metrics.videommmu:delta_knowledge"),
}
"""Metrics computed across tasks of one run: name → (tasks whose records it takes, "module:function").
The function is called as fn(records_of_task_1, records_of_task_2, ..., stats) -> MetricResult."""

PACKAGE = "vpbench_tasks"


def tasks_dir() -> Path:
    from vpbench.resources import tasks_dir as bundled

    return bundled()


def _ensure_package() -> None:
    if PACKAGE in sys.modules:
        return
    root = tasks_dir()
    init = root / "__init__.py"
    if not init.exists():
        raise ConfigError(
            f"task folder not found at {root}: set VPBENCH_TASKS_DIR to the repository's tasks/ folder"
        )
    spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[str(root)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)


def derived_metric(name: str):
    module, _, attr = DERIVED[name][1].partition(":")
    return getattr(importlib.import_module(module), attr)


def task_names() -> list[str]:
    return list(TASKS)


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"unknown task '{name}'{suggest(name, TASKS)}; registered: {', '.join(TASKS)}")
    _ensure_package()
    module_name, _, attr = TASKS[name].partition(":")
    module = importlib.import_module(f"{PACKAGE}.{module_name}")
    task = getattr(module, attr)
    if not isinstance(task, Task) or task.name != name:
        raise ConfigError(f"tasks/{module_name}.py:{attr} is not the Task named '{name}'")
    return task


def resolve_task_list(spec: str) -> list[str]:
    """'motionbench,vru_accident_vqa' or 'all' → names, each checked."""
    names = list(TASKS) if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise ConfigError("--tasks is empty: name at least one task (see `vpbench tasks`)")
    for n in names:
        if n not in TASKS:
            raise ConfigError(f"unknown task '{n}'{suggest(n, TASKS)}; registered: {', '.join(TASKS)}")
    return names
