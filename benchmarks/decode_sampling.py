"""1-fps sampling of a 60 s, 25 fps, 640x360 H.264 clip, from process start, against the tools a
user would pick instead: ffmpeg's full decode (``ffmpeg -i clip -f null -``, imageio-ffmpeg's static
build) and decord fetching the same frame indices, plus the floor: decoding only the reference chain
the sampled frames depend on (seek to each needed keyframe, non-reference frames skipped, no
conversion). Clips with keyframes every 120 frames (4.8 s) and every 50 frames (2 s).

Goals (issue 15): vpbench <= 1.1x the reference-chain decode; <= 0.5x ffmpeg's full decode on clips
with keyframes <= 2 s apart. The last line is vpbench / ffmpeg full decode on the 2 s clip.

    .venv/bin/python benchmarks/decode_sampling.py [--repeats 5] [--venv /tmp/vpb-bench-venv]

ffmpeg and decord come from a separate venv (``--venv``; created with ``pip install imageio-ffmpeg
decord`` when missing). The machine is shared: sides run interleaved; medians of wall and CPU time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _clips import make_clip  # noqa: E402
from _common import ROOT, interleave, machine, median, run_timed  # noqa: E402

VPBENCH = """
import sys
from vpbench.protocol import Protocol
from vpbench.video.decode import decode_frames
f = decode_frames(sys.argv[1], Protocol(fps=1.0))
assert f.array.shape[0] == 60, f.array.shape
"""

PLAN = """
import json, sys
from vpbench.protocol import Protocol
from vpbench.video.decode import probe
from vpbench.video.sampler import plan_sampling
i = probe(sys.argv[1])
p = plan_sampling(Protocol(fps=1.0), i.n_frames, i.fps, i.height, i.width, None, None)
print(json.dumps({"indices": list(p.indices), "size": [p.resized_w, p.resized_h]}))
"""

# The floor: the packets the targets need (keyframe of each target GOP up to its last target), every
# non-target packet sent with skip_frame=NONREF, frames not even converted.
CHAIN = """
import json, sys, bisect
import av
idx = json.loads(sys.argv[2])
c = av.open(sys.argv[1]); s = c.streams.video[0]
pk = sorted((p.pts, p.is_keyframe) for p in c.demux(s) if p.size and p.pts is not None)
pts = [p for p, _ in pk]; keys = [i for i, (_, k) in enumerate(pk) if k]
want = {pts[i] for i in idx}
gops = {}
for i in idx:
    gops.setdefault(keys[bisect.bisect_right(keys, i) - 1], []).append(i)
n = 0
for k, targets in sorted(gops.items()):
    c.seek(pts[k], backward=True, any_frame=False, stream=s)
    last = pts[max(targets)]
    done = False
    for p in c.demux(s):
        s.codec_context.skip_frame = "DEFAULT" if p.pts in want else "NONREF"
        for fr in p.decode():
            n += 1
            if fr.pts == last:
                done = True
        if done:
            break
print(n, file=sys.stderr)
"""

DECORD = """
import json, sys
import decord
vr = decord.VideoReader(sys.argv[1], num_threads=1)
b = vr.get_batch(json.loads(sys.argv[2])).asnumpy()
assert b.shape[0] == 60
"""


def ensure_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(py), "-c", "import imageio_ffmpeg, decord"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "imageio-ffmpeg", "decord", "numpy<2"], check=True)
    return py


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--venv", type=Path, default=Path("/tmp/vpb-bench-venv"))
    ap.add_argument("--clips", type=Path, default=Path("/tmp/vpb-bench-clips"))
    args = ap.parse_args()
    other = ensure_venv(args.venv)
    ffmpeg = subprocess.run([str(other), "-c", "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"],
                            capture_output=True, text=True, check=True).stdout.strip()
    env = {"PYTHONPATH": str(ROOT)}
    print(f"machine: {machine()}; repeats {args.repeats}, interleaved; times from process start")
    last_ratio = float("nan")
    for keyint in (120, 50):
        clip = make_clip(args.clips / f"h264_60s_640x360_k{keyint}.mp4", keyint=keyint)
        plan = json.loads(subprocess.run([sys.executable, "-c", PLAN, str(clip)], env={**env}, capture_output=True,
                                         text=True, check=True, cwd=ROOT).stdout)
        idx = json.dumps(plan["indices"])
        chain = subprocess.run([sys.executable, "-c", CHAIN, str(clip), idx], capture_output=True, text=True, check=True)
        sides = {
            "vpbench decode_frames": lambda: run_timed([sys.executable, "-c", VPBENCH, str(clip)], env=env, cwd=ROOT),
            "reference chain only": lambda: run_timed([sys.executable, "-c", CHAIN, str(clip), idx]),
            "ffmpeg full decode": lambda: run_timed([ffmpeg, "-v", "error", "-i", str(clip), "-f", "null", "-"]),
            "ffmpeg full, 1 thread": lambda: run_timed([ffmpeg, "-v", "error", "-threads", "1", "-i", str(clip),
                                                        "-f", "null", "-"]),
            "decord same frames": lambda: run_timed([str(other), "-c", DECORD, str(clip), idx]),
        }
        res = interleave(sides, args.repeats)
        wall = {k: median([t.wall_s for t in v]) for k, v in res.items()}
        cpu = {k: median([t.cpu_s for t in v]) for k, v in res.items()}
        print(f"\nclip: 60 s, 25 fps, 640x360 H.264, keyframe every {keyint} frames; 60 frames sampled "
              f"-> {plan['size'][0]}x{plan['size'][1]}; the reference chain outputs {chain.stderr.strip()} of 1500 frames")
        print(f"{'side':<24}{'wall s':>9}{'cpu s':>9}")
        for k in sides:
            print(f"{k:<24}{wall[k]:>9.3f}{cpu[k]:>9.3f}")
        v = "vpbench decode_frames"
        for other_side in ("reference chain only", "ffmpeg full decode", "ffmpeg full, 1 thread", "decord same frames"):
            print(f"  vpbench / {other_side}: wall {wall[v] / wall[other_side]:.2f}x, cpu {cpu[v] / cpu[other_side]:.2f}x")
        last_ratio = wall[v] / wall["ffmpeg full decode"]
    print(f"ratio vpbench / ffmpeg full decode (keyframes 2 s apart), wall: {last_ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
