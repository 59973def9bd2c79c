"""Training-step time with vpbench.models.fast_vision vs transformers' own vision modules, same batch.

A step = forward + backward + AdamW step of ``SFTContrastiveModel`` (SFT + contrastive, as the
config says) on one batch of the config's manifest. The two kinds alternate (HF, fast, HF, ...) on
ONE model whose vision modules switch class between steps (same parameters; the optimizer's lr is
0, so every step sees the same weights), after ``--warmup`` steps of each. Reported: median wall and
process-CPU seconds of each kind, their ratios (fast / HF: < 1 is faster) and the largest loss
difference between the kinds (float rounding only).

    HF_HUB_OFFLINE=1 python benchmarks/vision_tower_speed.py \\
        --config recipes/configs/sft_contrastive/tiny_learn.yaml \\
        --set model.path=demo/tiny-qwen2.5-vl --set data.manifest=demo/data/train/sft_qa.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _classes(model) -> dict:
    """{module: (HF class, fast class)} for every module speed_up_vision_tower swapped."""
    from vpbench.models.fast_vision import speed_up_vision_tower

    before = {m: type(m) for m in model.modules()}
    speed_up_vision_tower(model)
    return {m: (cls, type(m)) for m, cls in before.items() if type(m) is not cls}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(ROOT / "recipes/configs/sft_contrastive/tiny_learn.yaml"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--steps", type=int, default=10, help="timed steps of each kind")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    from vpbench.config import parse_assignments
    from vpbench.train.collate import collate_sft
    from vpbench.train.config import load_config
    from vpbench.train.contrastive import SpecialIds
    from vpbench.train.data import SFTDataset
    from vpbench.train.manifest import read_manifest
    from vpbench.train.model import SFTContrastiveModel

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, parse_assignments(args.set))
    tok = AutoTokenizer.from_pretrained(cfg.model.path)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(cfg.model.path, dtype=torch.float32,
                                                               attn_implementation=cfg.model.attn_implementation)
    model.config.use_cache = False
    swaps = _classes(model)
    ids = SpecialIds.from_model(model.config, tok)
    w = SFTContrastiveModel(model, cfg.contrastive, ids).train()
    ds = SFTDataset(read_manifest(cfg.data.manifest), cfg.data, cfg.model.path, tok, with_degraded=w.active)
    batch = collate_sft([ds[i] for i in range(cfg.train.batch_size)], ids)
    opt = torch.optim.AdamW(w.parameters(), lr=0.0)

    def step(fast: bool) -> tuple[float, float, float]:
        for m, (hf_cls, fast_cls) in swaps.items():
            m.__class__ = fast_cls if fast else hf_cls
        torch.manual_seed(0)  # the same dropout masks for both kinds
        t0, c0 = time.perf_counter(), time.process_time()
        loss = w(batch)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0, time.process_time() - c0, loss.item()

    for _ in range(args.warmup):
        step(False), step(True)
    runs: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    for _ in range(args.steps):
        for fast in (False, True):
            runs[fast].append(step(fast))
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for k, v in runs.items()}
    report = {"swapped_modules": len(swaps), "batch": cfg.train.batch_size, "steps": args.steps,
              "threads": torch.get_num_threads(),
              "hf_wall_s": round(med[False][0], 4), "fast_wall_s": round(med[True][0], 4),
              "hf_cpu_s": round(med[False][1], 4), "fast_cpu_s": round(med[True][1], 4),
              "wall_ratio": round(med[True][0] / med[False][0], 3), "cpu_ratio": round(med[True][1] / med[False][1], 3),
              "max_loss_diff": max(abs(a[2] - b[2]) for a, b in zip(runs[False], runs[True]))}
    print(json.dumps(report))
    print(f"fast / HF vision modules, one training step: {report['wall_ratio']:.3f}x wall, "
          f"{report['cpu_ratio']:.3f}x CPU (medians of {args.steps})")


if __name__ == "__main__":
    main()
