"""The wheel works outside the checkout: tasks/, recipes/ and reports/ ship inside the package.

The default test builds the wheel, installs it (no deps) into a folder under /tmp and runs
`python -m vpbench` from another directory with only that folder on the path; the slow test
installs it into a fresh venv (torch==2.13.0 first, then the pinned core deps) and runs the
`vpbench` console script. `.ci/run` calls the slow one explicitly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("vpbench", "tasks", "recipes", "reports", "pyproject.toml", "setup.py", "README.md")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the sources (the checkout gets no build/ or egg-info)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(
            REPO / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                        if (REPO / name).is_dir() else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(base / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    (whl,) = (base / "dist").glob("vpbench-*.whl")
    return whl


def _replay_file(data: Path, out: Path) -> Path:
    from vpbench.models.replay import write_replay
    from vpbench.registry import get_task

    samples = get_task("motionbench").load_samples(data)
    write_replay(out, "motionbench", [(s.id, "A") for s in samples])
    return out


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd}: rc={done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _check_commands(vp: list[str], cwd: Path, env: dict[str, str], site: Path) -> None:
    """tasks, synth, a replay run and `train sft --help` from a directory outside the checkout."""
    where = _run([*vp[:-2], "-c", "import vpbench; print(vpbench.__file__)"] if vp[-2:] == ["-m", "vpbench"]
                 else [str(Path(vp[0]).parent / "python"), "-c", "import vpbench; print(vpbench.__file__)"], cwd, env)
    assert Path(where.stdout.strip()).resolve().is_relative_to(site.resolve()), where.stdout
    tasks = _run([*vp, "tasks"], cwd, env).stdout
    assert tasks.split()[0] == "motionbench" and "videommmu_adaptation_qonly" in tasks
    _run([*vp, "synth", "motionbench", "--output", "data/mb"], cwd, env)
    replay = _replay_file(cwd / "data/mb", cwd / "preds.jsonl")
    _run([*vp, "run", "--model", f"replay:{replay}", "--tasks", "motionbench", "--data-root", "data/mb",
          "--output", "runs/replay"], cwd, env)
    result = json.loads((cwd / "runs/replay/motionbench/result.json").read_text())
    assert result["counts"]["n_evaluated"] == len(replay.read_text().splitlines())
    helptext = _run([*vp, "train", "sft", "--help"], cwd, env).stdout
    assert "--config" in helptext and "--set KEY=VALUE" in helptext
    version = _run([*vp, "--version"], cwd, env).stdout
    assert version.startswith("vpbench ")
    plan = _run([*vp, "reproduce", "table1", "--plan", "--runs", "runs/t1"], cwd, env).stdout
    assert "table1 (tiny scale): 4 steps — 0 done, 4 to run, 0 cannot run here" in plan, plan
    assert f"vpbench synth motionbench --output {cwd.resolve() / 'runs/t1/data/motionbench'} --seed 0" in plan
    grid = _run([*vp, "reproduce", "table5", "--plan", "--runs", "runs/t5"], cwd, env).stdout
    config = site.resolve() / "vpbench/reports_data/configs/train/sft_contrastive_tiny_grid.yaml"
    assert f"vpbench train sft --config {config} " in grid, grid  # the grid's recipe configs ship too
    assert "[to run] table5/C/seed0/grpo" in grid and "0 cannot run here" in grid


def test_wheel_ships_tasks_and_recipes_and_runs_outside_checkout(wheel: Path, tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for must in ("vpbench/tasks/__init__.py", "vpbench/tasks/motionbench/task.py", "vpbench/tasks/motionbench/README.md",
                 "vpbench/recipes/sft_contrastive.py", "vpbench/recipes/configs/sft_contrastive/tiny.yaml",
                 "vpbench/recipes/configs/accelerate/fsdp.yaml", "vpbench/commands/run.py",
                 "vpbench/reports_data/tables.yaml", "vpbench/reports_data/paper/table5.csv",
                 "vpbench/reports_data/grids/table5_tiny.yaml", "vpbench/reports_data/configs/models_tiny.yaml"):
        assert must in names, must
    assert not any(n.startswith(("tasks/", "recipes/", "reports/")) for n in names)  # no generic top-level packages
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # the installed copy first; deps from this interpreter
    for var in ("VPBENCH_TASKS_DIR", "VPBENCH_RECIPES_DIR", "VPBENCH_REPORTS_DIR"):
        env.pop(var, None)
    _check_commands([sys.executable, "-m", "vpbench"], work, env, site)


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_console_script(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True, timeout=1800)
    subprocess.run([*pip, "-c", str(REPO / "constraints.txt"), str(wheel)], check=True, timeout=1800)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VPBENCH_TASKS_DIR", "VPBENCH_RECIPES_DIR",
                                                          "VPBENCH_REPORTS_DIR", "VIRTUAL_ENV")}
    site = next((venv / "lib").glob("python*/site-packages"))
    _check_commands([str(venv / "bin" / "vpbench")], work, env, site)


IMPORT_NAMES = {"pillow": "PIL", "pyyaml": "yaml"}
INDIRECT = {"pyarrow": r"\.(read|to)_parquet\(",  # pandas' parquet engine
            "safetensors": r"safe_serialization=True"}  # transformers' weights format


def test_every_declared_core_dependency_is_imported_by_the_library() -> None:
    """A dependency nobody imports (rich/tabulate were) is dropped, not carried."""
    import re
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0].lower() for d in deps]
    source = "\n".join(p.read_text() for d in ("vpbench", "tasks", "recipes") for p in (REPO / d).rglob("*.py"))
    for name in names:
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        used = rf"^\s*(import|from) {module}\b" if name not in INDIRECT else INDIRECT[name]
        assert re.search(used, source, re.M), f"{name} is declared but never imported"
