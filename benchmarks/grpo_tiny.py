"""What stage 2 (Comparative GRPO) does on the tiny setup, against its stage-1 start.

Pipeline (all offline, CPU by default):

1. data: generated MotionBench clips (``--train-videos``, seed 0) crafted by ``vpbench data craft`` into
   SFT and RL manifests under the recipes' sampling protocol (4 fps, 56x56); a tiny random NLI model;
2. stage 1: a tiny Qwen2.5-VL (``vpbench model tiny``) trained by ``recipes/sft_contrastive.py`` (tiny
   config, ``--sft-steps``) on the crafted SFT manifest, or ``--stage1 DIR`` (any stage-1 export);
3. stage 2: ``recipes/grpo_comparative.py`` (tiny config, ``--steps``) from the stage-1 export;
4. held-out evaluation: generated MotionBench (``--eval-videos``, seed 1, never trained on), both
   exports through ``vpbench run --perception-gap`` (key frames: ``motion_energy``; the training
   sampling protocol: 4 fps, 56x56), greedy decoding.

Reported (paired over the same held-out questions, cluster-bootstrap 95% CIs, clusters = videos):
MotionBench accuracy of each stage and Δ(stage 2 − stage 1); the perception gap
Δ(full − key-absent) of each stage and its change. The last line is the stage-2 − stage-1 accuracy
difference. A measured number on a tiny random-start model: it says what the loop does to this
model, not what it does to Qwen2.5-VL-7B.

    HF_HUB_OFFLINE=1 python benchmarks/grpo_tiny.py --out runs/bench_grpo_tiny
    python benchmarks/grpo_tiny.py --stage1 runs/tiny/sft_contrastive/export --steps 20
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROTOCOL = {"fps": 4.0, "max_frames": 16, "min_pixels": 3136, "max_pixels": 3136}


def _recipe(file: str):
    spec = importlib.util.spec_from_file_location(file[:-3], ROOT / "recipes" / file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def stage1(out: Path, steps: int, manifest: Path) -> Path:
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.train.config import load_config

    export = out / "stage1" / "export"
    if not (export / "config.json").is_file():
        cfg = load_config(ROOT / "recipes/configs/sft_contrastive/tiny.yaml", {
            "model.path": str(build_tiny_qwen(out / "stage1_model", seed=0, overwrite=True)),
            "data.manifest": str(manifest), "data.key_frames": "manifest",
            "train.output_dir": str(out / "stage1"), "train.max_steps": steps, "train.save_every": 0})
        _recipe("sft_contrastive.py").run(cfg)
    return export


def rl_data(out: Path, n_videos: int) -> tuple[Path, Path]:
    from vpbench.craft.pipeline import load_craft_config, run_craft
    from vpbench.synth.motionbench import synth_motionbench
    from vpbench.train.nli import build_tiny_nli

    manifest = out / "craft" / "rl.jsonl"
    if not manifest.is_file():
        synth_motionbench(out / "train_mb", seed=0, n_videos=n_videos)
        run_craft(load_craft_config(ROOT / "recipes/configs/craft/synthetic.yaml", {
            "input.root": str(out / "train_mb"), "output.dir": str(out / "craft"),
            **{f"protocol.{k}": str(v) for k, v in PROTOCOL.items()}}))
    nli = out / "nli"
    if not (nli / "config.json").is_file():
        build_tiny_nli(nli, seed=0)
    return manifest, nli


def stage2(out: Path, start: Path, manifest: Path, nli: Path, steps: int, extra: list[str]) -> tuple[Path, list]:
    from vpbench.config import parse_assignments
    from vpbench.train.grpo_config import load_grpo_config

    cfg = load_grpo_config(ROOT / "recipes/configs/grpo_comparative/tiny.yaml", {
        "model.path": str(start), "data.manifest": str(manifest), "quality.nli_model": str(nli),
        "train.output_dir": str(out / "stage2"), "train.max_steps": steps, "train.save_every": 0,
        **parse_assignments(extra)})
    rec = _recipe("grpo_comparative.py").run(cfg)
    return out / "stage2" / "export", rec.history


def evaluate(model: Path, data: Path, out: Path) -> tuple[dict, dict, float]:
    from vpbench import cli
    from vpbench.engine.records import RecordStore

    t0 = time.perf_counter()
    sets = [a for k, v in PROTOCOL.items() for a in ("--set", f"protocol.{k}={v}")]
    rc = cli.main(["run", "--model", str(model), "--tasks", "motionbench", "--data-root", str(data), "--output",
                   str(out), "--perception-gap", "--set", "gap.scorer=motion_energy", "--device", "cpu", "--no-cache",
                   *sets])
    if rc != 0:
        raise SystemExit(f"vpbench run failed ({rc}) for {model}")
    full = RecordStore(out / "motionbench" / "records.jsonl").load()
    absent = RecordStore(out / "motionbench" / "records.key_absent.jsonl").load()
    return full, absent, time.perf_counter() - t0


def report(s1: tuple[dict, dict], s2: tuple[dict, dict], n_boot: int) -> list[str]:
    from vpbench.metrics.stats import cluster_bootstrap, paired_cluster_bootstrap

    ids = sorted(i for i in s1[0] if s1[0][i].answer is not None and all(i in d for d in (*s1, *s2)))
    clusters = [s1[0][i].cluster or i for i in ids]

    def acc(d: dict) -> np.ndarray:
        return np.array([float(d[i].scores["acc"]) for i in ids])

    a1, k1, a2, k2 = acc(s1[0]), acc(s1[1]), acc(s2[0]), acc(s2[1])
    lines = [f"held-out generated MotionBench: {len(ids)} questions, {len(set(clusters))} videos (clusters)"]
    for name, x in (("stage 1 accuracy", a1), ("stage 2 accuracy", a2)):
        lo, hi = cluster_bootstrap(x, clusters, n_boot=n_boot)
        lines.append(f"{name:<34} {x.mean():.4f}  [{lo:.4f}, {hi:.4f}]")
    for name, f, k in (("stage 1 gap (full - key-absent)", a1, k1), ("stage 2 gap (full - key-absent)", a2, k2)):
        d, lo, hi = paired_cluster_bootstrap(k, f, clusters, n_boot=n_boot)
        lines.append(f"{name:<34} {d:+.4f}  [{lo:+.4f}, {hi:+.4f}]")
    d, lo, hi = paired_cluster_bootstrap(a1 - k1, a2 - k2, clusters, n_boot=n_boot)
    lines.append(f"{'change of the gap (2 - 1)':<34} {d:+.4f}  [{lo:+.4f}, {hi:+.4f}]")
    d, lo, hi = paired_cluster_bootstrap(a1, a2, clusters, n_boot=n_boot)
    lines.append(f"{'accuracy stage 2 - stage 1':<34} {d:+.4f}  [{lo:+.4f}, {hi:+.4f}]")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/bench_grpo_tiny")
    ap.add_argument("--stage1", help="an existing stage-1 export dir (default: train the tiny one)")
    ap.add_argument("--sft-steps", type=int, default=40)
    ap.add_argument("--steps", type=int, default=12, help="stage-2 optimiser steps")
    ap.add_argument("--lr", type=float, default=1e-4, help="stage-2 lr (the tiny config's 1e-3 collapses the model)")
    ap.add_argument("--train-videos", type=int, default=12)
    ap.add_argument("--eval-videos", type=int, default=24)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("overrides", nargs="*", help="stage-2 config overrides, e.g. grpo.lambda_c=0 grpo.refeed=false")
    args = ap.parse_args(argv)
    import torch

    from vpbench.synth.motionbench import synth_motionbench

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    manifest, nli = rl_data(out, args.train_videos)
    start = Path(args.stage1) if args.stage1 else stage1(out, args.sft_steps, manifest.parent / "sft.jsonl")
    t1 = time.perf_counter()
    export, history = stage2(out, start, manifest, nli, args.steps, [f"train.torch_threads={args.threads}",
                                                                      f"optim.lr={args.lr}", *args.overrides])
    t2 = time.perf_counter()
    heldout = out / "heldout_mb"
    if not heldout.is_dir():
        synth_motionbench(heldout, seed=1, n_videos=args.eval_videos)
    s1 = evaluate(start, heldout, out / "eval_stage1")
    s2 = evaluate(export, heldout, out / "eval_stage2")
    lines = [f"stage 1: {start}", f"stage 2: {export} ({args.steps} steps, {t2 - t1:.0f} s wall)",
             "stage-2 trajectory (step: reward, r_c mean, baseline, refeeds, trainable fraction, kl):"]
    lines += [f"  {i + 1}: {h['reward']:.3f} {h.get('r_c_mean', float('nan')):+.3f} {h.get('baseline', 0):+.4f} "
              f"{h.get('refeed_count', 0):.0f} {h['trainable_frac']:.2f} {h['kl']:.4f}" for i, h in enumerate(history)]
    lines += [f"eval wall: stage 1 {s1[2]:.0f} s, stage 2 {s2[2]:.0f} s; total wall {time.perf_counter() - t0:.0f} s, "
              f"process CPU {time.process_time() - c0:.0f} s"]
    lines += report(s1[:2], s2[:2], args.n_boot)
    print("\n".join(lines))
    (out / "report.txt").write_text("\n".join(lines) + "\n")
    (out / "report.json").write_text(json.dumps({"history": history, "lines": lines}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
