"""The lmms-eval 0.7.x bridge, both ways, offline on generated data.

Needs lmms-eval (``pip install --no-deps lmms-eval==0.7.3`` + its runtime needs): these tests carry
the ``lmms`` marker, deselected in the default run and run by ``tox -e lmms`` (``pytest -m lmms``),
where a missing lmms-eval is an import error, not a skip.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpbench import cli
from vpbench.registry import get_task

pytestmark = pytest.mark.lmms


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.synth.motionbench import synth_motionbench

    root = tmp_path_factory.mktemp("lmms")
    synth_motionbench(root / "mb", seed=3, n_videos=4)
    model = build_tiny_qwen(root / "tiny", seed=0)
    assert cli.main(["lmms", "export-task", "motionbench", "--data-root", str(root / "mb"),
                     "--output", str(root / "tasks"), "--set", "protocol.max_new_tokens=4"]) == 0
    return root, root / "mb", Path(model)


def _lmms_eval(root: Path, spec: str) -> dict:
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from vpbench.lmms.model import VpbenchLmms

    out = simple_evaluate(model=VpbenchLmms(spec=spec, device="cpu"), tasks=["vpb_motionbench"], log_samples=True,
                          task_manager=TaskManager(include_path=str(root / "tasks"), include_defaults=False))
    return out


def _vpbench(root: Path, data: Path, spec: str, name: str) -> tuple[float, dict[str, str]]:
    out = root / name
    assert cli.main(["run", "--model", spec, "--tasks", "motionbench", "--data-root", str(data), "--output", str(out),
                     "--device", "cpu", "--set", "protocol.max_new_tokens=4", "--no-cache"]) == 0
    res = json.loads((out / "results.json").read_text())["results"]["motionbench"]
    dev = {m["name"]: m["value"] for m in res["metrics"]}["Dev-AVG"]
    records = [json.loads(x) for x in (out / "motionbench" / "records.jsonl").read_text().splitlines()]
    return dev, {r["sample_id"]: r["response"] for r in records if r["answer"] is not None}


@pytest.mark.parametrize("spec", ["dummy:random:3", "TINY"])
def test_a_vpbench_task_under_lmms_eval_scores_as_vpbench_does(world, spec):
    """Done-when: one vpbench task runs under lmms-eval and the two harnesses' scores agree — with
    the tiny Qwen2.5-VL through the hf backend, the same frames give the same greedy answers."""
    root, data, model = world
    spec = str(model) if spec == "TINY" else spec
    lm = _lmms_eval(root, spec)
    acc = lm["results"]["vpb_motionbench"]["acc,none"]
    lm_responses = {s["doc"]["sample_id"]: s["resps"][0][0] for s in lm["samples"]["vpb_motionbench"]}
    dev, vp_responses = _vpbench(root, data, spec, f"run-{spec.replace('/', '_').replace(':', '_')[-20:]}")
    assert lm_responses == vp_responses  # same answer for every sample
    assert acc == pytest.approx(dev, abs=1e-12)
    assert len(lm_responses) == sum(s.answer is not None for s in get_task("motionbench").load_samples(data))


@pytest.mark.parametrize("visual", ["frames", "path"])
def test_an_lmms_eval_model_class_as_a_vpbench_backend(world, visual):
    """lmms-eval's own ``dummy`` model class (it opens every visual it is handed) through ``lmms:``."""
    root, data, _ = world
    out = root / f"lmms-backend-{visual}"
    # read_bytes: the dummy opens every visual path it gets (path mode); with frames it gets PIL images
    spec = "lmms:dummy,response=B" + (",read_bytes=16,visual=path" if visual == "path" else ",visual=frames")
    args = ["run", "--model", spec, "--tasks", "motionbench", "--data-root", str(data), "--output", str(out),
            "--no-cache"]
    assert cli.main(args) == 0
    samples = [s for s in get_task("motionbench").load_samples(data) if s.answer is not None]
    by_hand = sum(s.answer == "B" for s in samples) / len(samples)
    res = json.loads((out / "results.json").read_text())["results"]["motionbench"]
    assert {m["name"]: m["value"] for m in res["metrics"]}["Dev-AVG"] == pytest.approx(by_hand)
    records = [json.loads(x) for x in (out / "motionbench" / "records.jsonl").read_text().splitlines()]
    assert {r["response"] for r in records} == {"B"} and all(r["frame_timestamps_s"] for r in records)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["backend"] == "lmms" and manifest["model"]["visual"] == visual


def test_lmms_backend_errors_name_the_fix(world, capsys):
    root, data, _ = world
    rest = ["--tasks", "motionbench", "--data-root", str(data), "--output", str(root / "bad")]
    assert cli.main(["run", "--model", "lmms:no_such_model_xyz", *rest]) == 2
    assert "lmms-eval has no such model" in capsys.readouterr().err
    assert cli.main(["run", "--model", "lmms:dummy,visual=video", *rest]) == 2
    assert "visual=frames|path" in capsys.readouterr().err


def test_entry_point_manifest_resolves_to_the_vpbench_model():
    from lmms_eval.models import MODEL_REGISTRY_V2, get_model

    from vpbench.lmms.model import VpbenchLmms, manifests

    for m in manifests():
        MODEL_REGISTRY_V2.register_manifest(m, overwrite=True)
    assert get_model("vpbench") is VpbenchLmms
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert '[project.entry-points."lmms_eval.models"]\nvpbench = "vpbench.lmms.model:manifests"' in pyproject
