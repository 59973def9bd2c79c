"""Helpers of the fault suite: run the CLI in process, edit a MotionBench data root, read a run.

Every fault is tried the way a user meets it (a ``vpbench`` command line on files), and its
outcome is one of: a refusal (exit 2, one message naming the file/record and a "Fix"), a counted
failure inside a finished run, or a correct result. ``assert_refused`` also checks that no Python
traceback reached the user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

META = "video_info.meta.jsonl"


@dataclass(frozen=True)
class Outcome:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(capsys, *argv: str) -> Outcome:
    from vpbench.cli import main

    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse refusals
        rc = int(e.code or 0)
    captured = capsys.readouterr()
    return Outcome(rc, captured.out, captured.err)


def assert_refused(o: Outcome, *fragments: str, rc: int = 2) -> None:
    assert "Traceback" not in o.text, o.text
    assert o.rc == rc, f"exit {o.rc}, expected {rc}:\n{o.text}"
    for f in fragments:
        assert f in o.text, f"{f!r} not in:\n{o.text}"


def assert_ok(o: Outcome) -> None:
    assert "Traceback" not in o.text, o.text
    assert o.rc == 0, f"exit {o.rc}:\n{o.text}"


def rows(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / META).read_text().splitlines() if line.strip()]


def write_rows(root: Path, data: list[Any]) -> None:
    (root / META).write_text("".join(json.dumps(r) + "\n" for r in data))


def edit_row(root: Path, fn: Callable[[dict[str, Any]], None], index: int = 0) -> None:
    data = rows(root)
    fn(data[index])
    write_rows(root, data)


def edit_qa(root: Path, fn: Callable[[dict[str, Any]], None], row: int = 0, qa: int = 0) -> None:
    edit_row(root, lambda r: fn(r["qa"][qa]), row)


def write_replay(path: Path, answers: dict[str, str], task: str = "motionbench") -> Path:
    path.write_text("".join(json.dumps({"sample_id": k, "task": task, "response": v}) + "\n"
                            for k, v in answers.items()))
    return path


def sample_ids(root: Path) -> list[str]:
    return [qa["uid"] for r in rows(root) for qa in r["qa"]]


def records(out: Path, task: str = "motionbench") -> list[dict[str, Any]]:
    path = out / task / "records.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())
