"""End to end, from process start: ``vpbench run`` (hf backend) against lmms-eval 0.7.3 with an
out-of-tree model class doing what lmms-eval's own Qwen2.5-VL model does
(benchmarks/lmms_eval_side/qwen_path.py), on the same tiny random Qwen2.5-VL checkpoint, the same
generated MotionBench questions, the same 4 frames per sample, prompt and 64 new tokens.

vpbench runs cold (empty frame cache) and warm (frame cache filled by an earlier run); the response
cache is off on every run. Responses must be byte-identical on every sample (checked, the script fails
otherwise). A P0 profile of one warm vpbench run names the share of wall time outside ``generate``.

Goals (issue 15): vpbench <= 0.5x lmms-eval cold, <= 0.2x warm, non-model overhead <= 10% of a warm run.

    .venv/bin/python benchmarks/e2e_lmms_eval.py [--repeats 3] [--videos 40] [--lmms-venv /tmp/vpb-lmms-venv]

The lmms-eval venv layers over this venv (a ``.pth`` to its site-packages) and adds
``lmms-eval==0.7.3 --no-deps`` plus its runtime needs (deps.md §3.5). The last line is the warm ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, interleave, machine, median, run_timed  # noqa: E402

SIDE = Path(__file__).resolve().parent / "lmms_eval_side"
LMMS_NEEDS = ["loguru", "sacrebleu", "evaluate", "pytz", "tenacity", "pytablewriter", "filelock<4", "zstandard"]

TASK_YAML = """task: vpb_motionbench
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 64
  do_sample: false
process_results: !function utils.process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""

TASK_UTILS = """def doc_to_visual(doc):
    return [doc["video"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return doc["text"]


def process_results(doc, results):
    return {"exact_match": float(results[0].strip()[:1] == doc["answer"])}
"""


def ensure_lmms_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        target = next(Path(venv / "lib").glob("python3*/site-packages"))
        (target / "vpbench_base.pth").write_text(site.getsitepackages()[0] + "\n")
    if subprocess.run([str(py), "-c", "import lmms_eval, loguru, sacrebleu"], capture_output=True).returncode:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "lmms-eval==0.7.3"], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), *LMMS_NEEDS],
                       check=True)
    return py


def prepare(work: Path, n_videos: int) -> dict:
    """Generated MotionBench data, the tiny checkpoint, the lmms-eval task over the same prompts."""
    sys.path.insert(0, str(ROOT))
    from vpbench.engine.requests import build_request
    from vpbench.registry import get_task
    from vpbench.synth.motionbench import synth_motionbench
    from vpbench.video.decode import probe

    data = work / "mb"
    if not (data / "video_info.meta.jsonl").exists():
        synth_motionbench(data, n_videos=n_videos)
    ckpt = work / "tiny"
    if not (ckpt / "config.json").exists():
        subprocess.run([sys.executable, "-m", "vpbench", "model", "tiny", "--output", str(ckpt)], check=True,
                       cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True)
    task = get_task("motionbench")
    protocol = task.resolve_protocol(None, {"nframes": "4"})
    rows = []
    for s in task.load_samples(data):
        req = build_request(task, s, protocol)
        texts = [p.text for m in req.messages if m.role == "user" for p in m.parts if p.kind == "text"]
        system = [p.text for m in req.messages if m.role == "system" for p in m.parts]
        video = task.video_path(data, req.video.path)
        probe(video)
        rows.append({"sample_id": s.id, "video": str(video), "text": texts[0], "system": system[0] if system else None,
                     "answer": s.answer or "NA"})
    tasks = work / "lmms_tasks"
    tasks.mkdir(exist_ok=True)
    (work / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tasks / "vpb_motionbench.yaml").write_text(TASK_YAML.format(data=work / "docs.jsonl"))
    (tasks / "utils.py").write_text(TASK_UTILS)
    (work / "protocol.json").write_text(json.dumps({
        "nframes": 4, "min_pixels": protocol.min_pixels, "max_pixels": protocol.max_pixels,
        "total_pixels": protocol.total_pixels}))
    return {"data": data, "ckpt": ckpt, "tasks": tasks, "n": len(rows)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--videos", type=int, default=40, help="generated MotionBench videos (~3 questions each)")
    ap.add_argument("--lmms-venv", type=Path, default=Path("/tmp/vpb-lmms-venv"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/vpb-e2e"))
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads on both sides")
    args = ap.parse_args()
    lmms_py = ensure_lmms_venv(args.lmms_venv)
    args.work.mkdir(parents=True, exist_ok=True)
    p = prepare(args.work, args.videos)
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    warm_cache = args.work / "frames_warm"
    runs = args.work / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir()
    k = {"i": 0}

    def vp(frame_cache: Path | None) -> list[str]:
        k["i"] += 1
        cmd = [sys.executable, "-m", "vpbench", "run", "--model", str(p["ckpt"]), "--tasks", "motionbench",
               "--data-root", str(p["data"]), "--output", str(runs / f"v{k['i']}"), "--no-cache",
               "--set", "motionbench.protocol.nframes=4", "--device", "cpu"]
        return cmd + (["--frame-cache", str(frame_cache)] if frame_cache else [])

    subprocess.run(vp(warm_cache), env={**__import__("os").environ, **env}, cwd=ROOT, check=True, capture_output=True)
    lmms_out = args.work / "lmms_responses.json"

    def cold():
        cache = Path(tempfile.mkdtemp(prefix="vpb_frames_", dir=args.work))
        try:
            return run_timed(vp(cache), env=env, cwd=ROOT)
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    sides = {
        "lmms-eval 0.7.3": lambda: run_timed([str(lmms_py), str(SIDE / "run_lmms.py"), str(p["ckpt"]),
                                              str(args.work / "protocol.json"), str(p["tasks"]), str(lmms_out)],
                                             env=env, cwd=args.work),
        "vpbench cold": cold,
        "vpbench warm": lambda: run_timed(vp(warm_cache), env=env, cwd=ROOT),
    }
    res = interleave(sides, args.repeats)
    ours = {}
    for line in (runs / f"v{k['i']}" / "motionbench" / "records.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        ours[r["sample_id"]] = r["response"]
    theirs = json.loads(lmms_out.read_text(encoding="utf-8"))
    same = sum(ours.get(sid) == text for sid, text in theirs.items())
    if same != p["n"] or len(ours) != p["n"]:
        raise SystemExit(f"responses differ: {same}/{p['n']} byte-identical")
    wall = {k2: median([t.wall_s for t in v]) for k2, v in res.items()}
    cpu = {k2: median([t.cpu_s for t in v]) for k2, v in res.items()}
    print(f"machine: {machine()}; {p['n']} questions, 4 frames each, 64 new tokens, torch threads {args.threads}; "
          f"repeats {args.repeats}, interleaved, from process start")
    print(f"responses byte-identical: {same}/{p['n']}")
    print(f"{'side':<18}{'wall s':>9}{'cpu s':>9}{'peak RSS MiB':>14}")
    for name, ts in res.items():
        print(f"{name:<18}{wall[name]:>9.2f}{cpu[name]:>9.2f}{median([t.peak_rss_mib for t in ts]):>14.0f}")
    for name in ("vpbench cold", "vpbench warm"):
        print(f"  {name} / lmms-eval: wall {wall[name] / wall['lmms-eval 0.7.3']:.2f}x, "
              f"cpu {cpu[name] / cpu['lmms-eval 0.7.3']:.2f}x")
    print(f"ratio vpbench warm / lmms-eval (wall): {wall['vpbench warm'] / wall['lmms-eval 0.7.3']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
