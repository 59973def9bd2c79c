"""Step-time ratio of the stage-1 recipe: (SFT + contrastive) / plain SFT on the same batch.

A step = forward + backward + AdamW step of ``SFTContrastiveModel`` with ``passes=("sft",)``
(Ablation B) vs both passes. Goal: ratio <= 1.8. The contrastive pass adds the vision tower on V',
[Z_v, Z_v', Z_t] and the SimCSE view [Z_v] through blocks 1..l only (about (2 + 1) * l/N of the
LLM cost of the SFT pass's video tokens), so the ratio depends on l/N and on the vision share.

    HF_HUB_OFFLINE=1 python benchmarks/sft_step_time.py                       # tiny model, CPU
    python benchmarks/sft_step_time.py --layers 28 --block 16 --hidden 512 --device cuda --frames-px 224

``--layers/--hidden`` build a random model with the tiny tokenizer and those text sizes (to mimic
7B's depth ratio l/N = 16/28 cheaply); ``--model DIR`` times a real checkpoint instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_model(args: argparse.Namespace, tiny_dir: Path):
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    src = Path(args.model) if args.model else tiny_dir
    if args.model and not args.layers:
        return Qwen2_5_VLForConditionalGeneration.from_pretrained(src, attn_implementation="sdpa"), src
    c = Qwen2_5_VLConfig.from_pretrained(src, attn_implementation="sdpa")
    t = c.text_config
    if args.layers:
        t.num_hidden_layers = args.layers
        t.layer_types = ["full_attention"] * args.layers
    if args.hidden:
        t.hidden_size, t.intermediate_size = args.hidden, args.hidden * 3
        t.num_attention_heads, t.num_key_value_heads = args.hidden // 64, max(1, args.hidden // 256)
        t.rope_scaling = {**t.rope_scaling, "mrope_section": [8, 12, 12]}  # head_dim 64
        c.vision_config.out_hidden_size = args.hidden
    torch.manual_seed(0)
    return Qwen2_5_VLForConditionalGeneration(c), src


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="", help="Qwen2.5-VL dir (default: a tiny random one)")
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=0)
    ap.add_argument("--block", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--frames-px", type=int, default=56, help="frame side (multiple of 28)")
    ap.add_argument("--fps", type=float, default=4.0)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoTokenizer

    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.train.collate import collate_sft
    from vpbench.train.config import load_config
    from vpbench.train.contrastive import SpecialIds
    from vpbench.train.data import SFTDataset
    from vpbench.train.manifest import read_manifest, synth_sft_manifest
    from vpbench.train.model import SFTContrastiveModel

    tmp = Path(tempfile.mkdtemp(prefix="sft_bench_"))
    tiny = build_tiny_qwen(tmp / "tiny", seed=0)
    manifest = synth_sft_manifest(tmp / "data", n_clips=args.batch_size, seed=0, size=args.frames_px)
    model, src = build_model(args, tiny)
    dtype = getattr(torch, args.dtype)
    model = model.to(args.device, dtype)
    px = args.frames_px * args.frames_px
    cfg = load_config(ROOT / "recipes/configs/sft_contrastive/tiny.yaml", {
        "data.fps": args.fps, "data.min_pixels": px, "data.max_pixels": px, "contrastive.blocks": [args.block],
        "contrastive.proj_dim": 256, "contrastive.proj_hidden": None})
    tok = AutoTokenizer.from_pretrained(src)
    ids = SpecialIds.from_model(model.config, tok)
    ds = SFTDataset(read_manifest(manifest), cfg.data, src, tok)
    batch = collate_sft([ds[i] for i in range(args.batch_size)], ids).to(args.device)
    w = SFTContrastiveModel(model, cfg.contrastive, ids).to(args.device).train()
    opt = torch.optim.AdamW(w.parameters(), lr=1e-6)

    def timed(passes: tuple[str, ...]) -> float:
        times = []
        for i in range(args.warmup + args.steps):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            w(batch, passes=passes)["loss"].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]

    sft, both = timed(("sft",)), timed(("sft", "cl"))
    n_layers = len(model.model.language_model.layers)
    report = {"sft_s": round(sft, 5), "sft_contrastive_s": round(both, 5), "ratio": round(both / sft, 3),
              "goal": 1.8, "meets_goal": both / sft <= 1.8, "layers": n_layers, "block": args.block,
              "video_tokens_per_clip": int(batch.video_grid_thw[0].prod()) // 4, "batch": args.batch_size,
              "sft_seq_len": int(batch.input_ids.shape[1]), "device": args.device, "dtype": args.dtype}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
