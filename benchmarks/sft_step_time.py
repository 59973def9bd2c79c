"""Step-time ratio of the stage-1 recipe: (SFT + contrastive) / plain SFT on the same batch.

A step = forward + backward + AdamW step of ``SFTContrastiveModel`` with ``passes=("sft",)``
(Ablation B) vs both passes. Goal: ratio <= 1.8. The contrastive pass adds the vision tower on the
changed temporal patches of V', [Z_v, Z_v', Z_t] and the SimCSE view [Z_v] through blocks 1..l
only (about (2 + 1) * l/N of the LLM cost of the SFT pass's video tokens), so the ratio depends on
l/N, on the vision share and on how much of the SFT sequence is text.

Two configurations are timed by default (``--config both``):

* ``tiny``: the tiny random model (2 layers, block 1, 16 video tokens per clip);
* ``deep``: 28 layers / hidden 256 / block 16 (7B's depth ratio l/N = 16/28), 112 px frames
  (64 video tokens per clip).

The two kinds of step alternate (SFT, SFT+CL, SFT, ...) after ``--warmup`` steps of each, so load
drift on a shared machine hits both; reported: medians over ``--steps`` steps, the ratio of the
medians (the goal is judged on it), the median of the per-pair ratios, and the ratio of median
process CPU times (steadier on a loaded machine, meaningful with ``--threads 1`` on CPU).
``--compare-reference`` interleaves a third kind: SFT+CL on the reference paths the speed-ups
replace (``splice_vision`` / ``rows_only_top`` off), i.e. before/after in one process.

    HF_HUB_OFFLINE=1 python benchmarks/sft_step_time.py                          # both, CPU
    python benchmarks/sft_step_time.py --threads 1 --steps 15 --compare-reference   # shared CPU
    python benchmarks/sft_step_time.py --config deep --device cuda --frames-px 224
    python benchmarks/sft_step_time.py --config deep --model DIR --device cuda   # a real checkpoint

``--layers/--hidden/--block/--frames-px`` override the chosen configuration (then ``--config``
must name one); ``--model DIR`` times a real checkpoint (its own sizes; the configuration then
only sets the block and the frame size) instead of a random model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL = 1.8
CONFIGS = {"tiny": {"layers": 0, "hidden": 0, "block": 1, "frames_px": 56},
           "deep": {"layers": 28, "hidden": 256, "block": 16, "frames_px": 112}}


def build_model(spec: dict, model_dir: str, tiny_dir: Path):
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    src = Path(model_dir) if model_dir else tiny_dir
    if model_dir and not spec["layers"]:
        return Qwen2_5_VLForConditionalGeneration.from_pretrained(src, attn_implementation="sdpa"), src
    c = Qwen2_5_VLConfig.from_pretrained(src, attn_implementation="sdpa")
    t = c.text_config
    if spec["layers"]:
        t.num_hidden_layers = spec["layers"]
        t.layer_types = ["full_attention"] * spec["layers"]
    if spec["hidden"]:
        h = spec["hidden"]
        t.hidden_size, t.intermediate_size = h, h * 3
        t.num_attention_heads, t.num_key_value_heads = h // 64, max(1, h // 256)
        t.rope_scaling = {**t.rope_scaling, "mrope_section": [8, 12, 12]}  # head_dim 64
        c.vision_config.out_hidden_size = h
    torch.manual_seed(0)
    return Qwen2_5_VLForConditionalGeneration(c), src


def time_config(name: str, spec: dict, args: argparse.Namespace, tmp: Path) -> dict:
    import torch
    from transformers import AutoTokenizer

    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.train.collate import collate_sft
    from vpbench.train.config import load_config
    from vpbench.train.contrastive import SpecialIds
    from vpbench.train.data import SFTDataset
    from vpbench.train.manifest import read_manifest, synth_sft_manifest
    from vpbench.train.model import SFTContrastiveModel

    tiny = tmp / "tiny"
    if not (tiny / "config.json").is_file():
        build_tiny_qwen(tiny, seed=0)
    px_side = spec["frames_px"]
    manifest = synth_sft_manifest(tmp / f"data_{px_side}", n_clips=args.batch_size, seed=0, size=px_side)
    model, src = build_model(spec, args.model, tiny)
    model = model.to(args.device, getattr(torch, args.dtype))
    px = px_side * px_side
    cfg = load_config(ROOT / "recipes/configs/sft_contrastive/tiny.yaml", {
        "data.fps": args.fps, "data.min_pixels": px, "data.max_pixels": px, "contrastive.blocks": [spec["block"]],
        "contrastive.proj_dim": 256, "contrastive.proj_hidden": None})
    tok = AutoTokenizer.from_pretrained(src)
    ids = SpecialIds.from_model(model.config, tok)
    ds = SFTDataset(read_manifest(manifest), cfg.data, src, tok)
    examples = [ds[i] for i in range(args.batch_size)]
    batch = collate_sft(examples, ids).to(args.device)
    w = SFTContrastiveModel(model, cfg.contrastive, ids).to(args.device).train()
    opt = torch.optim.AdamW(w.parameters(), lr=1e-6)
    cuda = args.device.startswith("cuda")

    def step(passes: tuple[str, ...], fast: bool = True) -> tuple[float, float]:
        w.splice_vision = w.rows_only_top = fast
        if cuda:
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        w(batch, passes=passes)["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0, time.process_time() - c0

    sft_p, both_p = ("sft",), ("sft", "cl")
    for _ in range(args.warmup):
        step(sft_p), step(both_p), args.compare_reference and step(both_p, fast=False)
    sft_t, both_t, sft_c, both_c, ref_t = [], [], [], [], []
    for _ in range(args.steps):
        for wall, cpu, (dt, dc) in ((sft_t, sft_c, step(sft_p)), (both_t, both_c, step(both_p))):
            wall.append(dt)
            cpu.append(dc)
        if args.compare_reference:
            ref_t.append(step(both_p, fast=False)[0])
    sft, both = statistics.median(sft_t), statistics.median(both_t)
    ratio = both / sft
    cpu_ratio = statistics.median(both_c) / statistics.median(sft_c)
    n_layers = len(model.model.language_model.layers)
    grid = batch.video_grid_thw[0].tolist()
    ref = {"reference_s": round(statistics.median(ref_t), 5),
           "reference_ratio": round(statistics.median(ref_t) / sft, 3)} if ref_t else {}
    return {**ref, "config": name, "sft_s": round(sft, 5), "sft_contrastive_s": round(both, 5), "ratio": round(ratio, 3),
            "median_pair_ratio": round(statistics.median(b / s for s, b in zip(sft_t, both_t)), 3),
            "cpu_time_ratio": round(cpu_ratio, 3),
            "goal": GOAL, "meets_goal": ratio <= GOAL, "layers": n_layers, "block": spec["block"],
            "video_tokens_per_clip": grid[0] * grid[1] * grid[2] // 4, "temporal_patches_per_clip": grid[0],
            "key_frames": [list(e.key_frames) for e in examples], "batch": args.batch_size,
            "sft_seq_len": int(batch.input_ids.shape[1]), "cl_seq_len": int(batch.cl.input_ids.shape[1]),
            "steps": args.steps, "warmup": args.warmup, "device": args.device, "dtype": args.dtype,
            "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="both", choices=["both", *CONFIGS])
    ap.add_argument("--model", default="", help="Qwen2.5-VL dir (default: a random model)")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--hidden", type=int, default=None)
    ap.add_argument("--block", type=int, default=None)
    ap.add_argument("--frames-px", type=int, default=None, help="frame side (multiple of 28)")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--fps", type=float, default=4.0)
    ap.add_argument("--steps", type=int, default=9, help="timed steps of each kind (medians)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--compare-reference", action="store_true",
                    help="also time SFT+CL on the reference paths (whole V' through the tower, block l on "
                         "every position), interleaved with the others: the before/after of the speed-ups")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    names = list(CONFIGS) if args.config == "both" else [args.config]
    overrides = {k: getattr(args, k) for k in ("layers", "hidden", "block", "frames_px")
                 if getattr(args, k) is not None}
    if overrides and len(names) > 1:
        ap.error("--layers/--hidden/--block/--frames-px need --config tiny or --config deep")
    tmp = Path(tempfile.mkdtemp(prefix="sft_bench_"))
    reports = []
    for name in names:
        real = {"layers": 0, "hidden": 0} if args.model else {}  # a checkpoint keeps its own sizes
        reports.append(time_config(name, {**CONFIGS[name], **real, **overrides}, args, tmp))
        print(json.dumps(reports[-1]), flush=True)
    print("\nconfig  sft_s     sft+cl_s  ratio  pair_ratio  cpu_ratio  ref_ratio  goal<=%.1f (on ratio)" % GOAL)
    for r in reports:
        print(f"{r['config']:<7} {r['sft_s']:<9.4f} {r['sft_contrastive_s']:<9.4f} {r['ratio']:<6.3f} "
              f"{r['median_pair_ratio']:<11.3f} {r['cpu_time_ratio']:<10.3f} {r.get('reference_ratio', '-')!s:<10} "
              f"{'met' if r['meets_goal'] else 'NOT met'}")


if __name__ == "__main__":
    main()
