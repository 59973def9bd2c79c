"""P0 profile of a warm end-to-end run: the share of wall time that is not the model's ``generate``,
with the top costs outside it named. One ``vpbench run`` (tiny Qwen2.5-VL, generated MotionBench,
4 frames per sample, 64 new tokens, frame cache warm, response cache off) under cProfile.

    .venv/bin/python benchmarks/p0_profile.py [--videos 12]

The last line is the non-model share of wall time (goal: <= 10% with a warm frame cache).
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine  # noqa: E402
from e2e_lmms_eval import prepare  # noqa: E402

# (label, file suffix, function name): cumulative time of the outermost matching call
COSTS = (
    ("imports (all modules)", "<frozen importlib._bootstrap>", "_find_and_load"),
    ("model + tokenizer load", "hf_qwen_vl.py", "load"),
    ("preflight video check", "preflight.py", "check_media"),
    ("frame loading (cache or decode)", "cache.py", "get_or_decode"),
    ("patchify", "qwen_inputs.py", "patchify_video"),
    ("prompt + tokenise", "hf_qwen_vl.py", "_encode"),
    ("records commit", "records.py", "commit"),
    ("weights hash / fingerprint", "hf_qwen_vl.py", "fingerprint"),
    ("provenance / manifest", "provenance.py", "environment"),
    ("aggregate + bootstrap CIs", "runner.py", "summarize"),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--work", type=Path, default=Path("/tmp/vpb-e2e"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    p = prepare(args.work, args.videos)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cache = args.work / "frames_p0"

    def run(out: str, prof: Path | None) -> None:
        pre = [sys.executable, "-m", "cProfile", "-o", str(prof)] if prof else [sys.executable]
        subprocess.run(pre + ["-m", "vpbench", "run", "--model", str(p["ckpt"]), "--tasks", "motionbench",
                              "--data-root", str(p["data"]), "--output", str(args.work / out), "--no-cache",
                              "--set", "motionbench.protocol.nframes=4", "--device", "cpu", "--frame-cache", str(cache)],
                       env=env, cwd=ROOT, check=True, capture_output=True)

    run("p0_fill", None)  # fills the frame cache
    prof = args.work / "p0.prof"
    import shutil

    shutil.rmtree(args.work / "p0_run", ignore_errors=True)
    run("p0_run", prof)
    st = pstats.Stats(str(prof))
    total = max(v[3] for v in st.stats.values())  # cumtime of the outermost frame

    def cum(suffix: str, name: str) -> float:
        vals = [v[3] for (f, _, fn), v in st.stats.items() if f.endswith(suffix) and fn == name]
        return max(vals) if vals else 0.0

    gen = max((v[3] for (f, _, fn), v in st.stats.items() if fn == "generate" and "transformers" in f), default=0.0)
    print(f"machine: {machine()}; {p['n']} questions, warm frame cache, 1 torch thread; cProfile wall (inflated ~1.3x)")
    print(f"{'total wall':<34}{total:8.2f} s")
    print(f"{'model generate()':<34}{gen:8.2f} s  {100 * gen / total:5.1f}%")
    for label, suffix, name in COSTS:
        t = cum(suffix, name)
        print(f"  {label:<32}{t:8.2f} s  {100 * t / total:5.1f}%")
    print(f"non-model share of wall time: {100 * (total - gen) / total:.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
