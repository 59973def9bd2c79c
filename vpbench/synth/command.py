"""`vpbench synth TASK --split train|eval --n-videos N [--fps F]`: the generated splits beyond a task's default.

``--split train`` writes a training split (``vpbench.synth.training``: clips + SFT/RL manifests,
seeds disjoint from every evaluation split); ``--split eval --n-videos N`` writes an evaluation
split of N videos in the task's native format (the default `vpbench synth TASK` size is small).
``--fps`` sets the frame rate written into the clips (the same rendered frames played faster or
slower; scene motion is defined per frame). Only MotionBench has these generators so far.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vpbench.errors import ConfigError

SPLIT_TASKS = ("motionbench",)


def synth_split(ns: argparse.Namespace) -> int:
    if ns.task not in SPLIT_TASKS:
        raise ConfigError(f"vpbench synth {ns.task}: --split/--n-videos exist for {', '.join(SPLIT_TASKS)} only; "
                          f"drop them to write {ns.task}'s default generated data")
    out = Path(ns.output)
    from vpbench.synth.scenes import Canvas

    canvas = Canvas(fps=ns.fps) if ns.fps else Canvas()
    if ns.mc_answer and ns.split != "train":
        raise ConfigError("vpbench synth: --mc-answer sets the answers of a training split's SFT records; "
                          "add --split train, or drop --mc-answer (evaluation splits hold letters only)")
    if ns.split == "train":
        from vpbench.synth.training import synth_training_split

        n = ns.n_videos or 600
        path = synth_training_split(out, seed=ns.seed, n_videos=n, canvas=canvas,
                                    workers=min(2, os.cpu_count() or 1), mc_answer=ns.mc_answer or "letter")
        print(f"{ns.task}: training split ({n} videos at {canvas.fps:g} fps, seed {ns.seed}, multiple-choice answers: "
              f"{ns.mc_answer or 'letter'}) in {out}: SFT manifest {path}, "
              f"RL manifest {out / 'rl.jsonl'}")
        return 0
    from vpbench.commands.synth import MARKER, guard_target, marker_for
    from vpbench.synth.motionbench import synth_motionbench

    guard_target(out, ns.task, ns.seed, ns.overwrite, ns.fps)
    synth_motionbench(out, seed=ns.seed, n_videos=ns.n_videos or 12, canvas=canvas)
    (out / MARKER).write_text(json.dumps(marker_for(ns.task, ns.seed, ns.fps)) + "\n")
    print(f"{ns.task}: generated data in {out.resolve()}", file=sys.stdout)
    return 0
