"""GPU end to end (issue 15 part 3; needs CUDA, NOT RUN in the session that wrote it: no GPU was lent).

A Qwen2.5-VL-3B-architecture checkpoint with random weights (the released 3B text/vision sizes, the
tiny model's tokenizer and chat template) is built offline; then, on the same generated MotionBench
questions (4 frames each, 64 new tokens), samples/s and GPU utilisation (``nvidia-smi`` sampled every
0.2 s) are measured for:

- ``vpbench run --model hf:CKPT --batch-size 8 --device cuda`` (vpbench's hf backend),
- ``vpbench run --model vllm:CKPT`` (when vllm is installed),
- the lmms-eval ``qwen2_5_vl``-equivalent per-request path (lmms_eval_side/qwen_path.py) on cuda,
  batch 1 (lmms-eval's default) — and lmms-eval's own ``vllm`` model when lmms-eval is installed.

    python benchmarks/gpu_e2e.py [--videos 40] [--work /tmp/vpb-gpu]

Prints one row per side and the ratio vpbench hf / lmms-eval path (wall) last.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, run_timed  # noqa: E402
from e2e_lmms_eval import prepare  # noqa: E402

TEXT_3B = dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
               num_key_value_heads=2, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
               max_position_embeddings=128000, rope_theta=1e6)
VISION_3B = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                 fullatt_block_indexes=[7, 15, 23, 31])


def build_3b(tiny: Path, out: Path) -> Path:
    """The tiny checkpoint's tokenizer/template with a random-weight 3B-size model (bf16)."""
    import shutil

    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    if (out / "config.json").exists():
        return out
    out.mkdir(parents=True)
    for f in tiny.iterdir():
        if f.suffix != ".safetensors" and f.name != "config.json":
            shutil.copy(f, out / f.name)
    cfg = json.loads((tiny / "config.json").read_text())
    cfg["text_config"] = {**cfg.get("text_config", {}), **TEXT_3B}
    cfg["vision_config"] = {**cfg.get("vision_config", {}), **VISION_3B}
    cfg.pop("transformers_version", None)
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**cfg)).to(torch.bfloat16)
    model.save_pretrained(out)
    return out


class GpuSampler:
    """Mean GPU utilisation (%) over the sampled interval, from ``nvidia-smi``."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            q = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                               capture_output=True, text=True)
            if q.returncode == 0 and q.stdout.strip():
                self.values.append(float(q.stdout.split()[0]))
            time.sleep(0.2)

    def __enter__(self) -> "GpuSampler":
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else float("nan")


LMMS_PATH = """
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from qwen_path import respond
from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration
ckpt, docs, proto = sys.argv[2], sys.argv[3], json.load(open(sys.argv[4]))
tok = AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
m = Qwen2_5_VLForConditionalGeneration.from_pretrained(ckpt, local_files_only=True, dtype=torch.bfloat16).cuda().eval()
import qwen_path
orig = m.generate
def gen(**kw):
    kw = {k: (v.cuda() if hasattr(v, "cuda") else v) for k, v in kw.items()}
    kw["pixel_values_videos"] = kw["pixel_values_videos"].to(torch.bfloat16)
    return orig(**kw).cpu()
m.generate = gen
for line in open(docs):
    d = json.loads(line)
    respond(m, tok, d["video"], d["text"], max_new_tokens=64, system=d["system"], **proto)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--work", type=Path, default=Path("/tmp/vpb-gpu"))
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_e2e.py needs a CUDA device")
    args.work.mkdir(parents=True, exist_ok=True)
    p = prepare(args.work, args.videos)
    ckpt = build_3b(p["ckpt"], args.work / "qwen25vl_3b_random")
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    def vp(model: str, out: str) -> list[str]:
        return [sys.executable, "-m", "vpbench", "run", "--model", model, "--tasks", "motionbench", "--data-root",
                str(p["data"]), "--output", str(args.work / out), "--no-cache",
                "--set", "motionbench.protocol.nframes=4", "--set", "protocol.max_new_tokens=64"]

    sides = {
        "vpbench hf (batch 8)": vp(f"hf:{ckpt}", "r_hf") + ["--batch-size", "8", "--device", "cuda"],
        "lmms-eval qwen2_5_vl path (batch 1)": [sys.executable, "-c", LMMS_PATH, str(Path(__file__).parent / "lmms_eval_side"),
                                                str(ckpt), str(args.work / "docs.jsonl"), str(args.work / "protocol.json")],
    }
    try:
        import vllm  # noqa: F401

        sides["vpbench vllm"] = vp(f"vllm:{ckpt}", "r_vllm")
    except ImportError:
        print("vllm not installed: the vllm rows are skipped")
    rows = {}
    for name, cmd in sides.items():
        with GpuSampler() as g:
            t = run_timed(cmd, env=env, cwd=ROOT)
        rows[name] = (t, g.mean)
    print(f"machine: {machine()}, {torch.cuda.get_device_name()}; {p['n']} questions, 4 frames, 64 new tokens")
    for name, (t, util) in rows.items():
        print(f"{name:<38} wall {t.wall_s:8.1f} s  {p['n'] / t.wall_s:7.2f} samples/s  GPU util {util:5.1f}%")
    a, b = rows["vpbench hf (batch 8)"][0], rows["lmms-eval qwen2_5_vl path (batch 1)"][0]
    print(f"ratio vpbench hf / lmms-eval path (wall): {a.wall_s / b.wall_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
