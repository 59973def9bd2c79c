"""Data-craft pipeline (vpbench.craft): validator rules, offline end-to-end craft on generated MotionBench data
(schema, key-frame ranges, sparsification ratios, resumability, bad records) and the endpoint annotator against a
local stub server."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from vpbench.craft.annotate import PROMPT_VERSION, SYSTEM_PROMPT, EndpointAnnotator, EndpointConfig, parse_annotation
from vpbench.craft.inputs import CraftItem
from vpbench.craft.pipeline import craft_config_from_mapping, load_craft_config, run_craft
from vpbench.craft.state import JsonlSink
from vpbench.craft.validate import REASON_CODES, ValidatorConfig, temporal_cues, validate_caption, validate_qa
from vpbench.errors import ConfigError, DataError

SFT_KEYS = {"id", "video", "start", "end", "prompt", "answer", "keywords", "key_frames", "n_frames", "meta"}
RL_KEYS = {"id", "video", "start", "end", "prompt", "answer", "answer_type", "keywords", "key_frames"}


# ------------------------------------------------------------------------------------------- validator

CAPTIONS = [
    ("The lamp flashes twice, then it stops.", []),
    ("The camera pans left for 2 seconds.", []),
    ("The lamp glows at 2 seconds.", []),
    ("The lamp flashes 1 time.", []),
    ("", ["empty"]),
    ("the lamp flashes twice.", ["not_capitalized"]),
    ("The lamp flashes twice", ["unterminated"]),
    ("A bright lamp. It flashes twice.", ["no_verb"]),
    ("The the lamp flashes twice.", ["repeated_word"]),
    ("The lamp flashes brightly.", ["no_temporal_cue"]),
    ("The lamp flashes twice while the narrator counts.", ["off_screen"]),
    ("A dog barks off-screen before the video starts.", ["off_screen"]),
    ("we can't see the lamp", ["not_capitalized", "unterminated", "no_temporal_cue", "off_screen"]),
]

QAS = [
    ("How many times does the lamp flash?", "3", "number", (), []),
    ("At what timestamp does the subject snap their fingers?", "2.5", "number", (), []),
    ("Does the person blink before turning their head?", "Yes.", "open", (), []),
    ("Which object moves first?", "B", "choice", ("red circle", "blue square"), []),
    ("What color is the lamp?", "It is yellow at 2 seconds.", "open", (), []),  # the cue is in the answer
    ("Which object moves?", "A", "choice", ("the one that moves second", "none"), []),  # cue in the option text
    ("How many times does the lamp flash", "3", "number", (), ["question_mark"]),
    ("How many times does the lamp flash?", "", "number", (), ["empty_answer"]),
    ("How many times does the lamp flash?", "three", "number", (), ["bad_answer"]),
    ("Which object moves first?", "C", "choice", ("red circle", "blue square"), ["bad_answer"]),
    ("Which object moves first?", "A", "choice", ("red circle",), ["bad_options"]),
    ("What color is the lamp?", "Yellow.", "open", (), ["no_temporal_cue"]),
    ("The total?", "3", "number", (), ["no_verb", "no_temporal_cue"]),
    ("What happens outside the frame after the crash?", "A car stops.", "open", (), ["off_screen"]),
    ("What do we hear after the lamp flashes?", "A click.", "open", (), ["off_screen"]),
    ("", "3", "number", (), ["empty"]),
]


@pytest.mark.parametrize("caption,codes", CAPTIONS)
def test_validate_caption(caption: str, codes: list[str]) -> None:
    got = validate_caption(caption)
    assert [r.code for r in got] == codes
    assert all(r.code in REASON_CODES and r.message for r in got)


@pytest.mark.parametrize("question,answer,atype,options,codes", QAS)
def test_validate_qa(question: str, answer: str, atype: str, options: tuple[str, ...], codes: list[str]) -> None:
    assert [r.code for r in validate_qa(question, answer, atype, options)] == codes


def test_validator_cues_and_switches() -> None:
    assert temporal_cues("First the lamp flashes twice for 1 second at 2 seconds.") == (
        "count", "duration", "order", "time")
    assert temporal_cues("The lamp is yellow.") == ()
    assert validate_caption("The lamp flashes brightly.", ValidatorConfig(temporal=False)) == []
    assert [r.code for r in validate_caption("the lamp.", ValidatorConfig(grammar=False))] == ["no_temporal_cue"]
    with pytest.raises(ValueError, match="answer_type"):
        validate_qa("When?", "1", "yesno")


# ------------------------------------------------------------------------------------------- config

def test_load_craft_config(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("input: {kind: motionbench, root: data/mb}\noutput: {dir: out}\nprotocol: {fps: 4}\n")
    cfg = load_craft_config(p, {"sparsify.target_ratio": "0.1", "protocol.nframes": "8",
                                "annotate.endpoint.model": "m"})
    assert cfg.sparsify.target_ratio == 0.1
    assert (cfg.protocol.fps, cfg.protocol.nframes) == (None, 8)
    assert cfg.annotate.endpoint == {"model": "m"}
    with pytest.raises(ConfigError, match="did you mean 'sparsify'"):
        load_craft_config(p, {"sparsfy.enabled": "false"})
    with pytest.raises(ConfigError, match="did you mean 'target_ratio'"):
        load_craft_config(p, {"sparsify.target_rato": "0.1"})
    for name in ("synthetic.yaml", "openai.yaml"):
        path = Path(__file__).parents[1] / "recipes/configs/craft" / name
        assert path.read_text().startswith("# "), name
        load_craft_config(path, {"input.root": "x"})


# ------------------------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def mb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vpbench.synth.motionbench import synth_motionbench

    root = tmp_path_factory.mktemp("mb")
    synth_motionbench(root, seed=0, n_videos=6)
    return root


def _cfg(root: Path, out: Path, **extra: Any) -> Any:
    raw = {"input": {"kind": "motionbench", "root": str(root)}, "output": {"dir": str(out)},
           "keyframes": {"scorer": "motion_energy", "min_prominence": 1.0}, "keywords": {"backend": "rules"},
           "annotate": {"annotator": "template"}, "protocol": {"fps": 10.0, "min_pixels": 12544}}
    raw.update(extra)
    return craft_config_from_mapping(raw)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _outputs(out: Path) -> dict[str, str]:
    rep = json.loads((out / "craft_report.json").read_text())
    rep.pop("config")
    return {**{k: (out / f"{k}.jsonl").read_text() for k in ("sft", "rl", "rejected")},
            "report": json.dumps(rep, sort_keys=True)}


@pytest.fixture(scope="module")
def crafted(mb: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("craft")
    return out, run_craft(_cfg(mb, out))


def test_craft_manifests(mb: Path, crafted: tuple[Path, Any]) -> None:
    from vpbench.train.manifest import read_manifest
    from vpbench.video.decode import decode_frames, probe

    out, rep = crafted
    assert (rep.items, rep.processed, rep.skipped, rep.errors) == (6, 6, 0, 0)
    sft, rl, rejected = _lines(out / "sft.jsonl"), _lines(out / "rl.jsonl"), _lines(out / "rejected.jsonl")
    assert (len(sft), len(rl), len(rejected)) == (rep.sft, rep.rl, rep.rejected)
    assert sft and rl and rejected
    assert len(read_manifest(out / "sft.jsonl")) == len(sft)
    cfg = _cfg(mb, out)
    n_frames: dict[str, int] = {}
    for line in sft:
        assert set(line) == SFT_KEYS
        video = Path(line["video"]) if Path(line["video"]).is_absolute() else out / line["video"]
        if line["video"] not in n_frames:
            n_frames[line["video"]] = decode_frames(video, cfg.protocol).array.shape[0]
        assert line["n_frames"] == n_frames[line["video"]]
        assert line["key_frames"] == sorted(set(line["key_frames"])) and line["key_frames"]
        assert all(0 <= k < line["n_frames"] for k in line["key_frames"])
        assert line["keywords"] and all(isinstance(k, str) and k for k in line["keywords"])
    assert [r["id"] for r in rl] == [s["id"] for s in sft]  # rl_captions: every SFT prompt is an RL prompt
    truth = json.loads((mb / "synth_truth.json").read_text())
    for line in rl:
        assert set(line) == RL_KEYS and line["answer_type"] in ("choice", "number", "open")
        if line["answer_type"] == "choice":
            assert line["answer"] in "ABCDEF" and f"\n{line['answer']}. " in line["prompt"]
        uid = line["id"].split("/")[1]
        if uid in truth and line["answer_type"] == "number":  # a MotionBench count question became a number
            assert line["answer"] == truth[uid]["answer_text"]
    for r in rejected:
        assert r["reasons"] and all(x["code"] and x["message"] for x in r["reasons"])
    # sparsification of the Repetition Count (flash) clip: ratios from the true event frames, by hand
    report = json.loads((out / "craft_report.json").read_text())
    rows = [l for l in (mb / "video_info.meta.jsonl").read_text().splitlines()
            if json.loads(l)["question_type"] == "Repetition Count"]
    key = json.loads(rows[0])["key"]
    sp = next(c for c in report["sparsify"]["clips"] if c["item"] == key)
    n_ev = len(truth[key]["event_frames"])
    assert sp["ratio_before"] == pytest.approx(n_ev / truth[key]["n_frames"])
    assert sp["applied"] == (n_ev / truth[key]["n_frames"] > 0.05)
    if sp["applied"]:
        assert sp["ratio_after"] <= 0.05 + 1e-9 and sp["ratio_after"] == pytest.approx(n_ev / sp["n_out_frames"])
        assert probe(out / "videos" / f"{key}.mp4").n_frames == sp["n_out_frames"]
        assert all(l["video"] == f"videos/{key}.mp4" for l in sft if l["id"].startswith(key))


def test_craft_resume(mb: Path, crafted: tuple[Path, Any], tmp_path: Path) -> None:
    out, _ = crafted
    before = _outputs(out)
    again = run_craft(_cfg(mb, out))
    assert (again.processed, again.skipped) == (0, 6)
    assert _outputs(out) == before
    # a lost last line is written back, and only that item runs again
    sft = (out / "sft.jsonl").read_text().splitlines(keepends=True)
    (out / "sft.jsonl").write_text("".join(sft[:-1]))
    again = run_craft(_cfg(mb, out))
    assert again.processed == 1
    assert _outputs(out) == before
    # a crash mid-way (a record write half-way through fails) plus a half-written line, then a resumed run
    out2 = tmp_path / "crash"
    crash_at = sum(len(before[k].splitlines()) for k in ("sft", "rl", "rejected")) // 2
    calls = {"n": 0}
    real_write = JsonlSink.write

    def flaky(self: JsonlSink, record: dict[str, Any]) -> bool:
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise RuntimeError("simulated crash")
        return real_write(self, record)

    JsonlSink.write = flaky  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_craft(_cfg(mb, out2))
    finally:
        JsonlSink.write = real_write  # type: ignore[method-assign]
    with open(out2 / "sft.jsonl", "a") as f:
        f.write('{"id": "half-writ')
    resumed = run_craft(_cfg(mb, out2))
    assert resumed.skipped >= 1 and resumed.processed >= 1
    assert _outputs(out2) == before


# ------------------------------------------------------------------------------------------- endpoint

class _Stub:
    """A local OpenAI-compatible chat endpoint that serves queued answers and records requests."""

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.answers, self.requests = list(answers), []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append((self.path, dict(self.headers), body))
                code, content = stub.answers.pop(0) if len(stub.answers) > 1 else stub.answers[0]
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}
                                     if code == 200 else {"error": content}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *a: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "_Stub":
        self.thread.start()
        return self

    def __exit__(self, *a: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


GOOD = json.dumps({"caption": "The lamp flashes twice, then it stays dark.",
                   "qa": [{"question": "How many times does the lamp flash?", "answer": "2", "answer_type": "number"},
                          {"question": "What does the lamp do first?", "answer": "B. it flashes",
                           "answer_type": "choice", "options": ["it dims", "it flashes", "it moves"]},
                          {"question": "What color is the lamp?", "answer": "Yellow.", "answer_type": "open"}]})


def test_endpoint_annotator(tmp_path: Path) -> None:
    item = CraftItem(id="clip1", video=None, context="label: flash")
    with _Stub([(200, "sorry, no JSON"), (500, "busy"), (200, "```json\n" + GOOD + "\n```")]) as stub:
        cfg = EndpointConfig(base_url=stub.url, model="stub-model", api_key="sk-test", backoff_s=0.0,
                             cache_path=str(tmp_path / "ann.sqlite"))
        ann = EndpointAnnotator(cfg).annotate(item, 3.0)
        assert len(stub.requests) == 3  # invalid JSON and HTTP 500 were retried
        path, headers, body = stub.requests[-1]
        assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer sk-test"
        assert body["model"] == "stub-model"
        assert body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT.format(n_qa=3)}
        assert "label: flash" in body["messages"][1]["content"] and "3.00 s" in body["messages"][1]["content"]
        assert ann.caption == "The lamp flashes twice, then it stays dark."
        assert [(q.answer, q.answer_type) for q in ann.qa] == [("2", "number"), ("B", "choice"), ("Yellow.", "open")]
        assert ann.source == f"endpoint:stub-model:{PROMPT_VERSION}"
        assert EndpointAnnotator(cfg).annotate(item, 3.0) == ann and len(stub.requests) == 3  # cache hit
        other = EndpointConfig(base_url=stub.url, model="other", backoff_s=0.0, cache_path=str(tmp_path / "ann.sqlite"))
        EndpointAnnotator(other).annotate(item, 3.0)
        assert len(stub.requests) == 4  # the cache is per model
    with _Stub([(200, '{"caption": "x"}')]) as stub:
        bad = EndpointConfig(base_url=stub.url, model="m", max_retries=1, backoff_s=0.0, cache_path="")
        with pytest.raises(DataError, match="no valid annotation for clip 'clip1' after 2 attempts"):
            EndpointAnnotator(bad).annotate(item)
    with _Stub([(401, "bad key")]) as stub:
        with pytest.raises(ConfigError, match="HTTP 401"):
            EndpointAnnotator(EndpointConfig(base_url=stub.url, model="m", cache_path="")).annotate(item)
    with pytest.raises(ValueError, match="not an option letter"):
        parse_annotation(json.dumps({"caption": "A.", "qa": [{"question": "Q?", "answer": "E", "answer_type": "choice",
                                                              "options": ["a", "b"]}]}), "c", 3)


def test_craft_videos_with_endpoint(mb: Path, tmp_path: Path) -> None:
    """Folder-of-videos input with an annotation file holding a corrupt line and a missing video."""
    rows = [json.loads(l) for l in (mb / "video_info.meta.jsonl").read_text().splitlines()]
    flash = next(r for r in rows if r["question_type"] == "Repetition Count")
    root = tmp_path / "videos"
    root.mkdir()
    shutil.copy(mb / "self-collected" / flash["video_path"], root / "a.mp4")
    ann = tmp_path / "ann.jsonl"
    ann.write_text("\n".join([
        json.dumps({"video": "a.mp4", "id": "a", "context": "a lamp", "transient": True,
                    "caption": "The lamp flashes twice off-screen."}),
        "{not json",
        json.dumps({"video": "missing.mp4", "id": "b"}),
        json.dumps({"video": "a.mp4", "id": "c", "bogus": 1}),
    ]) + "\n")
    with _Stub([(200, GOOD)]) as stub:
        cfg = craft_config_from_mapping({
            "input": {"kind": "videos", "root": str(root), "annotations": str(ann)},
            "output": {"dir": str(tmp_path / "out")},
            "annotate": {"annotator": "endpoint", "endpoint": {"base_url": stub.url, "model": "m", "cache_path": ""}},
            "keyframes": {"scorer": "motion_energy", "min_prominence": 1.0},
            "sparsify": {"segments": "scorer"}, "protocol": {"fps": 10.0, "min_pixels": 12544}})
        rep = run_craft(cfg)
        assert len(stub.requests) == 1  # one clip reached the annotator
    assert (rep.items, rep.done, rep.errors) == (4, 1, 3)
    rejected = {r["id"]: [x["code"] for x in r["reasons"]] for r in _lines(tmp_path / "out" / "rejected.jsonl")}
    assert rejected["line2"] == ["bad_record"] and rejected["line4"] == ["bad_record"]
    assert rejected["b"] == ["missing_media"]
    assert rejected["a/ex_caption"] == ["off_screen"]  # the existing caption is validated too
    assert rejected["a/qa2"] == ["no_temporal_cue"]
    sft = {l["id"]: l for l in _lines(tmp_path / "out" / "sft.jsonl")}
    assert set(sft) == {"a/caption", "a/qa0", "a/qa1"}
    assert sft["a/qa1"]["answer"] == "B" and "\nB. it flashes\n" in sft["a/qa1"]["prompt"]
    sp = json.loads((tmp_path / "out" / "craft_report.json").read_text())["sparsify"]["clips"][0]
    assert sp["segments_from"] == "scorer"


def test_cli_data_craft_runs_the_synthetic_config(tmp_path, monkeypatch):
    """`vpbench data craft --config recipes/configs/craft/synthetic.yaml` end to end, resumable."""
    from pathlib import Path

    from vpbench import cli
    from vpbench.synth.motionbench import synth_motionbench

    monkeypatch.chdir(tmp_path)
    synth_motionbench(tmp_path / "runs/synth/motionbench", seed=0, n_videos=6)
    config = Path(__file__).resolve().parent.parent / "recipes/configs/craft/synthetic.yaml"
    assert cli.main(["data", "craft", "--config", str(config)]) == 0
    sft = (tmp_path / "runs/craft/synthetic/sft.jsonl").read_text().splitlines()
    assert sft
    assert cli.main(["data", "craft", "--config", str(config)]) == 0
    assert (tmp_path / "runs/craft/synthetic/sft.jsonl").read_text().splitlines() == sft
    assert cli.main(["data", "craft", "--config", str(config), "--set", "protocl.fps=2"]) == 2


def test_api_key_never_reaches_the_craft_report():
    root = Path(__file__).resolve().parent.parent / "recipes/configs/craft/openai.yaml"
    cfg = load_craft_config(root, {"annotate.endpoint.api_key": "sk-secret"})
    assert "sk-secret" in repr(dataclasses.asdict(cfg))  # the key is really in the config...
    assert "sk-secret" not in json.dumps(cfg.to_dict())  # ...and redacted in what gets written


# ------------------------------------------------------------------------------------------- review fixes

def _choice(answer: str, options: list[str]) -> str:
    content = json.dumps({"caption": "The car turns twice.", "qa": [
        {"question": "Which car turns first?", "answer": answer, "answer_type": "choice", "options": options}]})
    return parse_annotation(content, "c", 3).qa[0].answer


@pytest.mark.parametrize("answer,letter", [("A", "A"), ("(B)", "B"), ("B.", "B"), ("B)", "B"),
                                           ("B. the blue car", "B"), ("the red car", "A")])
def test_choice_answer_forms(answer: str, letter: str) -> None:
    assert _choice(answer, ["the red car", "the blue car"]) == letter


@pytest.mark.parametrize("answer", ["A red car turns first", "B. the red car", "A. red car", "C", "(C)", "AB",
                                    "A blue car"])
def test_choice_answer_prose_is_malformed(answer: str) -> None:
    from vpbench.llm import MalformedResponse

    with pytest.raises(ValueError, match="not an option letter"):
        _choice(answer, ["the red car", "the blue car"])
    # through the endpoint annotator the ValueError is a MalformedResponse (retried, then a DataError)
    item = CraftItem(id="clip1", video=Path("x.mp4"), facts={"caption": "A car."})
    bad = json.dumps({"caption": "The car turns twice.", "qa": [
        {"question": "Which car turns first?", "answer": answer, "answer_type": "choice",
         "options": ["the red car", "the blue car"]}]})
    with _Stub([(200, bad)]) as stub:
        cfg = EndpointConfig(base_url=stub.url, model="m", max_retries=0, backoff_s=0.0, cache_path="")
        with pytest.raises(DataError, match="no valid annotation"):
            EndpointAnnotator(cfg).annotate(item)
    assert issubclass(MalformedResponse, ValueError)


def test_choice_letter_checked_without_grammar_validation() -> None:
    from vpbench.craft.annotate import Annotation, QAItem
    from vpbench.craft.process import units_of

    cfg = _cfg(Path("/nonexistent"), Path("/tmp/unused"), validate={"grammar": False, "temporal": False})
    qa = (QAItem("Which one moves first?", "A red car turns first", "choice", ("red", "blue"), uid="q0"),
          QAItem("Which one moves first?", "C", "choice", ("red", "blue"), uid="q1"),
          QAItem("Which one moves first?", "A", "choice", ("red",), uid="q2"),
          QAItem("Which one moves first?", "B", "choice", ("red", "blue"), uid="q3"))
    units, rejected = units_of(Annotation(video_id="v", caption=None, qa=qa), cfg, "v")
    assert [u.uid for u in units] == ["q3"] and units[0].keyword_text == "Which one moves first? blue"
    codes = {r["id"]: [x["code"] for x in r["reasons"]] for r in rejected}
    assert codes == {"v/q0": ["bad_answer"], "v/q1": ["bad_answer"], "v/q2": ["bad_options"]}


def test_key_frames_only_at_frame_0_are_rejected(mb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """degrade() keeps frame 0: a unit whose only key frame is 0 would give V' == V → no_key_frames."""
    import vpbench.keyframes.select as select

    monkeypatch.setattr(select, "select_keys", lambda scores, cfg: [0])
    rep = run_craft(_cfg(mb, tmp_path / "out", input={"kind": "motionbench", "root": str(mb), "limit": 1}))
    assert rep.sft == 0 and rep.rl == 0 and rep.rejected >= 1
    rejected = _lines(tmp_path / "out" / "rejected.jsonl")
    kf = [r for r in rejected if r["stage"] == "keyframes"]
    assert kf and all([x["code"] for x in r["reasons"]] == ["no_key_frames"] for r in kf)
    assert "after frame 0" in kf[0]["reasons"][0]["message"]
    monkeypatch.setattr(select, "select_keys", lambda scores, cfg: [0, 2])
    rep = run_craft(_cfg(mb, tmp_path / "out2", input={"kind": "motionbench", "root": str(mb), "limit": 1}))
    assert rep.sft >= 1 and all(line["key_frames"] == [0, 2] for line in _lines(tmp_path / "out2" / "sft.jsonl"))


def test_changed_craft_config_refuses_the_output_dir(mb: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    lim = {"kind": "motionbench", "root": str(mb), "limit": 1}
    first = run_craft(_cfg(mb, out, input=lim))
    state = _lines(out / "state.jsonl")
    assert state and len({s["config_sha256"] for s in state}) == 1
    before = _outputs(out)
    with pytest.raises(ConfigError, match="another craft config.*Use a new output.dir"):
        run_craft(_cfg(mb, out, input=lim, protocol={"fps": 5.0, "min_pixels": 12544}))
    with pytest.raises(ConfigError, match="another craft config"):
        run_craft(_cfg(mb, out, input=lim, keyframes={"scorer": "random", "min_prominence": 1.0}))
    assert _outputs(out) == before  # nothing was written
    # the same settings in another dir, a larger limit or retry_errors are the same config
    again = run_craft(_cfg(mb, out, input={**lim, "limit": 2}, output={"dir": str(out), "retry_errors": True}))
    assert again.skipped == first.processed == 1 and again.processed == 1
    from vpbench.craft.state import config_fingerprint

    assert config_fingerprint(_cfg(mb, out).to_dict()) == config_fingerprint(_cfg(mb, tmp_path / "x").to_dict())


def test_empty_cache_path_disables_the_annotation_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vpbench.craft.annotate import get_annotator

    monkeypatch.setenv("VPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    ann = get_annotator("endpoint", {"base_url": "http://127.0.0.1:9/v1", "model": "m", "cache_path": ""})
    assert ann.cache_path is None
    ann = get_annotator("endpoint", {"base_url": "http://127.0.0.1:9/v1", "model": "m"})
    assert ann.cache_path == tmp_path / "cache" / "annotations.sqlite"
