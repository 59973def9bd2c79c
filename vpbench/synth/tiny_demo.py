"""README command 1's main job: generated data → tiny model → stage-1 training → four-row comparison.

``python -m vpbench.synth.tiny_demo --out DIR`` (what scripts/demo.sh runs after installing):

1. ``vpbench synth motionbench --split train`` (training split, seed 0) and a held-out MotionBench dev
   split (``--n-videos``, seed 1: a different evaluation seed and a disjoint seed stream);
2. ``vpbench model tiny --variant small`` (the untrained model);
3. ``vpbench train sft --config recipes/configs/sft_contrastive/tiny_learn.yaml`` on the split;
4. ``vpbench run`` on the held-out split for ``dummy:first``, the untrained and the trained model (the
   latter with ``--perception-gap --set gap.scorer=motion_energy``), under the tiny config's frame
   sampling (``tiny_setup.eval_sets``), two at a time, each run's output in ``<run dir>.log``;
5. prints chance, ``dummy:first``, untrained, trained (each with its 95% cluster-bootstrap CI), the
   trained model's perception gap, and where every run directory and checkpoint is.

Running it again reuses what exists: finished data, model and training are kept (a training run is
redone from scratch when it did not finish), and `vpbench run` resumes into its run directories. A
folder made by a different setup (``demo_setup.json``: config bytes, clip frame rate, model preset,
sizes, overrides) is started clean instead of mixing the two.
Every step is a CLI call, so what the demo does is what a user types.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = ROOT / "recipes" / "configs" / "sft_contrastive" / "tiny_learn.yaml"
# How the training split's multiple-choice records answer (vpbench.synth.training.MC_ANSWER_STYLES): the true
# option's text then its letter, "It grows (B)"; with the bare letter the tiny model never binds what it sees to
# the option letter (tiny_learn.yaml's header has the measurements).
TRAIN_MC_ANSWER = "text_letter"
# Requests per `generate` call in the demo's evaluations: greedy float32 CPU batches give the responses of
# one-at-a-time generation (tests/test_e2e_hf.py); 32 halves the untrained model's run (32 new tokens each)
# against 8, with byte-identical records (measured on the demo's 429 questions, 2026-12-01).
EVAL_BATCH = 32


def _vpbench(*args: str, log: Path | None = None) -> None:
    """Run ``vpbench ARGS``; with ``log``, its output goes to that file (printed when it fails)."""
    cmd = [sys.executable, "-m", "vpbench", *args]
    print("+ vpbench " + " ".join(args) + (f"  (output: {log})" if log else ""), flush=True)
    if log is None:
        rc = subprocess.run(cmd, check=False).returncode
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w", encoding="utf-8") as fh:
            rc = subprocess.run(cmd, check=False, stdout=fh, stderr=subprocess.STDOUT).returncode
        if rc:
            print(log.read_text(encoding="utf-8", errors="replace")[-4000:], file=sys.stderr)
    if rc:
        raise SystemExit(f"tiny_demo: `vpbench {' '.join(args)}` failed with exit code {rc}"
                         + (f" (output: {log})" if log else ""))


def _metric(run_dir: Path, name: str, task: str = "motionbench") -> dict[str, Any]:
    res = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["results"][task]
    for m in res["metrics"]:
        if m["name"] == name:
            return m
    raise SystemExit(f"tiny_demo: {run_dir}/results.json has no {name!r} metric")


def _gap(run_dir: Path) -> dict[str, Any]:
    res = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["results"]["motionbench"]
    gap = res.get("perception_gap")
    if not gap:
        raise SystemExit(f"tiny_demo: {run_dir}/results.json has no perception gap")
    return gap


def _fmt(m: dict[str, Any]) -> str:
    return f"{100 * m['value']:6.2f} [{100 * m['ci_low']:5.1f}, {100 * m['ci_high']:5.1f}]"


def setup_fingerprint(n_train: int, n_eval: int, overrides: Sequence[str]) -> dict[str, Any]:
    """What the demo's folder depends on: the training config's bytes, the clips' frame rate and answer
    style, the tiny model preset, the split sizes and the overrides (a folder made by another setup is
    started clean)."""
    import hashlib

    from vpbench.models.tiny_qwen import PRESETS
    from vpbench.synth.training import TINY_CLIP_FPS

    return {"config_sha256": hashlib.sha256(CONFIG.read_bytes()).hexdigest(), "clip_fps": TINY_CLIP_FPS,
            "mc_answer": TRAIN_MC_ANSWER,
            "preset": json.loads(json.dumps(PRESETS["small"])), "n_train": n_train, "n_eval": n_eval,
            "overrides": list(overrides)}


def start_clean_if_stale(out: Path, fingerprint: dict[str, Any]) -> None:
    """Keep ``out`` when it was made by this setup; otherwise remove what the demo wrote there."""
    marker = out / "demo_setup.json"
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == fingerprint:
        return
    parts = [out / name for name in ("data", "tiny-qwen2.5-vl", "train", "runs", "logs")]
    if any(p.exists() for p in parts):
        print(f"{out} was made by a different demo setup (config, clip rate, model preset or sizes): starting clean")
        for p in parts:
            shutil.rmtree(p, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(fingerprint, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def prepare(out: Path, n_train: int, n_eval: int) -> dict[str, Path]:
    from vpbench.synth.training import TINY_CLIP_FPS

    paths = {"train": out / "data" / "train", "eval": out / "data" / "motionbench",
             "model": out / "tiny-qwen2.5-vl", "sft": out / "train" / "sft_contrastive"}
    fps = f"{TINY_CLIP_FPS:g}"  # see vpbench.synth.training.TINY_PROTOCOL
    _vpbench("synth", "motionbench", "--split", "train", "--n-videos", str(n_train), "--seed", "0", "--fps", fps,
             "--mc-answer", TRAIN_MC_ANSWER, "--output", str(paths["train"]))
    jobs = []  # the held-out split and the model, side by side (each mostly one core)
    if not (paths["eval"] / "video_info.meta.jsonl").is_file():
        jobs.append((("synth", "motionbench", "--n-videos", str(n_eval), "--seed", "1", "--fps", fps,
                      "--output", str(paths["eval"])), out / "logs" / "synth_eval_split.log"))
    if not (paths["model"] / "model.safetensors").is_file():
        shutil.rmtree(paths["model"], ignore_errors=True)
        jobs.append((("model", "tiny", "--variant", "small", "--seed", "0", "--output", str(paths["model"])),
                     out / "logs" / "model_tiny.log"))
    _side_by_side([lambda a=a, log=log: _vpbench(*a, log=log) for a, log in jobs])
    return paths


def _side_by_side(calls: Sequence[Any]) -> list[Any]:
    """Run the zero-argument ``calls`` two at a time; their results in order. The first error to happen
    (or Ctrl-C) is raised once the running call ends; calls not started by then never start."""
    import threading
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    stop = threading.Event()

    def run(call: Any) -> Any:
        if stop.is_set():  # an earlier call failed: this one does not start
            return None
        try:
            return call()
        except BaseException:
            stop.set()
            raise

    pool = ThreadPoolExecutor(max_workers=2)
    try:
        futures = [pool.submit(run, c) for c in calls]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f in done and f.exception() is not None]
        if failed:
            raise failed[0].exception()  # type: ignore[misc]
        return [f.result() for f in futures]
    finally:
        stop.set()  # Ctrl-C in the main thread: nothing new starts either
        pool.shutdown(wait=True, cancel_futures=True)


def train(paths: dict[str, Path], overrides: Sequence[str] = ()) -> tuple[Path, float]:
    """Train (or reuse a finished run); returns (export dir, training seconds, 0 when reused)."""
    export = paths["sft"] / "export"
    if (export / "vpbench_train.json").is_file():
        print(f"reusing the finished training run in {paths['sft']}")
        return export, 0.0
    shutil.rmtree(paths["sft"], ignore_errors=True)
    t0 = time.perf_counter()
    sets = [f"model.path={paths['model']}", f"data.manifest={paths['train'] / 'sft_qa.jsonl'}",
            f"train.output_dir={paths['sft']}", *overrides]
    _vpbench("train", "sft", "--config", str(CONFIG), *(a for s in sets for a in ("--set", s)))
    return export, time.perf_counter() - t0


def evaluate(model: str, data: Path, out: Path, sets: Sequence[str], gap: bool = False) -> Path:
    """``vpbench run`` of ``model`` on ``data`` into ``out``; its output goes to ``out``.log."""
    args = ["run", "--model", model, "--tasks", "motionbench", "--data-root", str(data), "--output", str(out),
            "--batch-size", str(EVAL_BATCH), "--device", "cpu"]
    for s in sets:
        args += ["--set", s]
    if gap:
        args += ["--perception-gap", "--set", "gap.scorer=motion_energy"]
    _vpbench(*args, log=out.with_name(out.name + ".log"))
    return out


def evaluate_all(jobs: Sequence[tuple[str, Path, dict[str, Any]]], data: Path, sets: Sequence[str]) -> list[Path]:
    """The evaluations, two at a time (`vpbench run` generates on one torch thread on CPU: two runs use
    both cores), each (model, run dir, evaluate kwargs); returns the run dirs in ``jobs`` order."""
    return _side_by_side([lambda m=m, o=o, kw=kw: evaluate(m, data, o, sets, **kw) for m, o, kw in jobs])


def main(argv: Sequence[str] | None = None) -> int:
    from vpbench.synth.tiny_setup import chance_accuracy, eval_sets, option_text_accuracy
    from vpbench.train.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="demo", help="folder for data, model, training and runs")
    ap.add_argument("--n-train", type=int, default=1800, help="training-split videos")
    ap.add_argument("--n-eval", type=int, default=300, help="held-out evaluation videos")
    ap.add_argument("overrides", nargs="*", help="training config overrides, e.g. train.max_steps=50")
    ns = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(ns.out)
    t0 = time.perf_counter()
    start_clean_if_stale(out, setup_fingerprint(ns.n_train, ns.n_eval, ns.overrides))
    paths = prepare(out, ns.n_train, ns.n_eval)
    export, train_s = train(paths, ns.overrides)
    sets = eval_sets(load_config(CONFIG).data)
    runs = out / "runs"
    # the two long runs first: dummy:first (seconds) takes the core the shorter one frees
    r_trained, r_untrained, r_first = evaluate_all(
        [(str(export), runs / "tiny_stage1", {"gap": True}), (str(paths["model"]), runs / "tiny_untrained", {}),
         ("dummy:first", runs / "dummy_first", {})], paths["eval"], sets)
    chance, n_dev = chance_accuracy(paths["eval"])
    print(f"\nMotionBench (generated, held-out: {n_dev} dev questions), Dev-AVG accuracy % [95% cluster-bootstrap CI]")
    print(f"  {'chance (uniform guess)':<34}{100 * chance:6.2f}")
    for label, run in (("dummy:first", r_first), ("tiny Qwen2.5-VL, untrained", r_untrained),
                       ("tiny Qwen2.5-VL, after stage 1", r_trained)):
        print(f"  {label:<34}{_fmt(_metric(run, 'Dev-AVG'))}")
    g = _gap(r_trained)
    print(f"  perception gap of the trained model (full - key-absent, motion_energy key frames): {_gap_text(g)}")
    seen, _ = option_text_accuracy(r_trained)
    print(f"  trained model's answers naming the true option's text: {100 * seen:.2f}% (Dev-AVG scores the letter "
          f"after it: seeing vs binding)")
    print(f"\ntraining split:  {paths['train']} (SFT {paths['train'] / 'sft.jsonl'}, RL {paths['train'] / 'rl.jsonl'})")
    print(f"held-out split:  {paths['eval']}")
    print(f"untrained model: {paths['model']}")
    print(f"stage-1 run:     {paths['sft']} (checkpoints/, metrics.jsonl; exported model {export})")
    print(f"eval runs:       {r_first}, {r_untrained}, {r_trained} (each run's output: <run dir>.log)")
    print(f"time: {time.perf_counter() - t0:.0f} s (training {train_s:.0f} s)")
    return 0


def _gap_text(gap: dict[str, Any]) -> str:
    d = gap.get("delta") or gap
    return f"{100 * d['value']:+.2f} [{100 * d['ci_low']:+.1f}, {100 * d['ci_high']:+.1f}]"


if __name__ == "__main__":
    raise SystemExit(main())
