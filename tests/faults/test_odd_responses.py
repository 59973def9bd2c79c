"""Odd response text (lone surrogates, undecodable bytes, control characters, line separators,
huge replies) never stops a run, its resume, ``vpbench score`` or ``vpbench export``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faultkit import assert_ok, manifest, records, run_cli, sample_ids

ODD = {
    "lone_surrogate": "\ud800 A",
    "lone_low_surrogate": "B \udfff",
    "nul_and_controls": "A\x00\x01\x1b[31m",
    "line_separators": "first\u2028second\u2029\x85 C",
    "bom_and_rtl": "\ufeff\u202eA",
    "huge_reply": "A " + "x" * 1_000_000,
    "empty_reply": "",
}


def _replay_lines(texts: dict[str, str]) -> bytes:
    # separators and controls are written raw (as a user's tool would), lone surrogates as the
    # JSON escape "\\ud800" (raw they are not UTF-8)
    from vpbench.hashing import safe_dumps

    return "".join(safe_dumps({"sample_id": s, "task": "motionbench", "response": t}) + "\n"
                   for s, t in texts.items()).encode("utf-8")


KINDS = sorted(ODD)
GROUPS = [KINDS[:4], KINDS[4:]]  # each run answers its 5 samples with these kinds, in turn


@pytest.mark.parametrize("kinds", GROUPS, ids=["+".join(g) for g in GROUPS])
def test_odd_response_runs_resumes_scores_and_exports(kinds: list[str], motionbench_root: Path, tmp_path: Path,
                                                      capsys) -> None:
    ids = sample_ids(motionbench_root)
    texts = {s: ODD[kinds[i % len(kinds)]] for i, s in enumerate(ids)}
    replay = tmp_path / "replay.jsonl"
    replay.write_bytes(_replay_lines(texts))
    out = tmp_path / "out"
    argv = ["run", "--model", f"replay:{replay}", "--tasks", "motionbench", "--data-root", motionbench_root,
            "--output", out]
    assert_ok(run_cli(capsys, *argv))
    first = records(out)
    assert {r["sample_id"]: r["response"] for r in first} == texts  # kept exactly, not mangled
    assert_ok(run_cli(capsys, *argv))  # resume reads them back
    assert manifest(out)["tasks"]["motionbench"]["invocations"][-1]["n_generated"] == 0
    assert records(out) == first
    assert_ok(run_cli(capsys, "score", out))
    sub = tmp_path / "sub.json"
    assert_ok(run_cli(capsys, "export", out, "--task", "motionbench", "--output", sub))
    assert sorted(json.loads(sub.read_text(encoding="utf-8"))) == sorted(ids)


def test_undecodable_bytes_in_a_replay_response(motionbench_root: Path, tmp_path: Path, capsys) -> None:
    ids = sample_ids(motionbench_root)
    replay = tmp_path / "replay.jsonl"
    replay.write_bytes(b"".join(b'{"sample_id": "%s", "response": "A \xff\xfe"}\n' % s.encode() for s in ids))
    out = tmp_path / "out"
    argv = ["run", "--model", f"replay:{replay}", "--tasks", "motionbench", "--data-root", motionbench_root,
            "--output", out]
    assert_ok(run_cli(capsys, *argv))
    assert {r["response"] for r in records(out)} == {"A \udcff\udcfe"}  # the bytes survive as escapes
    assert {r["parsed"] for r in records(out)} == {"A"}
    assert_ok(run_cli(capsys, *argv))


def test_lone_surrogate_in_the_annotation(motionbench_root: Path, tmp_path: Path, capsys) -> None:
    meta = motionbench_root / "video_info.meta.jsonl"
    meta.write_text(meta.read_text().replace("How many times", "How \\ud800 many times", 1))
    ids = sample_ids(motionbench_root)
    replay = tmp_path / "replay.jsonl"
    replay.write_bytes(_replay_lines({s: "A" for s in ids}))
    o = run_cli(capsys, "run", "--model", f"replay:{replay}", "--tasks", "motionbench", "--data-root",
                motionbench_root, "--output", tmp_path / "out")
    assert_ok(o)
    assert len(records(tmp_path / "out")) == len(ids)
