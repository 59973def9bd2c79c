"""Generated training splits (vpbench/synth/training.py): schema, prompts, determinism, disjointness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpbench.synth import motionbench as mb
from vpbench.synth.training import frames_sha256, synth_training_split
from vpbench.train.manifest import read_manifest
from vpbench.types import Sample, VideoRef

RL_KEYS = {"id", "video", "start", "end", "prompt", "answer", "answer_type", "keywords", "key_frames"}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train_split")
    synth_training_split(out, seed=0, n_videos=6, canvas=_tiny_canvas())
    return out


def _tiny_canvas():
    """The tiny setup's clips (TINY_CLIP_FPS), whose 2-fps sampling gives the 14 frames the manifests index."""
    from vpbench.synth.scenes import Canvas
    from vpbench.synth.training import TINY_CLIP_FPS

    return Canvas(fps=TINY_CLIP_FPS)


def test_manifests_follow_the_recipe_and_craft_schemas(split: Path) -> None:
    examples = read_manifest(split / "sft.jsonl")  # the stage-1 recipe's strict reader
    sft, rl = _rows(split / "sft.jsonl"), _rows(split / "rl.jsonl")
    assert [r["id"] for r in sft] == [r["id"] for r in rl] == [e.id for e in examples]
    assert all(set(r) == RL_KEYS for r in rl)
    kinds = [r["meta"]["kind"] for r in sft]
    assert kinds.count("caption") == 6 and kinds.count("qa") >= 6 and kinds.count("qa_open") == kinds.count("qa")
    assert _rows(split / "sft_qa.jsonl") == [r for r in sft if r["meta"]["kind"] != "caption"]
    assert {r["meta"]["category"] for r in sft} == set(mb.CATEGORIES)
    for r in sft:
        assert Path(split / r["video"]).is_file()
        assert r["keywords"] and all(k.strip() for k in r["keywords"])
        assert r["n_frames"] == 14 and r["key_frames"] and 0 < min(r["key_frames"]) and max(r["key_frames"]) < 14
        assert r["meta"]["transient"] == (r["meta"]["category"] == "Repetition Count")
    for r in rl:
        assert r["answer_type"] == ("choice" if r["id"].split("_")[-1].startswith("q") else "open")


def test_qa_prompts_are_what_vpbench_run_shows(split: Path) -> None:
    from vpbench.registry import get_task

    TASK = get_task("motionbench")

    rows = _rows(split / "sft.jsonl")
    for r in rows:
        if r["meta"]["kind"] == "qa_open":
            choice = next(c for c in rows if c["id"] == r["id"][: -len("_open")])
            assert choice["prompt"].startswith(r["prompt"] + "\nA. ") and r["answer"] == choice["meta"]["answer_text"]
        if r["meta"]["kind"] != "qa":
            continue
        stem, _, rest = r["prompt"].partition("\nA. ")
        question = stem + "\nA. " + rest.rsplit("\nAnswer with only", 1)[0]
        sample = Sample(id=r["id"], task="motionbench", video=VideoRef(r["video"]), question=question,
                        options=tuple(mb.LETTERS[: question.count("\n")]), answer=r["answer"], cluster=r["video"])
        (msg,) = TASK.build_messages(sample, TASK.protocol)
        assert msg.parts[1].text == r["prompt"]
        lines = question.split("\n")[1:]
        assert lines[mb.LETTERS.index(r["answer"])] == f"{r['answer']}. {r['meta']['answer_text']}"


def test_same_seed_same_bytes_with_any_worker_count(split: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    synth_training_split(again, seed=0, n_videos=6, workers=2, canvas=_tiny_canvas())
    for name in ("sft.jsonl", "rl.jsonl", "split.json"):
        assert (again / name).read_bytes() == (split / name).read_bytes(), name
    for clip in sorted((split / "clips").iterdir()):
        assert (again / "clips" / clip.name).read_bytes() == clip.read_bytes(), clip.name
    other = synth_training_split(tmp_path / "other", seed=1, n_videos=6)
    assert other.read_bytes() != (split / "sft.jsonl").read_bytes()


def test_clip_seed_is_the_spawned_child_and_a_clip_does_not_depend_on_the_split_size(split: Path,
                                                                                    tmp_path: Path) -> None:
    import numpy as np

    from vpbench.synth.training import TRAIN_STREAM, clip_seed

    children = np.random.SeedSequence([3, TRAIN_STREAM]).spawn(40)
    for i in (0, 1, 17, 39):
        assert clip_seed(3, i).generate_state(8).tolist() == children[i].generate_state(8).tolist()
    # the first 6 clips of a 9-video split are the 6-video split's, byte for byte
    longer = tmp_path / "nine"
    synth_training_split(longer, seed=0, n_videos=9, canvas=_tiny_canvas())
    for clip in sorted((split / "clips").iterdir()):
        assert (longer / "clips" / clip.name).read_bytes() == clip.read_bytes(), clip.name


def test_finished_split_is_reused_and_bad_sizes_fail(split: Path) -> None:
    before = (split / "split.json").stat().st_mtime_ns
    synth_training_split(split, seed=0, n_videos=6, canvas=_tiny_canvas())
    assert (split / "split.json").stat().st_mtime_ns == before
    from vpbench.errors import ConfigError

    with pytest.raises(ConfigError, match="n_videos"):
        synth_training_split(split, seed=0, n_videos=0)


def test_no_clip_or_qa_is_shared_with_evaluation_splits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Raw rendered frames of every evaluation clip (MotionBench seeds 0 and 1, the seeds the demo and the
    benchmark use) against those of a training split with seed 0 and seed 1: no frame-identical clip."""
    eval_hashes: dict[str, str] = {}
    real = mb.write_mp4

    def spy(path, frames, fps, *a, **k):
        eval_hashes[frames_sha256(frames)] = str(path)
        return real(path, frames, fps, *a, **k)

    monkeypatch.setattr(mb, "write_mp4", spy)
    for seed in (0, 1):
        mb.synth_motionbench(tmp_path / f"eval{seed}", seed=seed, n_videos=18)
    assert len(eval_hashes) == 36
    monkeypatch.setattr(mb, "write_mp4", real)
    for seed in (0, 1):
        out = tmp_path / f"train{seed}"
        synth_training_split(out, seed=seed, n_videos=18, captions=False)
        info = json.loads((out / "split.json").read_text())
        train_hashes = {c["frames_sha256"] for c in info["clips"]}
        assert len(train_hashes) == 18
        # a QA is a (clip, question) pair: with no clip in common, no QA is shared either
        assert not train_hashes & set(eval_hashes)


def test_cli_writes_train_and_sized_eval_splits(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from vpbench.cli import main

    assert main(["synth", "motionbench", "--split", "train", "--n-videos", "3", "--output", str(tmp_path / "t")]) == 0
    assert "SFT manifest" in capsys.readouterr().out
    assert len(read_manifest(tmp_path / "t" / "sft.jsonl")) >= 6
    assert main(["synth", "motionbench", "--n-videos", "7", "--output", str(tmp_path / "e")]) == 0
    assert len((tmp_path / "e" / "video_info.meta.jsonl").read_text().splitlines()) == 7
    assert main(["synth", "mvbench", "--split", "train", "--output", str(tmp_path / "m")]) == 2
    assert "motionbench only" in capsys.readouterr().err


def test_cli_fps_writes_the_same_frames_at_that_rate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--fps: the same rendered frames, played at the given rate (info, mp4 timestamps, marker);
    another rate into the same folder is refused, the same one regenerates in place."""
    import json

    from vpbench.cli import main
    from vpbench.synth.render import read_mp4

    for name, fps in (("e10", []), ("e4", ["--fps", "4"])):
        assert main(["synth", "motionbench", "--n-videos", "2", "--seed", "1", "--output", str(tmp_path / name),
                     *fps]) == 0
    rows = {n: [json.loads(x) for x in (tmp_path / n / "video_info.meta.jsonl").read_text().splitlines()]
            for n in ("e10", "e4")}
    assert [r["video_info"]["fps"] for r in rows["e4"]] == [4.0, 4.0]
    assert [r["video_info"]["duration"] for r in rows["e4"]] == [7.5, 7.5]
    assert [r["qa"] for r in rows["e4"]] == [r["qa"] for r in rows["e10"]]
    key = rows["e4"][0]["key"]
    (f10, r10), (f4, r4) = (read_mp4(tmp_path / n / "self-collected" / f"{key}.mp4") for n in ("e10", "e4"))
    assert (r10, r4) == (10.0, 4.0) and f4.shape == f10.shape == (30, 96, 128, 3)
    assert json.loads((tmp_path / "e4" / ".vpbench-synth.json").read_text()) == {"task": "motionbench", "seed": 1,
                                                                                  "fps": 4.0}
    capsys.readouterr()
    assert main(["synth", "motionbench", "--n-videos", "2", "--seed", "1", "--output", str(tmp_path / "e4")]) == 2
    assert "--seed 1 --fps 4" in capsys.readouterr().err
    assert main(["synth", "motionbench", "--n-videos", "2", "--seed", "1", "--fps", "4",
                 "--output", str(tmp_path / "e4")]) == 0
    with pytest.raises(SystemExit) as bad:
        main(["synth", "motionbench", "--fps", "0", "--output", str(tmp_path / "z")])
    assert bad.value.code == 2 and "expected a positive finite number, got 0" in capsys.readouterr().err
    assert main(["synth", "motionbench", "--split", "train", "--n-videos", "2", "--fps", "4",
                 "--output", str(tmp_path / "t")]) == 0
    assert json.loads((tmp_path / "t" / "split.json").read_text())["params"]["canvas"][2] == 4.0


def test_truncated_rope_note_names_the_collapse_under_transformers_4() -> None:
    """transformers 4.x casts seconds-per-temporal-patch to int in get_rope_index: checked against the
    installed model code, and the note says so for the 10 -> 5 fps sampling but not for 4 -> 2 fps."""
    import torch
    import transformers

    from vpbench.models.qwen_inputs import truncated_rope_note
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLModel

    major = int(transformers.__version__.split(".")[0])
    assert truncated_rope_note(2.0) is None and truncated_rope_note(1.0) is None and truncated_rope_note(1.0714) is None
    note = truncated_rope_note(0.4286)
    if major >= 5:
        assert note is None
        return
    assert note is not None and "every video token gets temporal position 0" in note
    cfg = Qwen2_5_VLConfig(text_config={"hidden_size": 32, "num_attention_heads": 2, "num_key_value_heads": 1,
                                        "num_hidden_layers": 1, "intermediate_size": 32, "vocab_size": 16,
                                        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
                           vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 1,
                                          "out_hidden_size": 32, "tokens_per_second": 2},
                           video_token_id=5, vision_start_token_id=4, image_token_id=6)
    model = Qwen2_5_VLModel(cfg)
    ids = torch.tensor([[1, 4] + [5] * 7 + [2]])  # grid (7, 2, 2) merged 2x2 -> 7 video tokens
    for spg, want in ((0.4286, [0] * 7), (1.0714, [0, 2, 4, 6, 8, 10, 12])):
        pos, _ = model.get_rope_index(ids, None, torch.tensor([[7, 2, 2]]), second_per_grid_ts=torch.tensor([spg]))
        assert (pos[0, 0, 2:9] - pos[0, 0, 2]).tolist() == want


def test_text_letter_answers_parse_to_the_same_letter(split: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    """--mc-answer text_letter: each multiple-choice SFT answer is "<true option text> (<letter>)", which
    MotionBench's official parser and lmms-eval's extractor read as the letter of the `letter` split;
    everything else (open-form records, the RL manifest, the clips) is unchanged."""
    from tasks.motionbench.parse import lmms_eval_choice, polish_answer
    from vpbench.cli import main
    from vpbench.errors import ConfigError
    from vpbench.synth.training import MC_ANSWER_STYLES

    out = tmp_path / "tl"
    assert main(["synth", "motionbench", "--split", "train", "--n-videos", "6", "--fps", "4", "--seed", "0",
                 "--mc-answer", "text_letter", "--output", str(out)]) == 0
    assert "multiple-choice answers: text_letter" in capsys.readouterr().out
    letter, text = _rows(split / "sft.jsonl"), _rows(out / "sft.jsonl")
    assert [r["id"] for r in letter] == [r["id"] for r in text]
    n_mc = 0
    for a, b in zip(letter, text):
        if a["meta"]["kind"] != "qa":
            assert a == b
            continue
        n_mc += 1
        assert {**a, "answer": None} == {**b, "answer": None}
        assert b["answer"] == f"{a['meta']['answer_text']} ({a['answer']})"
        assert polish_answer(b["answer"]) == lmms_eval_choice(b["answer"]) == a["answer"]
    assert n_mc >= 6
    assert (out / "rl.jsonl").read_bytes() == (split / "rl.jsonl").read_bytes()
    assert json.loads((out / "split.json").read_text())["params"]["mc_answer"] == "text_letter"
    with pytest.raises(ConfigError, match="'letter', 'text_letter'"):
        synth_training_split(tmp_path / "bad", n_videos=1, mc_answer="text")
    assert not (tmp_path / "bad").exists()
    assert main(["synth", "motionbench", "--mc-answer", "text_letter", "--output", str(tmp_path / "e")]) == 2
    assert "add --split train" in capsys.readouterr().err
    import vpbench.commands.synth as cmd
    import argparse

    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers())
    action = next(a for a in parser._subparsers._group_actions[0].choices["synth"]._actions if a.dest == "mc_answer")
    assert tuple(action.choices) == MC_ANSWER_STYLES
