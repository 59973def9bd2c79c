"""The validation layer between a task's annotation loader and the engine.

``load_task_samples`` is the one way the engine, ``vpbench data check`` and ``vpbench score`` read a
task's samples. It runs the task's loader (turning any stray exception of a malformed file into a
``DataError`` naming the file and the fix) and then checks every ``Sample`` against the rules that
hold for all tasks:

- at least one sample; ids are non-empty, unique strings; question is a string;
- the video path is a non-empty *relative* path that stays inside the data root (``..`` that
  climbs out and absolute paths are refused: annotation files are untrusted input). The check is
  lexical; symlinks placed inside the data root by its owner are followed as usual;
- clip bounds and frame-folder rates are finite numbers (start >= 0, end > start, fps > 0);
- options are non-empty strings; lettered options ("A. text") have distinct letters and a text;
- the answer is None (hidden) or a string; groups map strings to strings.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Sequence

from vpbench.errors import DataError, VpbenchError
from vpbench.task import Task
from vpbench.types import Sample

_LETTERED = re.compile(r"^\s*\(?([A-Z])[.):]\s*(.*)$", re.S)


def annotation_where(task: Task, root: Path) -> str:
    files = ", ".join(str(Path(root) / f) for f in task.annotation_files) or str(root)
    return files


def load_task_samples(task: Task, root: Path) -> list[Sample]:
    """The task's samples under ``root``, validated; bad input raises ``DataError`` (exit 2)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{task.name}: data root {root} does not exist; pass the folder holding "
                        f"{', '.join(task.annotation_files) or 'the annotation files'} as --data-root")
    try:
        samples = task.load_samples(root)
    except VpbenchError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{annotation_where(task, root)}: cannot read the annotation file ({e}); "
                        f"Fix: make it a readable file in the official format (tasks/{task.name}/README.md)") from e
    except (TypeError, AttributeError, ValueError, KeyError, IndexError) as e:
        raise DataError(f"{annotation_where(task, root)}: malformed annotation ({type(e).__name__}: {e}); "
                        f"Fix: restore the official file layout described in tasks/{task.name}/README.md") from e
    validate_samples(task, samples, root)
    return _shared(samples)


def _shared(samples: list[Sample]) -> list[Sample]:
    """The same samples with equal option tuples, clusters, groups and meta shared (a 10,000-question
    task repeats them across questions; see ``engine/records.ValuePool``)."""
    from vpbench.engine.records import ValuePool

    share = ValuePool().share
    return [Sample(s.id, s.task, s.video, s.question, share(s.options), s.answer, share(s.cluster), share(s.groups),
                   share(s.meta)) for s in samples]


def validate_samples(task: Task, samples: Sequence[Sample], root: Path) -> None:
    where = annotation_where(task, root)
    if not samples:
        raise DataError(f"{where}: no samples found (empty annotation file?); Fix: use the official annotation "
                        f"file(s) of tasks/{task.name}/README.md, or `vpbench synth {task.name} --output DIR`")
    seen: set[str] = set()
    for s in samples:
        if not isinstance(s.id, str) or not s.id:
            raise DataError(f"{where}: a sample has an empty or non-string id ({s.id!r}); Fix: give every "
                            f"question its official id")
        if s.id in seen:
            raise DataError(f"{where}: sample id {s.id!r} appears twice; Fix: ids must be unique")
        seen.add(s.id)
        problem = sample_problem(s)
        if problem:
            raise DataError(f"{where}: sample {s.id!r}: {problem}")


def sample_problem(s: Sample) -> str | None:
    """The first rule ``s`` breaks, phrased with its fix, or None."""
    if not isinstance(s.question, str):
        return f"question must be a string, got {type(s.question).__name__}; Fix: correct the annotation"
    if s.answer is not None and not isinstance(s.answer, str):
        return f"answer must be a string, got {type(s.answer).__name__}; Fix: correct the annotation"
    if any(not isinstance(k, str) or not isinstance(v, str) for k, v in dict(s.groups).items()):
        return "group labels must be strings; Fix: correct the annotation's category fields"
    return _video_problem(s) or _options_problem(s.options)


def _video_problem(s: Sample) -> str | None:
    v = s.video
    if v is None:
        return None
    if not isinstance(v.path, str) or not v.path.strip():
        return f"video path must be a non-empty string, got {v.path!r}; Fix: set the video file name"
    problem = path_escape_problem(v.path)
    if problem:
        return problem
    for name, value, low, strict in (("start", v.start_s, 0.0, False), ("end", v.end_s, 0.0, True),
                                     ("frames_fps", v.frames_fps, 0.0, True)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{name} must be a finite number of seconds or null, got {value!r}; Fix: correct the annotation"
        if value < low or (strict and value == low):
            return f"{name} must be {'>' if strict else '>='} {low:g}, got {value!r}; Fix: correct the annotation"
    if v.start_s is not None and v.end_s is not None and v.end_s <= v.start_s:
        return f"clip end ({v.end_s}) must be after its start ({v.start_s}); Fix: correct the annotation"
    return None


def path_escape_problem(rel: str) -> str | None:
    """Why ``rel`` may not be used as a path under a data root (absolute, or ``..`` climbing out)."""
    if "\x00" in rel:
        return f"video path {rel!r} holds a NUL byte; Fix: correct the annotation"
    if os.path.isabs(rel) or Path(rel).anchor or rel.startswith(("~", "\\")):
        return (f"video path {rel!r} is absolute; annotation paths must be relative to the data root "
                f"(untrusted paths may not leave it). Fix: make it relative, or move the video under the data root")
    norm = os.path.normpath(rel)
    if norm == ".." or norm.startswith(".." + os.sep):
        return (f"video path {rel!r} leaves the data root; annotation paths may not climb out with '..'. "
                f"Fix: move the video under the data root and give its path relative to it")
    return None


def _options_problem(options: Sequence[Any]) -> str | None:
    letters: list[str] = []
    for o in options:
        if not isinstance(o, str) or not o.strip():
            return f"option {o!r} is empty or not a string; Fix: give every option a text"
        m = _LETTERED.match(o)
        if m and not m.group(2).strip():
            return f"option {o!r} has a letter but no text; Fix: give every option a text"
        if m:
            letters.append(m.group(1))
    dup = sorted({x for x in letters if letters.count(x) > 1})
    if dup:
        return (f"options {list(options)} repeat the letter(s) {', '.join(dup)}; Fix: every option needs "
                f"its own letter")
    return None
