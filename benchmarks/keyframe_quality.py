"""Key-frame quality benchmark: ``motion_energy`` key frames vs the true event frames of generated clips.

    .venv/bin/python benchmarks/keyframe_quality.py [--n-videos 120] [--seed 0] [--min-prominence 1.0]
                                                    [--json out.json] [--check 0.9]

Data: ``vpbench.synth.motionbench.synth_motionbench`` (written to a temporary folder unless ``--data`` names
one); the Repetition Count clips are the ``flash`` scenes (1-2 lamps, 1-5 flashes each, every flash 1-2 frames
long). Ground truth: ``synth_truth.json`` → ``event_frames`` of the video (every lit frame).

Detection: every frame of the mp4 at the source frame rate (``decode_indices``, no resampling or resizing)
scored with ``get_scorer("motion_energy")`` (mean |V[t] - V[t-1]|), key frames = ``select_keys`` (local maxima,
RECIPE §1.3) with the given ``min_prominence``; the paper-literal setting (0) is reported alongside.

Matching rules (D = detected key frames, E = true event frames, a flash = a run of consecutive event frames):
  * ``exact``   frame level: a detection is correct iff it is an event frame; an event frame is found iff it is
    detected.
  * ``±1``      frame level with one frame of tolerance: a detection is correct iff an event frame lies within
    1 frame of it; an event frame is found iff a detection lies within 1 frame of it. (Motion energy peaks at
    the frame where a lamp turns on AND at the frame where it turns off again, which is the frame right after
    the flash, so a 2-frame flash [t, t+1] yields detections t and t+2.)
  * ``flash``   event level: a flash [a, b] is found iff some detection lies in [a-1, b+1]; a detection is
    correct iff it lies in such a window of some flash.
Precision = correct detections / |D|, recall = found / |E| (or found flashes / flashes); both pooled over clips.
Headline (``--check``): the ±1 precision and recall at ``--min-prominence``. Runs in a few seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Tally:
    correct: int = 0
    n_det: int = 0
    found: int = 0
    n_true: int = 0

    def add(self, correct: int, n_det: int, found: int, n_true: int) -> None:
        self.correct += correct
        self.n_det += n_det
        self.found += found
        self.n_true += n_true

    @property
    def precision(self) -> float:
        return self.correct / self.n_det if self.n_det else float("nan")

    @property
    def recall(self) -> float:
        return self.found / self.n_true if self.n_true else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def frame_match(det: list[int], true: list[int], tol: int) -> tuple[int, int]:
    """(correct detections, found event frames) with ``tol`` frames of tolerance."""
    t = np.asarray(true)
    d = np.asarray(det)
    correct = sum(1 for x in det if t.size and np.min(np.abs(t - x)) <= tol)
    found = sum(1 for x in true if d.size and np.min(np.abs(d - x)) <= tol)
    return correct, found


def flashes(true: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive event frames as inclusive (first, last) pairs."""
    out: list[list[int]] = []
    for x in sorted(true):
        if out and x == out[-1][1] + 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return [(a, b) for a, b in out]


def flash_match(det: list[int], true: list[int]) -> tuple[int, int, int]:
    """(correct detections, found flashes, flashes): windows [first-1, last+1]."""
    runs = flashes(true)
    inside = lambda x, r: r[0] - 1 <= x <= r[1] + 1  # noqa: E731
    correct = sum(1 for x in det if any(inside(x, r) for r in runs))
    found = sum(1 for r in runs if any(inside(x, r) for x in det))
    return correct, found, len(runs)


def evaluate(data: Path, prominences: list[float]) -> dict[str, dict[str, Tally]]:
    from vpbench.keyframes.scorers import get_scorer
    from vpbench.keyframes.select import SelectConfig, select_keys
    from vpbench.video.decode import decode_indices, probe

    truth = json.loads((data / "synth_truth.json").read_text())
    scorer = get_scorer("motion_energy")
    out = {f"{p:g}": {"exact": Tally(), "±1": Tally(), "flash": Tally()} for p in prominences}
    n_clips = n_frames = 0
    for line in (data / "video_info.meta.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["question_type"] != "Repetition Count":
            continue
        path = data / "self-collected" / row["video_path"]
        info = probe(path)
        scores = scorer.score(decode_indices(path, range(info.n_frames)), [])
        true = list(truth[row["key"]]["event_frames"])
        n_clips += 1
        n_frames += info.n_frames
        for p in prominences:
            det = select_keys(scores, SelectConfig(min_prominence=p))
            t = out[f"{p:g}"]
            c0, f0 = frame_match(det, true, 0)
            t["exact"].add(c0, len(det), f0, len(true))
            c1, f1 = frame_match(det, true, 1)
            t["±1"].add(c1, len(det), f1, len(true))
            c, f, n = flash_match(det, true)
            t["flash"].add(c, len(det), f, n)
    out["_meta"] = {"clips": n_clips, "frames": n_frames}  # type: ignore[assignment]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-videos", type=int, default=120, help="MotionBench videos to generate (1 in 6 is a flash clip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, help="an existing generated MotionBench folder (with synth_truth.json)")
    ap.add_argument("--min-prominence", type=float, default=1.0)
    ap.add_argument("--json", type=Path, help="write the numbers here")
    ap.add_argument("--check", type=float, help="exit 1 unless the ±1 precision and recall are >= this")
    ns = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = ns.data
        if data is None:
            from vpbench.synth.motionbench import synth_motionbench

            data = Path(tmp) / "motionbench"
            synth_motionbench(data, seed=ns.seed, n_videos=ns.n_videos)
        prominences = sorted({0.0, ns.min_prominence})
        res = evaluate(data, prominences)
    meta = res.pop("_meta")
    print(f"motion_energy key frames vs true event frames: {meta['clips']} Repetition Count clips, "
          f"{meta['frames']} frames, source frame rate")
    print(f"{'min_prominence':>14} {'match':>6} {'precision':>9} {'recall':>7} {'F1':>6} {'detections':>10} "
          f"{'true':>5}")
    table = {}
    for p, rows in res.items():
        for rule, t in rows.items():
            table[f"{p}/{rule}"] = {"precision": t.precision, "recall": t.recall, "f1": t.f1,
                                    "detections": t.n_det, "true": t.n_true}
            print(f"{p:>14} {rule:>6} {t.precision:9.3f} {t.recall:7.3f} {t.f1:6.3f} {t.n_det:10d} {t.n_true:5d}")
    elapsed = time.perf_counter() - t0
    print(f"({elapsed:.1f} s; true = event frames, or flashes for 'flash')")
    if ns.json:
        ns.json.write_text(json.dumps({"meta": meta, "min_prominence": ns.min_prominence, "results": table,
                                       "seconds": elapsed}, indent=1))
    if ns.check is not None:
        head = res[f"{ns.min_prominence:g}"]["±1"]
        if not (head.precision >= ns.check and head.recall >= ns.check):
            print(f"FAIL: ±1 precision {head.precision:.3f} / recall {head.recall:.3f} < {ns.check}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
