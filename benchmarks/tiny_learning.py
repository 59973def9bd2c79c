"""Does the tiny stage-1 setup learn from pixels? Learning curve, perception gap, shuffled-frames control.

Trains recipes/configs/sft_contrastive/tiny_learn.yaml on a generated training split (seed 0) with a
checkpoint every ``--every`` steps, evaluates each checkpoint on a held-out generated MotionBench dev
split (seed 1) through `vpbench run` (official parser, cluster-bootstrap CIs, the config's frame
sampling), runs the perception gap of the final model (``gap.scorer=motion_energy``), then repeats the
same training on the split with frames shuffled across videos (``tiny_setup.shuffle_frames_across_videos``)
and evaluates that model. Prints the curve (accuracy and per-category accuracy vs steps), chance,
training CPU and wall time, and last the margin over chance (goal: >= 30 points).

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/tiny_learning.py --out runs/bench/tiny_learning
    # the curve of tiny_learn.yaml's header to 1,800 steps (about 10.5 min of training on 2 cores):
    ... benchmarks/tiny_learning.py --out runs/bench/tiny_1800 --steps 1800 --every 200 --no-control

Steps are reused when their outputs exist (``--out`` persists); delete the folder to start over.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vpbench.synth import tiny_demo  # noqa: E402
from vpbench.synth.tiny_setup import (chance_accuracy, eval_sets, export_checkpoint,  # noqa: E402
                                      option_text_accuracy, shuffle_frames_across_videos)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _train(paths: dict[str, Path], overrides: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one training run (0, 0 when reused)."""
    cpu0 = _children_cpu()
    _, wall = tiny_demo.train(paths, overrides)
    return (wall, _children_cpu() - cpu0) if wall else (0.0, 0.0)


def _categories(run: Path) -> str:
    res = json.loads((run / "results.json").read_text())["results"]["motionbench"]
    rows = res["by_group"]["question_type (dev)"]
    return " ".join(f"{m['name']}={100 * m['value']:.0f}" for m in rows)


def main() -> int:
    from vpbench.train.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/bench/tiny_learning")
    ap.add_argument("--n-train", type=int, default=1800)
    ap.add_argument("--n-eval", type=int, default=300)
    ap.add_argument("--every", type=int, default=100, help="checkpoint / evaluation interval in steps")
    ap.add_argument("--steps", type=int, help="train.max_steps (default: the config's)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="training config override, repeatable (e.g. train.batch_size=32)")
    ap.add_argument("--no-control", action="store_true", help="skip the shuffled-frames control")
    ns = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(ns.out)
    steps = [*ns.sets, *([f"train.max_steps={ns.steps}"] if ns.steps else [])]
    cfg = load_config(tiny_demo.CONFIG, dict(s.split("=", 1) for s in steps))
    sets = eval_sets(cfg.data)
    paths = tiny_demo.prepare(out, ns.n_train, ns.n_eval)
    wall, cpu = _train(paths, [f"train.save_every={ns.every}", *steps])
    chance, n_dev = chance_accuracy(paths["eval"])
    print(f"\ntraining: {cfg.train.max_steps} steps, wall {wall:.0f} s, CPU {cpu:.0f} s (0 = reused; "
          f"machine load affects wall)")
    print(f"held-out: {n_dev} dev questions; chance {100 * chance:.2f}")
    curve = []
    ckpts = sorted((paths["sft"] / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
    for ckpt in ckpts:
        step = int(ckpt.name.split("_")[1])
        model = out / "curve" / f"model_{step}"
        if not (model / "config.json").is_file():
            export_checkpoint(ckpt, paths["model"], model)
        run = tiny_demo.evaluate(str(model), paths["eval"], out / "curve" / f"run_{step}", sets,
                                 gap=step == cfg.train.max_steps)
        curve.append((step, tiny_demo._metric(run, "Dev-AVG"), _categories(run), run))
    print("\nlearning curve (Dev-AVG % [95% CI], per category; option text: the response names the true option)")
    for step, m, cats, run in curve:
        print(f"  step {step:5d}  {tiny_demo._fmt(m)}  {cats}  option text {100 * option_text_accuracy(run)[0]:.1f}")
    final_run = curve[-1][3]
    print(f"perception gap at step {curve[-1][0]}: {tiny_demo._gap_text(tiny_demo._gap(final_run))}")
    if not ns.no_control:
        shuffled = out / "data" / "train_shuffled"
        if not (shuffled / "split.json").is_file():
            shuffle_frames_across_videos(paths["train"], shuffled, seed=0)
        cpaths = {**paths, "train": shuffled, "sft": out / "train" / "sft_contrastive_shuffled"}
        _train(cpaths, steps)
        run = tiny_demo.evaluate(str(cpaths["sft"] / "export"), paths["eval"], out / "runs" / "control_shuffled", sets)
        m = tiny_demo._metric(run, "Dev-AVG")
        print(f"control (frames shuffled across videos), step {cfg.train.max_steps}: {tiny_demo._fmt(m)}  "
              f"{_categories(run)}")
    final = curve[-1][1]
    print(f"accuracy - chance at step {curve[-1][0]}: {100 * (final['value'] - chance):+.2f} points (goal >= +30)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
