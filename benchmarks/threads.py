"""Torch intra-op threads vs the decode/prepare worker for the tiny-model end-to-end run, on a quiet
and on a CPU-loaded machine: a warm ``vpbench run`` (frame cache filled, response cache off) with 1
and 2 torch threads, each with the prefetch worker on (default) and off (``--no-prefetch``), without
and with a competing CPU load (one busy process per core), interleaved, medians of wall and CPU time.
Decides the default thread settings (see benchmarks/README.md).

    .venv/bin/python benchmarks/threads.py [--repeats 3] [--videos 20]

The last line is the wall ratio 2 threads / 1 thread under load.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, interleave, machine, median, run_timed  # noqa: E402
from e2e_lmms_eval import prepare  # noqa: E402


def _burn(stop: "mp.synchronize.Event") -> None:
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x ^= i


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--work", type=Path, default=Path("/tmp/vpb-e2e"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    p = prepare(args.work, args.videos)
    base = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cache = args.work / "frames_threads"
    k = {"i": 0}

    def cmd(prefetch: bool = True) -> list[str]:
        k["i"] += 1
        return [sys.executable, "-m", "vpbench", "run", "--model", str(p["ckpt"]), "--tasks", "motionbench",
                "--data-root", str(p["data"]), "--output", str(args.work / "threads_runs" / f"r{k['i']}"),
                "--no-cache", "--set", "motionbench.protocol.nframes=4", "--device", "cpu", "--frame-cache", str(cache)] + ([] if prefetch else ["--no-prefetch"])

    subprocess.run(cmd(), env={**os.environ, **base}, cwd=ROOT, check=True, capture_output=True)
    sides = {f"{t} thread{'s' if t > 1 else ''}{'' if pf else ', no prefetch'}":
             (lambda t=t, pf=pf: run_timed(cmd(pf), env={**base, "OMP_NUM_THREADS": str(t)}, cwd=ROOT))
             for t in (1, 2) for pf in (True, False)}
    results = {}
    for load in ("quiet", "loaded"):
        stop = mp.Event()
        burners = [mp.Process(target=_burn, args=(stop,), daemon=True) for _ in range(os.cpu_count() or 1)] \
            if load == "loaded" else []
        for b in burners:
            b.start()
        try:
            results[load] = interleave(sides, args.repeats)
        finally:
            stop.set()
            for b in burners:
                b.join(timeout=10)
    print(f"machine: {machine()}; {p['n']} questions, warm frame cache; 'loaded' adds {os.cpu_count()} busy "
          f"processes; repeats {args.repeats}, interleaved")
    print(f"{'condition':<10}{'threads':<26}{'wall s':>9}{'cpu s':>9}")
    for load, res in results.items():
        for name, ts in res.items():
            print(f"{load:<10}{name:<26}{median([t.wall_s for t in ts]):>9.2f}{median([t.cpu_s for t in ts]):>9.2f}")
    w = {load: {n: median([t.wall_s for t in ts]) for n, ts in res.items()} for load, res in results.items()}
    for load in w:
        print(f"{load}: prefetch on / off, 1 thread, wall {w[load]['1 thread'] / w[load]['1 thread, no prefetch']:.2f}")
    print(f"quiet: 2 threads / 1 thread wall {w['quiet']['2 threads'] / w['quiet']['1 thread']:.2f}")
    print(f"ratio 2 threads / 1 thread under load (wall): {w['loaded']['2 threads'] / w['loaded']['1 thread']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
