"""Throughput of the ``openai:`` backend vs its concurrency, against a local server.

The server (``vpbench.testing.openai_server.FakeChatServer`` on 127.0.0.1) answers after a fixed
service time (``--latency``, a model's decode time) and, with ``--faults``, fails every third
request and stalls every seventh past the client timeout, as in the tests. Each sample is a real
request: ``--frames`` frames of ``--size``² px sent as JPEG images. Reported per concurrency:
samples/s (wall), client CPU seconds, failures, server's most requests in flight; then, last, the
ratio samples/s at the highest concurrency / at concurrency 1 (the named alternative: one request
at a time). Goal: ratio >= 0.5 × the concurrency ratio with no faults.

    python benchmarks/openai_throughput.py                       # 1, 4, 16 in flight; 64 samples
    python benchmarks/openai_throughput.py --faults --concurrency 1 8 --samples 48
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vpbench.models.base import Prepared
from vpbench.models.openai_compat import OpenAIBackend, OpenAIOptions
from vpbench.testing.openai_server import FakeChatServer
from vpbench.types import Frames, Message, Part, Request


def make_batch(n: int, frames: int, size: int) -> list[Prepared]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        f = Frames(rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8),
                   tuple(0.5 * k for k in range(frames)), 10.0, "bench", sample_fps=2.0)
        req = Request(f"s{i}", "bench", (Message("user", (Part("video"), Part("text", f"Question {i}? A or B"))),),
                      None, ("A. x", "B. y"), "p", 4, 0.0, 1.0, 0, f"fp{i}")
        out.append(Prepared(req, f))
    return out


def run_one(url: str, concurrency: int, batch: list[Prepared], timeout: float) -> dict:
    backend = OpenAIBackend(OpenAIOptions.parse(f"{url}#bench,concurrency={concurrency},timeout={timeout},"
                                                f"retries=6,backoff=0.05"))
    t0, c0 = time.perf_counter(), time.process_time()
    responses = []
    for s in range(0, len(batch), backend.batch_size):  # as the engine calls it
        responses += backend.generate(batch[s: s + backend.batch_size])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"concurrency": concurrency, "samples_per_s": len(batch) / wall, "wall_s": wall, "cpu_s": cpu,
            "failed": sum(r.error is not None for r in responses), "attempts": backend.n_attempts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.2, help="server service time per request (s)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--faults", action="store_true", help="fail every 3rd request, stall every 7th")
    args = ap.parse_args()
    batch = make_batch(args.samples, args.frames, args.size)
    rows = []
    for c in args.concurrency:
        with FakeChatServer(lambda body: "A", latency_s=args.latency, fail_every=3 if args.faults else 0,
                            stall_every=7 if args.faults else 0, stall_s=3 * args.latency + 1) as server:
            row = run_one(server.url, c, batch, timeout=2 * args.latency + 0.5)
            row["server_max_in_flight"] = server.stats.max_in_flight
        rows.append(row)
        print(f"concurrency {c:>3}: {row['samples_per_s']:7.2f} samples/s  wall {row['wall_s']:6.2f} s  "
              f"cpu {row['cpu_s']:6.2f} s  failed {row['failed']}  attempts {row['attempts']}  "
              f"server max in flight {row['server_max_in_flight']}", flush=True)
    lo, hi = rows[0], rows[-1]
    print(f"ratio samples/s concurrency {hi['concurrency']} / {lo['concurrency']}: "
          f"{hi['samples_per_s'] / lo['samples_per_s']:.2f}")


if __name__ == "__main__":
    main()
