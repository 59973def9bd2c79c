"""Conformance with the official VRU-Accident scorer on its own shipped responses and results.

Data: the official repository's MetaData/, Model_Response/ and results/ (commit c5d84f6), found
at ``$VPBENCH_CONFORMANCE_DIR/vru_accident`` or ``<repo>/../shared/conformance/vru_accident``.
Each model goes through the vpbench path: official responses → replay JSONL → the task's samples
→ parser → score → Record → the task's aggregate, and must print the official numbers: VQA
``correct/total (xx.xx%)`` for every category of all 17 models (Average = mean of the six), and
captioning ROUGE-1/2/L P/R/F and METEOR to the 3 decimals of results/ for all 16 models (in the
default run: about 12 s per model on 2 cores).
"""

from __future__ import annotations

import importlib
import json
import os
import re
from pathlib import Path

import pytest
from conftest import require

from vpbench.errors import DataError
from vpbench.metrics import wordnet
from vpbench.parsers.vru import OFFICIAL_MODEL_PARSERS, VQA_PARSERS, official_vqa_parser
from vpbench.registry import get_task
from vpbench.task import StatsOptions, Task
from vpbench.types import Record, Sample

REPO = Path(__file__).resolve().parent.parent


def _conformance_dir() -> Path | None:
    candidates = []
    if os.environ.get("VPBENCH_CONFORMANCE_DIR"):
        candidates.append(Path(os.environ["VPBENCH_CONFORMANCE_DIR"]) / "vru_accident")
    candidates += [REPO.parent / "shared" / "conformance" / "vru_accident", Path("/work/shared/conformance/vru_accident")]
    return next((c for c in candidates if (c / "results").is_dir()), None)


ROOT = _conformance_dir()
MISSING = ("VRU-Accident conformance data not found: set VPBENCH_CONFORMANCE_DIR to the folder holding "
           "vru_accident/ (official MetaData, Model_Response, results), or place shared/ beside the repository")


@pytest.fixture
def conformance_data() -> Path:
    require(ROOT is not None, MISSING)  # fails under CI=true
    assert ROOT is not None
    return ROOT


needs_data = pytest.mark.usefixtures("conformance_data")
NO_STATS = StatsOptions(n_boot=0)
VQA_MODELS = sorted(OFFICIAL_MODEL_PARSERS)
# without the data one placeholder keeps the parametrized test collected, so that CI fails on it
CAPTION_MODELS = sorted(p.name for p in (ROOT / "Model_Response" / "Dense_Captioning").iterdir()) if ROOT else ["(no data)"]
LINE = re.compile(r"^- (.+): (\d+)/(\d+) \((\d+\.\d\d)%\)$")


def _task_module(name: str):
    get_task(name)  # registers the vpbench_tasks package
    return importlib.import_module(f"vpbench_tasks.{name}.task")


def _records(task: Task, samples: list[Sample], replay: Path, parser_name: str) -> list[Record]:
    """What `vpbench run --model replay:FILE --parser NAME` records, minus frames and timing."""
    responses = {row["sample_id"]: row["response"] for row in map(json.loads, replay.read_text().splitlines())}
    assert set(responses) == {s.id for s in samples}
    parser = task.parser(parser_name)
    out = []
    for s in samples:
        parsed = parser(responses[s.id], s.options, s.meta)
        out.append(Record(
            sample_id=s.id, task=task.name, cluster=s.cluster, groups=dict(s.groups), answer=s.answer,
            options=s.options, meta=dict(s.meta), request_fingerprint="", protocol_fingerprint="",
            frame_timestamps_s=(), response=responses[s.id], parsed=parsed, parser=parser.tag,
            scores=dict(task.score(parsed, s.answer, s.meta)),
        ))
    return out


def _vqa_result_file(model: str) -> Path:
    hits = list((ROOT / "results" / "VQA").glob(f"{model}_*VQA_Acc.json"))
    hits = [h for h in hits if h.name in (f"{model}_VQA_Acc.json", f"{model}_Video_VQA_Acc.json")]
    assert len(hits) == 1, hits
    return hits[0]


def _official_vqa(model: str) -> dict[str, tuple[int, int, str]]:
    rows = {}
    for line in _vqa_result_file(model).read_text(encoding="utf-8").splitlines():
        m = LINE.match(line.strip())
        if m:
            rows[m.group(1)] = (int(m.group(2)), int(m.group(3)), m.group(4))
    assert len(rows) == 6
    return rows


@pytest.fixture(scope="module")
def vqa():
    if ROOT is None:
        require(False, MISSING)
    mod = _task_module("vru_accident_vqa")
    return mod, mod.TASK.load_samples(ROOT)


@needs_data
def test_vqa_samples_from_official_files(vqa) -> None:
    mod, samples = vqa
    assert len(samples) == 6000 and len({s.id for s in samples}) == 6000
    s = next(x for x in samples if x.id == "vru_accident_vqa/DoTA/VRU_1/weather and light")
    assert s.video.path == "VRU_videos/DoTA/VRU_1.mp4" and s.cluster == "DoTA/VRU_1"
    assert s.groups == {"category": "weather and light", "source": "DoTA"}
    text = mod.TASK.build_messages(s, mod.TASK.protocol)[-1].parts[0].text
    assert text == s.question + " " + s.meta["options_text"]
    assert [p.kind for p in mod.TASK.build_messages(s, mod.TASK.protocol)[-1].parts] == ["text", "video"]
    letters = [x.answer for x in samples]
    assert (letters.count("A"), letters.count("B"), letters.count("C"), letters.count("D")) == (1529, 1481, 1522, 1468)


@needs_data
@pytest.mark.parametrize("model", VQA_MODELS)
def test_vqa_reproduces_official_results(vqa, model: str, tmp_path: Path) -> None:
    mod, samples = vqa
    replay = tmp_path / f"{model}.jsonl"
    assert mod.official_vqa_replay(ROOT / "Model_Response" / "VQA" / model, replay) == 6000
    agg = mod.TASK.aggregate(_records(mod.TASK, samples, replay, official_vqa_parser(model)), NO_STATS)
    got = {m.name: m for m in agg.metrics}
    official = _official_vqa(model)
    for key, column in mod.CATEGORIES.items():
        correct, total, pct = official[key]
        m = got[column]
        assert (round(m.value * m.n), m.n) == (correct, total), (model, key)
        assert f"{m.value * 100:.2f}" == pct, (model, key)
    mean_official = sum(c / t for c, t, _ in official.values()) / 6
    assert got["Average"].value == pytest.approx(mean_official, abs=1e-12)


# Averages the official README / paper print (2 decimals), for the models benchmarks.md lists.
PAPER_AVG = {"Gemini_15_flash": "66.85", "GPT_4o_mini": "52.05", "InternVL3_8B": "64.42", "LLaVA_Video": "64.38",
             "Qwen2_VL_7B": "52.05", "Qwen25_VL": "48.82"}


@needs_data
@pytest.mark.parametrize("model", sorted(PAPER_AVG))
def test_vqa_average_matches_paper_table(model: str) -> None:
    official = _official_vqa(model)
    avg = sum(c / t for c, t, _ in official.values()) / 6 * 100
    assert f"{avg:.2f}" == PAPER_AVG[model]


@needs_data
@pytest.mark.parametrize("model", VQA_MODELS)
def test_replayed_preds_are_fixed_points_of_their_parser(vqa, model: str) -> None:
    """Replaying saved preds through the model's own official parser is the identity, and the qwen
    parser is the identity on every saved single letter (so letters replay under the default)."""
    mod, _ = vqa
    preds = mod.official_vqa_predictions(ROOT / "Model_Response" / "VQA" / model)
    own, qwen = VQA_PARSERS[official_vqa_parser(model)], VQA_PARSERS["qwen"]
    for sid, pred in preds.items():
        assert own(pred or "") == pred, (model, sid, pred)
        if pred in ("A", "B", "C", "D"):
            assert qwen(pred) == pred
    non_letters = sum(1 for p in preds.values() if p is not None and p not in ("A", "B", "C", "D"))
    assert non_letters == {"Gemini_15_flash": 26, "GPT_4o_mini": 8}.get(model, 0)


# --- dense captioning ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def caption():
    if ROOT is None:
        require(False, MISSING)
    mod = _task_module("vru_accident_caption")
    return mod, mod.TASK.load_samples(ROOT)


@needs_data
def test_caption_pairs_by_order_equal_pairs_by_key(caption) -> None:
    mod, samples = caption
    assert len(samples) == 1000
    assert len(CAPTION_MODELS) == 16
    for model in CAPTION_MODELS:
        pairs = mod.official_caption_pairs(ROOT / "Model_Response" / "Dense_Captioning" / model, ROOT)
        assert [p[0] for p in pairs] == [s.id for s in samples]
        assert all(agree for _, _, agree in pairs), model


def _check_caption_model(mod, samples, model: str, tmp_path: Path) -> None:
    replay = tmp_path / f"{model}.jsonl"
    assert mod.official_caption_replay(ROOT / "Model_Response" / "Dense_Captioning" / model, ROOT, replay) == 1000
    records = _records(mod.TASK, samples, replay, "raw")
    agg = mod.TASK.aggregate(records, NO_STATS)
    got = {m.name: m.value for m in agg.metrics}
    official = json.loads((ROOT / "results" / "Dense_Captioning" / f"{model}_DenseCaption_Score.json").read_text())
    want = {"METEOR": official["METEOR"]}
    for key, label in (("ROUGE1", "1"), ("ROUGE2", "2"), ("ROUGEL", "L")):
        for field, short in (("precision", "P"), ("recall", "R"), ("fmeasure", "F")):
            want[f"ROUGE-{label} {short}"] = official["ROUGE"][key][field]
    assert {k: round(got[k], 3) for k in want} == want, model


@needs_data
@pytest.mark.parametrize("model", CAPTION_MODELS)
def test_caption_reproduces_official_results(caption, model: str, tmp_path: Path) -> None:
    require(wordnet.wordnet_available(), f"METEOR needs WordNet: {wordnet.INSTALL_HINT}")
    mod, samples = caption
    _check_caption_model(mod, samples, model, tmp_path)


# --- loaders, scorer and aggregation on hand-written files (no conformance data needed) -------
def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _tiny_vru(root: Path, *, bad_key: bool = False) -> Path:
    cats = ["weather and light", "location", "road type", "accident type", "accident reason", "prevention method"]
    for src in ("CAP_DATA", "DADA_2000", "DoTA", "MANUAL_DATA"):
        keys = [f"./VRU_videos/{src}/VRU_{n}" for n in (1, 2)]
        if bad_key and src == "DoTA":
            keys[1] = "./videos/DoTA/VRU_2"
        _write(root / "MetaData" / src / f"{src}_VQA_annotation.json",
               {k + ".mp4": {c: {"question": f"Q {c}?", "options": "A. x, B. y, C. z, D. w", "GT": "B"} for c in cats}
                for k in keys})
        _write(root / "MetaData" / src / f"{src}_Dense_Caption.json", {k: {"gt": f"a car hits a man {k}"} for k in keys})
    return root


def test_vqa_task_on_tiny_files(tmp_path: Path) -> None:
    mod = _task_module("vru_accident_vqa")
    samples = mod.TASK.load_samples(_tiny_vru(tmp_path))
    assert len(samples) == 48 and samples[0].id == "vru_accident_vqa/CAP_DATA/VRU_1/weather and light"
    assert mod.TASK.score(" b ", "B", {}) == {"acc": 1.0, "answered": 1.0}
    assert mod.TASK.score("B.", "B", {})["acc"] == 0.0 and mod.TASK.score(None, "B", {})["acc"] == 0.0
    replay = tmp_path / "r.jsonl"
    replay.write_text("".join(json.dumps({"sample_id": s.id, "response": "B" if s.groups["category"] == "location"
                                          or s.cluster.endswith("VRU_1") else "C"}) + "\n" for s in samples))
    agg = mod.TASK.aggregate(_records(mod.TASK, samples, replay, "qwen"), NO_STATS)
    got = {m.name: m.value for m in agg.metrics}
    assert got["Traffic Environment"] == 1.0 and got["Weather & Light"] == 0.5
    assert got["Average"] == pytest.approx((1.0 + 5 * 0.5) / 6)
    with pytest.raises(DataError, match="VRU_videos/DoTA"):
        mod.TASK.load_samples(_tiny_vru(tmp_path / "bad", bad_key=True))


def test_caption_task_on_tiny_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VPBENCH_CORENLP_DIR", raising=False)
    monkeypatch.delenv("VPBENCH_COMET_CKPT", raising=False)
    mod = _task_module("vru_accident_caption")
    root = _tiny_vru(tmp_path)
    samples = mod.TASK.load_samples(root)
    assert len(samples) == 8 and samples[2].id == "vru_accident_caption/DADA_2000/VRU_1"
    msgs = mod.TASK.build_messages(samples[0], mod.TASK.protocol)
    assert msgs[-1].parts[0].text == mod.OFFICIAL_PROMPT and msgs[-1].parts[1].kind == "video"
    # official pairing is by order: a response file whose keys are swapped still pairs position-wise
    model = tmp_path / "model"
    for src in mod.SOURCES:
        keys = [f"./VRU_videos/{src}/VRU_{n}.mp4" for n in (2, 1)]
        _write(model / f"{src}_Dense_Captioning_response.json", {k: {"pred": f"pred {i}"} for i, k in enumerate(keys)})
    pairs = mod.official_caption_pairs(model, root)
    assert pairs[0] == ("vru_accident_caption/CAP_DATA/VRU_1", "pred 0", False)
    replay = tmp_path / "c.jsonl"
    assert mod.official_caption_replay(model, root, replay) == 8
    agg = mod.TASK.aggregate(_records(mod.TASK, samples, replay, "raw"), NO_STATS)
    names = [m.name for m in agg.metrics]
    assert names[-9:] == [label for _, label in mod.ROUGE_COLUMNS]
    assert any(n.startswith("SPICE not reported") and "VPBENCH_CORENLP_DIR" in n for n in agg.notes)
    assert any(n.startswith("COMET not reported") and "VPBENCH_COMET_CKPT" in n for n in agg.notes)


def test_absent_data_fails_under_ci_and_skips_elsewhere(monkeypatch) -> None:
    import conftest

    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true: required here, not skipped"):
        conftest.require(False, MISSING)
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception):
        conftest.require(False, MISSING)
    conftest.require(True, MISSING)  # present: nothing happens


@needs_data
def test_official_options_split_into_four_labelled_texts(vqa) -> None:
    mod, samples = vqa
    for s in samples:
        assert [o[:3] for o in s.options] == ["A. ", "B. ", "C. ", "D. "], s.id
        at = 0
        for o in s.options:  # each text appears in the raw string, in order
            at = s.meta["options_text"].index(o[3:], at) + len(o[3:])


def test_option_split_handles_the_official_separators() -> None:
    split_options = _task_module("vru_accident_vqa").split_options
    assert split_options("A. sunny day, B. cloudy night, C. stormy day, D. rainy evening") == (
        "A. sunny day", "B. cloudy night", "C. stormy day", "D. rainy evening")
    assert split_options("A.Cyclist crosses., B.car, C. look around. D. Drivers slow down") == (
        "A. Cyclist crosses.", "B. car", "C. look around.", "D. Drivers slow down")
    assert split_options("A. x, C. y, D. z") is None  # B missing: refused by the loader
    assert split_options("A. , B. y, C. z, D. w") is None  # an empty text


@needs_data
def test_convert_command_then_run_reproduces_official_vqa(tmp_path: Path, capsys) -> None:
    """`vpbench convert vru-accident` writes the replay and prints the run that scores it officially."""
    from vpbench.cli import main

    replay, out = tmp_path / "gpt.jsonl", tmp_path / "run"
    assert main(["convert", "vru-accident", str(ROOT / "Model_Response" / "VQA" / "GPT_4o_mini"),
                 "--output", str(replay), "--data-root", str(ROOT)]) == 0
    printed = capsys.readouterr().out
    run = printed.split("score them with:\n  ")[1].strip().split()
    assert run[:2] == ["vpbench", "run"] and "parser=gpt" in run
    assert main([*run[1:-1], str(out), "--set", "stats.n_boot=0"]) == 0
    result = json.loads((out / "vru_accident_vqa" / "result.json").read_text())
    got = {m["name"]: m for m in result["metrics"]}
    mod = _task_module("vru_accident_vqa")
    for key, (correct, total, _pct) in _official_vqa("GPT_4o_mini").items():
        m = got[mod.CATEGORIES[key]]
        assert (round(m["value"] * m["n"]), m["n"]) == (correct, total), key


def test_convert_refuses_a_folder_without_responses(tmp_path: Path, capsys) -> None:
    from vpbench.cli import main

    assert main(["convert", "vru-accident", str(tmp_path), "--output", str(tmp_path / "x.jsonl")]) == 2
    assert "no *_VQA_response.json or *_Dense_Captioning_response.json" in capsys.readouterr().err
