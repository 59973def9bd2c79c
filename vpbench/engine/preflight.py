"""Preflight before any model loads: every needed video exists and decodes; replay covers every
sample. Problems fail the run with a count, the first 10 offenders and the fix; with
``--allow-missing`` they are excluded and recorded instead (the run becomes partial)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from vpbench.errors import MissingMedia
from vpbench.protocol import Protocol
from vpbench.task import Task
from vpbench.types import Sample


@dataclass(frozen=True)
class PreflightReport:
    n_samples: int
    problems: Mapping[str, str] = field(default_factory=dict)  # sample id → problem

    @property
    def ok(self) -> bool:
        return not self.problems


def check_media(task: Task, samples: Sequence[Sample], data_root: Path, workers: int = 2,
                protocol: Protocol | None = None) -> PreflightReport:
    """Probe every distinct video and clip range once; map problems back to sample ids.

    With ``protocol``, each clip must also yield the protocol's frame count (a clip shorter than
    ``nframes`` is a problem here, not a decode failure mid-run).

    A folder of frame images (``VideoRef.frames_fps`` set, or a directory) is checked at its
    ``frames_fps``: missing folder, no images, unreadable images and a missing rate are problems.
    """
    from vpbench.video.check import check_videos

    by_video: dict[tuple[str, float | None, float | None, float | None], list[str]] = {}
    for s in samples:
        if s.video is None:
            continue
        by_video.setdefault((s.video.path, s.video.start_s, s.video.end_s, s.video.frames_fps), []).append(s.id)

    def item(key: tuple[str, float | None, float | None, float | None]) -> tuple:
        rel, start_s, end_s, frames_fps = key
        return (task.video_path(data_root, rel), start_s, end_s, frames_fps)

    items = sorted({item(k) for k in by_video}, key=str)
    problems_by_item = check_videos(items, workers=workers, protocol=protocol)
    problems: dict[str, str] = {}
    for key, ids in by_video.items():
        rel = key[0]
        problem = problems_by_item.get(item(key))
        if problem:
            for sid in ids:
                problems[sid] = f"{task.video_path(data_root, rel)}: {problem}"
    return PreflightReport(len(samples), problems)


def fail_message(task: str, report: PreflightReport, fix: str) -> str:
    items = list(report.problems.items())
    lines = [f"{task}: preflight failed for {len(items)} of {report.n_samples} samples:"]
    lines += [f"  - {sid}: {problem}" for sid, problem in items[:10]]
    if len(items) > 10:
        lines.append(f"  ... and {len(items) - 10} more")
    lines.append(fix)
    lines.append("Or re-run with --allow-missing to exclude them (coverage is then recorded and the run is partial).")
    return "\n".join(lines)


def enforce(task: str, report: PreflightReport, allow_missing: bool, fix: str) -> set[str]:
    if report.ok:
        return set()
    if not allow_missing:
        raise MissingMedia(fail_message(task, report, fix))
    return set(report.problems)


def media_fix(task: Task, report: PreflightReport, data_root: Path) -> str:
    """One "Fix:" line per kind of problem found (missing, undecodable, too short for the protocol)."""
    kinds = {_kind(p) for p in report.problems.values()}
    fixes = []
    if "missing" in kinds:
        fixes.append(f"Fix (missing): place the videos under {Path(data_root) / task.video_dir} as the task README "
                     f"says (tasks/{task.name}/README.md), or check --data-root.")
    if "corrupt" in kinds:
        fixes.append("Fix (does not decode): the file is there but broken or truncated; download it again "
                     "(or re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`).")
    if "short" in kinds:
        fixes.append(f"Fix (too short): the clip has fewer frames than the protocol samples; check the clip's "
                     f"start/end in the annotation, or lower the frame count (--set {task.name}.protocol.nframes=N "
                     f"or protocol.min_frames=N).")
    return "\n".join(fixes)


def _kind(problem: str) -> str:
    """"missing", "short" or "corrupt" for a problem line ``<path>: <problem>``."""
    if ": too short" in problem:
        return "short"
    if problem.endswith((": missing", ": missing folder")):
        return "missing"
    return "corrupt"
