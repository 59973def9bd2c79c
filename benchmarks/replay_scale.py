"""Replay at scale: ``vpbench run --model replay:`` over 1,000 and 10,000 generated MotionBench
questions (no videos needed), wall/CPU time and peak RSS, optionally under competing disk I/O.

Goals (issue 15): 10,000 samples in <= 5 s, also under competing disk I/O; peak RSS of the
10,000-sample run <= 1.1x the 1,000-sample run. ``vpbench score`` on the 10,000-sample run is
timed too. The ratio printed last is peak RSS(10k) / peak RSS(1k).

    .venv/bin/python benchmarks/replay_scale.py [--repeats 3] [--disk-load]

``--disk-load`` runs a writer that keeps appending and fsyncing a file in the same folder during
the timed runs (the "other jobs do disk I/O" case).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Timing, interleave, machine, median, run_timed  # noqa: E402

OPTIONS = ("A. left", "B. right", "C. up", "D. down")


def write_data(root: Path, n: int) -> Path:
    """MotionBench annotation (official layout) with ``n`` questions over n/4 videos, and a replay file."""
    root.mkdir(parents=True, exist_ok=True)
    rows, preds = [], []
    for v in range(0, n, 4):
        qa = []
        for q in range(v, min(n, v + 4)):
            qa.append({"uid": f"q{q}", "start": None, "end": None, "answer": "ABCD"[q % 4],
                       "question": f"Which way does object {q} move?\n" + "\n".join(OPTIONS)})
            preds.append({"sample_id": f"q{q}", "response": "ABCD"[(q * 7) % 4]})
        rows.append({"question_type": ["Camera Motion", "Action Order", "Repetition Count"][v % 3],
                     "video_type": "Synthetic", "key": f"vid{v}", "qa": qa, "video_path": f"vid{v}.mp4",
                     "video_info": {"duration": 2.0, "fps": 10.0, "resolution": {"width": 64, "height": 64}}})
    (root / "video_info.meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    replay = root / "preds.jsonl"
    replay.write_text("".join(json.dumps(p) + "\n" for p in preds))
    return replay


def _disk_writer(folder: str, stop: "mp.synchronize.Event") -> None:
    path = Path(folder) / "noise.bin"
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        while not stop.is_set():
            f.write(block)
            f.flush()
            os.fsync(f.fileno())
            if f.tell() > (256 << 20):
                f.seek(0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--disk-load", action="store_true")
    ap.add_argument("--sizes", default="1000,10000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="vpb_replay_"))
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VPBENCH_DATA_DIR": ""}
    stop = mp.Event()
    noise = mp.Process(target=_disk_writer, args=(str(work), stop), daemon=True) if args.disk_load else None
    try:
        replays = {n: write_data(work / f"mb{n}", n) for n in sizes}
        counter = {"k": 0}

        def side(n: int):
            def go() -> Timing:
                counter["k"] += 1
                out = work / f"run{n}_{counter['k']}"
                t = run_timed([sys.executable, "-m", "vpbench", "run", "--model", f"replay:{replays[n]}",
                               "--tasks", "motionbench", "--data-root", str(work / f"mb{n}"),
                               "--output", str(out), "--no-cache"], env=env, cwd=ROOT)
                shutil.rmtree(out, ignore_errors=True)
                return t
            return go

        def score_side() -> Timing:
            return run_timed([sys.executable, "-m", "vpbench", "score", str(score_dir)], env=env, cwd=ROOT)

        big = max(sizes)
        score_dir = work / "score_run"
        run_timed([sys.executable, "-m", "vpbench", "run", "--model", f"replay:{replays[big]}", "--tasks",
                   "motionbench", "--data-root", str(work / f"mb{big}"), "--output", str(score_dir),
                   "--no-cache"], env=env, cwd=ROOT)
        if noise:
            noise.start()
            time.sleep(1.0)
        sides = {f"run {n}": side(n) for n in sizes}
        sides[f"score {big}"] = score_side
        res = interleave(sides, args.repeats)
    finally:
        stop.set()
        if noise:
            noise.join(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {machine()}; disk load: {'yes' if args.disk_load else 'no'}; repeats {args.repeats}")
    print(f"{'side':<14}{'wall s (median)':>16}{'cpu s':>8}{'peak RSS MiB':>14}")
    for name, ts in res.items():
        print(f"{name:<14}{median([t.wall_s for t in ts]):>16.2f}{median([t.cpu_s for t in ts]):>8.2f}"
              f"{median([t.peak_rss_mib for t in ts]):>14.1f}")
    small, large = min(sizes), max(sizes)
    ratio = median([t.peak_rss_mib for t in res[f'run {large}']]) / median([t.peak_rss_mib for t in res[f'run {small}']])
    print(f"ratio peak RSS run {large} / run {small}: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
