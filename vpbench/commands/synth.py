"""`vpbench synth`: generated data in a benchmark's native format.

Each generated folder gets a ``.vpbench-synth.json`` marker (task, seed). Generating another
seed into a folder that holds data is refused (the two would mix) unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from vpbench.commands._base import command, positive_float, positive_int

ORDER = 60
MARKER = ".vpbench-synth.json"


def marker_for(task: str, seed: int, fps: float | None = None) -> dict:
    """What a generated folder's marker holds (``fps`` only when the clips' frame rate was chosen)."""
    return {"task": task, "seed": seed} | ({"fps": fps} if fps else {})


def guard_target(target: Path, task: str, seed: int, overwrite: bool, fps: float | None = None) -> None:
    """Refuse (or, with ``overwrite``, empty) a non-empty folder that holds other data."""
    from vpbench.errors import ConfigError

    if not target.is_dir() or not any(target.iterdir()):
        return
    marker = target / MARKER
    prev = json.loads(marker.read_text()) if marker.is_file() else None
    if prev == marker_for(task, seed, fps):
        return  # the same data again: regenerated in place, identically
    if overwrite:
        shutil.rmtree(target)
        return
    held = (f"{prev['task']} data generated with --seed {prev['seed']}"
            + (f" --fps {prev['fps']:g}" if prev.get("fps") else "") if prev else "files not written by `vpbench synth`")
    new = f"{task} --seed {seed}" + (f" --fps {fps:g}" if fps else "")
    raise ConfigError(f"{target} already holds {held}; writing {new} there would mix the two. "
                      f"Use a new --output, or --overwrite to delete {target} first")


def _synth(ns: argparse.Namespace) -> int:
    from vpbench.registry import get_task, resolve_task_list

    if ns.split != "eval" or ns.n_videos or ns.fps or ns.mc_answer:  # training split / sized or timed evaluation split (synth/command.py)
        from vpbench.synth.command import synth_split
        return synth_split(ns)

    names = resolve_task_list(ns.task)
    out = Path(ns.output)
    done: set[str] = set()
    for name in names:
        task = get_task(name)
        if task.synth is None:
            print(f"{name}: no generator", file=sys.stderr)
            return 2
        target = out / task.data_folder if len(names) > 1 else out
        if str(target) in done:  # a task variant sharing another task's files
            continue
        guard_target(target, task.data_folder, ns.seed, ns.overwrite)
        task.synth(target, ns.seed)
        (target / MARKER).write_text(json.dumps(marker_for(task.data_folder, ns.seed)) + "\n")
        done.add(str(target))
        print(f"{name}: generated data in {target.resolve()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    g = command(sub, "synth", _synth, help="write generated data in a benchmark's native format")
    g.add_argument("task", help="task name or 'all'")
    g.add_argument("--output", required=True, help="data folder (with 'all': a parent with one folder per task)")
    g.add_argument("--seed", type=int, default=0, help="generator seed")
    g.add_argument("--overwrite", action="store_true",
                   help="delete the output folder first when it holds other data (another seed, other files)")
    g.add_argument("--split", choices=["eval", "train"], default="eval",
                   help="train: clips + SFT/RL manifests from seeds disjoint from every evaluation split")
    g.add_argument("--n-videos", type=positive_int, help="number of videos (motionbench)")
    g.add_argument("--fps", type=positive_float,
                   help="frame rate written into the clips (motionbench; default 10): the same 30 rendered frames, "
                        "played at this rate")
    g.add_argument("--mc-answer", choices=["letter", "text_letter"],
                   help="--split train: how multiple-choice SFT records answer: the option letter (default) or the "
                        "true option's text then its letter, 'It grows (B)' (both MotionBench parsers read 'B')")
