"""The JSONL SFT manifest the stage-1 recipe reads (written by the data-craft pipeline).

One JSON object per line::

    {"id": "hmdb_000123_q0",            # unique, non-empty string
     "video": "clips/000123.mp4",       # path; relative paths resolve against data.video_root
                                         # (default: the manifest's directory)
     "start": 1.5, "end": 4.0,          # optional clip range in seconds (null/absent = whole video)
     "prompt": "What does the man do right after ...?",
     "answer": "He catches the ball with his left hand.",
     "keywords": ["catches the ball", "left hand"],   # >= 1 non-empty phrase (Z_t and the scorer)
     "key_frames": [3, 9],              # optional: indices into the SAMPLED frames (the recipe's
                                         # data.fps/nframes/pixel settings); else computed on the fly
     "n_frames": 16,                    # optional: frame count key_frames refers to (checked)
     "meta": {...}}                     # optional free-form provenance, ignored by training

Unknown keys are an error (with a "did you mean"); so is a duplicate id. ``manifest_sha256``
fingerprints the file for checkpoint provenance. ``synth_sft_manifest`` writes a tiny procedurally
generated data set (vpbench.synth scenes) for tests and smoke runs.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vpbench.config import suggest
from vpbench.errors import DataError

FIELDS = ("id", "video", "start", "end", "prompt", "answer", "keywords", "key_frames", "n_frames", "meta")
REQUIRED = ("id", "video", "prompt", "answer", "keywords")


@dataclass(frozen=True)
class SFTExample:
    id: str
    video: str  # resolved absolute path
    prompt: str
    answer: str
    keywords: tuple[str, ...]
    start: float | None = None
    end: float | None = None
    key_frames: tuple[int, ...] | None = None
    n_frames: int | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "video": self.video, "prompt": self.prompt, "answer": self.answer,
                             "keywords": list(self.keywords)}
        for k in ("start", "end", "n_frames"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        if self.key_frames is not None:
            d["key_frames"] = list(self.key_frames)
        return d


def _bad(path: Path, line: int, rid: Any, problem: str) -> DataError:
    who = f" (id {rid!r})" if rid is not None else ""
    return DataError(f"{path}:{line}{who}: {problem}; fix the manifest (schema: vpbench/train/manifest.py)")


def parse_record(obj: Any, path: Path, line: int, root: Path) -> SFTExample:
    if not isinstance(obj, dict):
        raise _bad(path, line, None, f"expected a JSON object, got {type(obj).__name__}")
    rid = obj.get("id")
    for key in obj:
        if key not in FIELDS:
            raise _bad(path, line, rid, f"unknown key {key!r}{suggest(key, FIELDS)}")
    for key in REQUIRED:
        if key not in obj:
            raise _bad(path, line, rid, f"missing required key {key!r}")
    for key in ("id", "video", "prompt", "answer"):
        if not isinstance(obj[key], str) or not obj[key].strip():
            raise _bad(path, line, rid, f"{key!r} must be a non-empty string")
    kws = obj["keywords"]
    if not isinstance(kws, list) or not kws or not all(isinstance(k, str) and k.strip() for k in kws):
        raise _bad(path, line, rid, "'keywords' must be a non-empty list of non-empty strings")
    times = {}
    for key in ("start", "end"):
        v = obj.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                              or v < 0):
            raise _bad(path, line, rid, f"{key!r} must be a number of seconds >= 0 or null, got {v!r}")
        times[key] = None if v is None else float(v)
    if times["start"] is not None and times["end"] is not None and times["end"] <= times["start"]:
        raise _bad(path, line, rid, f"'end' ({times['end']}) must be after 'start' ({times['start']})")
    kf = obj.get("key_frames")
    if kf is not None and (not isinstance(kf, list)
                           or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in kf)):
        raise _bad(path, line, rid, "'key_frames' must be a list of frame indices >= 0 (or absent)")
    nf = obj.get("n_frames")
    if nf is not None and (isinstance(nf, bool) or not isinstance(nf, int) or nf < 1):
        raise _bad(path, line, rid, "'n_frames' must be an integer >= 1 (or absent)")
    if kf is not None and nf is not None and any(i >= nf for i in kf):
        raise _bad(path, line, rid, f"'key_frames' {kf} out of range for n_frames={nf}")
    if obj.get("meta") is not None and not isinstance(obj["meta"], dict):
        raise _bad(path, line, rid, "'meta' must be an object")
    video = Path(obj["video"])
    return SFTExample(
        id=obj["id"], video=str(video if video.is_absolute() else root / video), prompt=obj["prompt"],
        answer=obj["answer"], keywords=tuple(k.strip() for k in kws), start=times["start"], end=times["end"],
        key_frames=None if kf is None else tuple(kf), n_frames=nf,
    )


def read_manifest(path: str | Path, video_root: str | Path | None = None) -> list[SFTExample]:
    """Parse and validate a manifest; raises DataError naming the file, the line and the id."""
    return read_jsonl_records(path, video_root, parse_record, "SFT manifest",
                              "set data.manifest to a JSONL file")


def read_jsonl_records(path: str | Path, video_root: str | Path | None, parse: Callable[..., Any], kind: str,
                       fix: str, bad: Callable[[Path, int, Any, str], DataError] | None = None) -> list[Any]:
    """Read a JSONL manifest with ``parse(obj, path, line, root)`` per line: blank lines skipped, ids
    unique, at least one record; every problem is a DataError (``bad(path, line, id, problem)``)
    naming the file, the line and the id."""
    bad = bad or _bad
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{kind} {path} not found; {fix}")
    root = Path(video_root) if video_root else path.parent
    out: list[Any] = []
    seen: dict[str, int] = {}
    for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise bad(path, i, None, f"not valid JSON ({e})") from e
        ex = parse(obj, path, i, root)
        if ex.id in seen:
            raise bad(path, i, ex.id, f"duplicate id (first on line {seen[ex.id]})")
        seen[ex.id] = i
        out.append(ex)
    if not out:
        raise DataError(f"{kind} {path} holds no records")
    return out


def manifest_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# FFmpeg's native encoder: reproducible bytes (see ``synth_sft_manifest``); libx264 is not, here.
SYNTH_CODEC = "mpeg4"


def synth_sft_manifest(out_dir: str | Path, n_clips: int = 4, seed: int = 0, *, size: int = 56,
                       n_frames: int = 16, fps: float = 8.0) -> Path:
    """Write ``n_clips`` tiny mp4 clips (vpbench.synth scenes, ``size``×``size``) and
    ``manifest.jsonl`` (one QA per clip, keywords from the scene facts, no key_frames); return the
    manifest path. Deterministic in ``seed``: the same bytes in any process, whatever ran before.

    The clips are MPEG-4 Part 2 (FFmpeg's own single-threaded encoder), not libx264: PyAV's bundled
    x264 (crf with macroblock-tree, SIMD path; ``mbtree=0`` or ``asm=0`` make it stable) encodes the
    same frames to different bytes (and decoded pixels) depending on the process's heap state. That made the stage-1 golden curves depend on what ran earlier in the process.
    """
    import numpy as np

    from vpbench.synth.render import write_mp4
    from vpbench.synth.scenes import Canvas, make_scene

    out = Path(out_dir)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    canvas = Canvas(width=size, height=size, fps=fps, n_frames=n_frames)
    kinds = ("camera", "motion_type", "destination")
    lines = []
    for i in range(n_clips):
        kind = kinds[i % len(kinds)]
        scene = make_scene(kind, rng, canvas)
        rel = f"clips/{i:03d}_{kind}.mp4"
        write_mp4(out / rel, scene.frames, scene.fps, codec=SYNTH_CODEC)
        caption = str(scene.facts.get("caption", kind))
        words = [w.strip(".,") for w in caption.split() if len(w.strip(".,")) > 3][:3] or [kind]
        lines.append(json.dumps({
            "id": f"synth_{seed}_{i:03d}", "video": rel,
            "prompt": "Describe the motion in the video in detail.", "answer": caption, "keywords": words,
        }))
    path = out / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
