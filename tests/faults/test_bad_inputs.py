"""Bad or unusual inputs, each refused with exit 2 and a message naming the file/record and the fix
(never a traceback, never a silent result). One row of tests/faults/README.md per case id."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from faultkit import META, assert_refused, edit_qa, edit_row, run_cli, sample_ids, write_replay


@dataclass
class Ctx:
    root: Path
    out: Path
    replay: Path
    tmp: Path

    def run(self, *extra: str, model: str | None = None) -> list[str]:
        return ["run", "--model", model or f"replay:{self.replay}", "--tasks", "motionbench",
                "--data-root", str(self.root), "--output", str(self.out), *extra]


CASES: dict[str, tuple[Callable[[Ctx], list[str]], tuple[str, ...]]] = {}


def case(name: str, *fragments: str):
    def register(fn: Callable[[Ctx], list[str]]):
        CASES[name] = (fn, fragments)
        return fn
    return register


# --- annotation file ------------------------------------------------------------------------------
@case("ann_empty_file", "no samples found", META)
def _(c):
    (c.root / META).write_text("")
    return c.run()


@case("ann_blank_lines_only", "no samples found")
def _(c):
    (c.root / META).write_text("\n  \n\n")
    return c.run()


@case("ann_missing_file", "not found", "vpbench synth motionbench")
def _(c):
    (c.root / META).unlink()
    return c.run()


@case("ann_not_json", "not a MotionBench video row", f"{META}:2")
def _(c):
    lines = (c.root / META).read_text().splitlines()
    lines[1] = lines[1][:40]
    (c.root / META).write_text("\n".join(lines) + "\n")
    return c.run()


@case("ann_row_is_array", "not a MotionBench video row", f"{META}:1")
def _(c):
    (c.root / META).write_text("[1, 2, 3]\n")
    return c.run()


@case("ann_row_missing_qa", "not a MotionBench video row", "'qa'")
def _(c):
    edit_row(c.root, lambda r: r.pop("qa"))
    return c.run()


@case("ann_qa_object", "'qa' must be a list", f"{META}:1")
def _(c):
    edit_row(c.root, lambda r: r.update(qa=r["qa"][0]))
    return c.run()


@case("ann_qa_strings", "'qa' must be a list")
def _(c):
    edit_row(c.root, lambda r: r.update(qa=["what?"]))
    return c.run()


@case("ann_video_path_null", "video_path must be a non-empty string", f"{META}:1")
def _(c):
    edit_row(c.root, lambda r: r.update(video_path=None))
    return c.run()


@case("ann_video_path_number", "video_path must be a non-empty string")
def _(c):
    edit_row(c.root, lambda r: r.update(video_path=17))
    return c.run()


@case("ann_video_path_empty", "video_path must be a non-empty string")
def _(c):
    edit_row(c.root, lambda r: r.update(video_path=""))
    return c.run()


@case("ann_path_dotdot", "leaves the data root", "'../../x.mp4'", "qa1", "Fix")
def _(c):
    edit_row(c.root, lambda r: r.update(video_path="../../x.mp4"))
    return c.run()


@case("ann_path_dotdot_inner", "leaves the data root", "Fix")
def _(c):
    edit_row(c.root, lambda r: r.update(video_path="a/../../../x.mp4"))
    return c.run()


@case("ann_path_absolute", "is absolute", "/etc/hostname", "Fix")
def _(c):
    edit_row(c.root, lambda r: r.update(video_path="/etc/hostname"))
    return c.run()


@case("ann_path_home", "is absolute")
def _(c):
    edit_row(c.root, lambda r: r.update(video_path="~/x.mp4"))
    return c.run()


@case("ann_start_string", "start must be a finite number", "'abc'", "qa1")
def _(c):
    edit_qa(c.root, lambda q: q.update(start="abc"))
    return c.run()


@case("ann_start_negative", "start must be >= 0", "qa1")
def _(c):
    edit_qa(c.root, lambda q: q.update(start=-1))
    return c.run()


@case("ann_start_bool", "start must be a finite number")
def _(c):
    edit_qa(c.root, lambda q: q.update(start=True))
    return c.run()


@case("ann_start_nan", "start must be a finite number", "nan")
def _(c):
    data = (c.root / META).read_text().replace('"start": null', '"start": NaN', 1)
    (c.root / META).write_text(data)
    return c.run()


@case("ann_end_before_start", "clip end (1.0) must be after its start (2.0)")
def _(c):
    edit_qa(c.root, lambda q: q.update(start=2.0, end=1.0))
    return c.run()


@case("ann_unknown_question_type", "unknown question_type 'Dance'")
def _(c):
    edit_row(c.root, lambda r: r.update(question_type="Dance"))
    return c.run()


@case("ann_duplicate_uid", "QA uid 'qa1' is missing or duplicated")
def _(c):
    edit_qa(c.root, lambda q: q.update(uid="qa1"), row=0, qa=1)
    return c.run()


@case("ann_missing_uid", "QA uid '' is missing or duplicated")
def _(c):
    edit_qa(c.root, lambda q: q.pop("uid"))
    return c.run()


@case("ann_answer_not_letter", "answer 'Z'", "fix the annotation file")
def _(c):
    edit_qa(c.root, lambda q: q.update(answer="Z"))
    return c.run()


@case("ann_duplicate_option_letters", "repeat the letter(s) A", "qa1")
def _(c):
    edit_qa(c.root, lambda q: q.update(question="How many?\nA. 1\nA. 2\nC. 3", answer="C"))
    return c.run()


@case("ann_empty_option_text", "has a letter but no text", "qa1")
def _(c):
    edit_qa(c.root, lambda q: q.update(question="How many?\nA. \nB. 2\nC. 3", answer="B"))
    return c.run()


@case("ann_question_number", "'question' must be a string")
def _(c):
    edit_qa(c.root, lambda q: q.update(question=42))
    return c.run()


@case("ann_no_options", "has no inline options")
def _(c):
    edit_qa(c.root, lambda q: q.update(question="How many times?"))
    return c.run()


@case("ann_invalid_utf8", "cannot read the annotation file", "Fix")
def _(c):
    (c.root / META).write_bytes((c.root / META).read_bytes().replace(b"How many", b"\xff\xfe many", 1))
    return c.run()


@case("ann_file_is_directory", "cannot read the annotation file")
def _(c):
    (c.root / META).unlink()
    (c.root / META).mkdir()
    return c.run()


@case("data_root_missing", "does not exist", "--data-root")
def _(c):
    shutil.rmtree(c.root)
    return c.run()


# --- protocol values (--set) ---------------------------------------------------------------------
for _key, _value, _msg in [
    ("fps", "inf", "protocol.fps must be a finite number > 0, got inf"),
    ("fps", "nan", "protocol.fps must be a finite number > 0, got nan"),
    ("fps", "0", "protocol.fps must be a finite number > 0"),
    ("fps", "abc", "bad value for 'fps'"),
    ("min_frames", "-5", "protocol.min_frames must be >= 1, got -5"),
    ("total_pixels", "0", "protocol.total_pixels must be >= 1, got 0"),
    ("total_pixels", "10", "protocol.total_pixels (10) must be >= protocol.min_pixels"),
    ("top_p", "5", "protocol.top_p must be in (0, 1], got 5"),
    ("top_p", "0", "protocol.top_p must be in (0, 1], got 0"),
    ("frame_factor", "0", "protocol.frame_factor must be >= 1, got 0"),
    ("nframes", "1", "protocol.nframes must be >= 2"),
    ("max_new_tokens", "0", "protocol.max_new_tokens must be > 0"),
    ("temperature", "-1", "protocol.temperature must be >= 0"),
    ("min_pixels", "4000000", "min_pixels <= max_pixels"),
    ("max_frames", "2", "protocol.min_frames must be <= protocol.max_frames"),
    ("prompt_template", "{foo}", "names the unknown field {foo}"),
    ("prompt_template", "{question", "is not a valid template"),
    ("prompt_template", "{0}", "fields must be plain names"),
    ("prompt_template", "{question.upper}", "fields must be plain names"),
    ("fsp", "1", "unknown key 'fsp'"),
]:
    def _make(key=_key, value=_value):
        return lambda c: c.run("--set", f"protocol.{key}={value}")
    CASES[f"protocol_{_key}_{_value}"] = (_make(), (_msg,))


@case("preset_unknown", "has no protocol preset 'lmms'")
def _(c):
    return c.run("--set", "motionbench.preset=lmms")


@case("parser_unknown", "has no parser 'offical'")
def _(c):
    return c.run("--set", "parser=offical")


# --- output dir, cache, run dir --------------------------------------------------------------------
@case("output_is_file", "is a file, not a directory", "Fix")
def _(c):
    c.out.write_text("x")
    return c.run()


@case("output_read_only", "cannot be written", "Fix")
def _(c):
    if os.geteuid() == 0:  # root writes through permission bits: use a read-only file system instead
        c.out = Path("/sys/vpbench-fault-test")
    else:
        c.out.mkdir()
        c.out.chmod(0o555)
    return c.run()


@case("cache_path_is_dir", "is a directory", "--no-cache")
def _(c):
    (c.tmp / "cachedir").mkdir()
    return c.run("--cache-path", str(c.tmp / "cachedir"))


@case("cache_corrupt", "cannot be used", "file is not a database", "--no-cache")
def _(c):
    c.out.mkdir()
    (c.out / "response_cache.sqlite").write_bytes(b"this is not sqlite" * 100)
    return c.run()


@case("manifest_corrupt", "manifest.json: not valid JSON", "Fix")
def _(c):
    c.out.mkdir()
    (c.out / "manifest.json").write_text("{broken")
    return c.run()


@case("records_corrupt_middle_line", "corrupt record line", "records.jsonl:1")
def _(c):
    (c.out / "motionbench").mkdir(parents=True)
    (c.out / "motionbench" / "records.jsonl").write_text('{"sample_id": "qa1", \n{"x": 1}\n')
    return c.run()


@case("records_not_a_record", "not a vpbench record")
def _(c):
    (c.out / "motionbench").mkdir(parents=True)
    (c.out / "motionbench" / "records.jsonl").write_text('{"sample_id": "qa1"}\n')
    return c.run()


@case("run_dir_other_model", "holds a run of a different model", "new --output")
def _(c):
    assert run_cli_quiet(c.run(model="dummy:first")) == 0
    return c.run()


# --- replay file ------------------------------------------------------------------------------------
@case("replay_missing_file", "replay file not found")
def _(c):
    c.replay.unlink()
    return c.run()


@case("replay_not_json", "not JSON", "replay.jsonl:1")
def _(c):
    c.replay.write_text("{nope\n")
    return c.run()


@case("replay_no_sample_id", 'needs "sample_id" and "response"')
def _(c):
    c.replay.write_text(json.dumps({"response": "A"}) + "\n")
    return c.run()


@case("replay_response_not_string", '"response" must be a string, got int')
def _(c):
    c.replay.write_text(json.dumps({"sample_id": "qa1", "response": 3}) + "\n")
    return c.run()


@case("replay_duplicate", "duplicate response for sample 'qa1'")
def _(c):
    c.replay.write_text((json.dumps({"sample_id": "qa1", "response": "A"}) + "\n") * 2)
    return c.run()


@case("replay_missing_ids", "no response in the replay file", "Fix: add the missing sample ids", "--allow-missing")
def _(c):
    write_replay(c.replay, {"qa1": "A"})
    return c.run()


@case("replay_other_task_ids", "no response in the replay file")
def _(c):
    write_replay(c.replay, {s: "A" for s in sample_ids(c.root)}, task="mvbench")
    return c.run()


# --- model, device, command line ---------------------------------------------------------------------
@case("model_missing_dir", "not a local checkpoint directory")
def _(c):
    return c.run(model=str(c.tmp / "nope"))


@case("model_dir_without_config", "no config.json")
def _(c):
    (c.tmp / "ckpt").mkdir()
    return c.run(model=str(c.tmp / "ckpt"))


@case("model_dummy_bad_seed", "the dummy seed must be an integer")
def _(c):
    return c.run(model="dummy:random:abc")


@case("perception_gap_replay", "--perception-gap needs a backend that sees frames")
def _(c):
    return c.run("--perception-gap")


@case("limit_zero", "expected a positive integer (a sample count), got '0'")
def _(c):
    return c.run("--limit", "0")


@case("unknown_flag", "unknown argument '--outptu'", "did you mean '--output'")
def _(c):
    return c.run("--outptu", "x")


@case("unknown_task", "motionbench")
def _(c):
    return ["run", "--model", "dummy:first", "--tasks", "motionbenc", "--data-root", str(c.root),
            "--output", str(c.out)]


@case("data_root_other_task", "is not one of the requested tasks")
def _(c):
    return c.run("--data-root", f"mvbench={c.root}")


@case("set_without_equals", "must look like key=value")
def _(c):
    return c.run("--set", "protocol.fps")


@case("score_not_a_run", "manifest.json not found")
def _(c):
    c.out.mkdir()
    return ["score", str(c.out)]


@case("export_not_run", "records.jsonl not found")
def _(c):
    c.out.mkdir()
    return ["export", str(c.out), "--task", "motionbench", "--output", str(c.tmp / "sub.json")]


@case("export_no_format", "has no official submission format")
def _(c):
    return ["export", str(c.out), "--task", "vsibench", "--output", str(c.tmp / "sub.json")]


def run_cli_quiet(argv: list[str]) -> int:
    from vpbench.cli import main

    return main(argv)


@pytest.fixture
def ctx(motionbench_with_videos: Path, tmp_path: Path) -> Ctx:
    replay = write_replay(tmp_path / "replay.jsonl", {s: "A" for s in sample_ids(motionbench_with_videos)})
    return Ctx(root=motionbench_with_videos, out=tmp_path / "out", replay=replay, tmp=tmp_path)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused(name: str, ctx: Ctx, capsys) -> None:
    setup, fragments = CASES[name]
    argv = setup(ctx)
    outcome = run_cli(capsys, *argv)
    assert_refused(outcome, *fragments)
    if ctx.out.is_dir() and name.startswith(("ann_", "protocol_", "preset_", "parser_", "data_root")):
        assert not (ctx.out / "motionbench" / "records.jsonl").exists(), "refused before any generation"


def test_every_case_is_in_the_readme() -> None:
    readme = (Path(__file__).parent / "README.md").read_text()
    missing = [name for name in CASES if f"`{name}`" not in readme]
    assert not missing, f"tests/faults/README.md lacks: {missing}"


def test_case_count() -> None:
    assert len(CASES) >= 70
