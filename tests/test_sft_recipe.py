"""Stage-1 recipe (SFT + intermediate-layer contrastive learning) on the tiny random Qwen2.5-VL.

Golden losses: tests/golden/sft_tiny_losses.json (transformers 4.x, the pinned CI stack) and
tests/golden/sft_tiny_losses_tf5.json (transformers 5.x, ``tox -e tf5``; see ``_golden_file``).
Re-record (after an intended change, with a note in the PR) with:

    VPBENCH_RECORD_GOLDEN=1 HF_HUB_OFFLINE=1 .venv/bin/pytest tests/test_sft_recipe.py -k golden
    VPBENCH_RECORD_GOLDEN=1 tox -e tf5 -- tests/test_sft_recipe.py -k golden
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
import torch

from vpbench.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parent.parent
TINY_YAML = ROOT / "recipes" / "configs" / "sft_contrastive" / "tiny.yaml"
GOLDEN = ROOT / "tests" / "golden" / "sft_tiny_losses.json"
GOLDEN_TF5 = ROOT / "tests" / "golden" / "sft_tiny_losses_tf5.json"
GOLDEN_STEPS = 4


def _golden_file() -> tuple[Path, str]:
    """The golden curve of the installed transformers major version, and its record command.

    transformers 5.x has its own curve, the training maths being the same: (1) 5.x MRoPE keeps the
    fractional seconds-per-grid (4.57 truncates 0.5 s to 0, so every temporal patch of the tiny
    config shares one time position) and starts post-video text at max(h, w)/merge after the video
    start; (2) ``build_tiny_qwen(seed=0)`` initialises other random weights under 5.x. With a
    4.57-built model, the same data and 4.57 positions, the 5.x stack reproduces GOLDEN to 2e-6.
    """
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return GOLDEN_TF5, "VPBENCH_RECORD_GOLDEN=1 tox -e tf5 -- tests/test_sft_recipe.py -k golden"
    return GOLDEN, "VPBENCH_RECORD_GOLDEN=1 HF_HUB_OFFLINE=1 .venv/bin/pytest tests/test_sft_recipe.py -k golden"


def _recipe_module():
    spec = importlib.util.spec_from_file_location("sft_contrastive_recipe", ROOT / "recipes" / "sft_contrastive.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.train.manifest import synth_sft_manifest

    base = tmp_path_factory.mktemp("sft")
    model_dir = build_tiny_qwen(base / "model", seed=0)
    manifest = synth_sft_manifest(base / "data", n_clips=8, seed=0)
    return {"base": base, "model": model_dir, "manifest": manifest, "recipe": _recipe_module()}


def _cfg(env: dict, out: str, **over: object):
    from vpbench.train.config import load_config

    o = {"model.path": str(env["model"]), "data.manifest": str(env["manifest"]),
         "train.output_dir": str(env["base"] / out), "train.save_every": 0, "train.max_steps": GOLDEN_STEPS}
    o.update(over)
    return load_config(TINY_YAML, o)


def _batch(env: dict, model_dir: Path, n: int = 2, **data_over: object):
    from transformers import AutoTokenizer

    from vpbench.train.collate import collate_sft
    from vpbench.train.contrastive import SpecialIds
    from vpbench.train.data import SFTDataset
    from vpbench.train.manifest import read_manifest

    cfg = _cfg(env, "unused", **{f"data.{k}": v for k, v in data_over.items()})
    tok = AutoTokenizer.from_pretrained(model_dir)
    ds = SFTDataset(read_manifest(env["manifest"]), cfg.data, model_dir, tok)
    from transformers import Qwen2_5_VLConfig

    ids = SpecialIds.from_model(Qwen2_5_VLConfig.from_pretrained(model_dir), tok)
    return collate_sft([ds[i] for i in range(n)], ids, cfg.data.padding_side), ids, cfg


def _model(env: dict, n_layers: int = 2):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    c = Qwen2_5_VLConfig.from_pretrained(env["model"], attn_implementation="sdpa")
    c.text_config.num_hidden_layers = n_layers
    c.text_config.layer_types = ["full_attention"] * n_layers
    torch.manual_seed(0)
    return Qwen2_5_VLForConditionalGeneration(c)


# -- the two passes ------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["right", "left"])
def test_sft_pass_equals_hf_loss(env: dict, side: str) -> None:
    from vpbench.train.config import ContrastiveConfig
    from vpbench.train.model import SFTContrastiveModel

    from vpbench.models.qwen_inputs import mm_token_type_ids, takes_mm_token_type_ids

    batch, ids, _ = _batch(env, env["model"], padding_side=side)
    m = _model(env).eval()
    w = SFTContrastiveModel(m, ContrastiveConfig(blocks=(1,)), ids).eval()
    # transformers 5.x builds 3D (MRoPE) positions only from mm_token_type_ids (else 1D positions)
    types = ({"mm_token_type_ids": mm_token_type_ids(batch.input_ids, ids.video_pad)}
             if takes_mm_token_type_ids(m.model) else {})
    with torch.no_grad():
        out = w(batch, passes=("sft",))
        ref = m(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels,
                pixel_values_videos=batch.pixel_values, video_grid_thw=batch.video_grid_thw,
                second_per_grid_ts=batch.second_per_grid_ts, **types)
    assert out["n_tokens"].item() == batch.n_answer_tokens
    # rel 1e-6: 1D instead of 3D positions moves this tiny model's loss by ~7e-6 (relative)
    assert (out["sft_sum"] / out["n_tokens"]).item() == pytest.approx(ref.loss.item(), rel=1e-6)


def _grads_by_part(w) -> dict[str, bool]:
    def has(mod) -> bool:
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in mod.parameters())

    inner = w.model.model
    parts = {f"layer{i}": has(layer) for i, layer in enumerate(inner.language_model.layers)}
    parts.update(norm=has(inner.language_model.norm), lm_head=has(w.model.lm_head), visual=has(inner.visual),
                 embed=has(inner.language_model.embed_tokens), heads=has(w.heads))
    return parts


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("blocks", [(2,), (1, 2)])
def test_contrastive_gradient_stops_at_block(env: dict, blocks: tuple, checkpointing: bool) -> None:
    from vpbench.train.config import ContrastiveConfig
    from vpbench.train.model import SFTContrastiveModel, enable_activation_checkpointing

    batch, ids, _ = _batch(env, env["model"])
    m = _model(env, n_layers=4)
    if checkpointing:
        enable_activation_checkpointing(m)
    w = SFTContrastiveModel(m, ContrastiveConfig(blocks=blocks, proj_dim=8, proj_hidden=16), ids).train()
    torch.manual_seed(1)
    out = w(batch, passes=("cl",))
    assert "sft_sum" not in out and out["loss"].requires_grad
    out["loss"].backward()
    g = _grads_by_part(w)
    assert g == {"layer0": True, "layer1": True, "layer2": False, "layer3": False, "norm": False,
                 "lm_head": False, "visual": True, "embed": True, "heads": True}
    # the full step also trains everything above the block (through the SFT pass)
    w.zero_grad(set_to_none=True)
    w(batch)["loss"].backward()
    assert all(_grads_by_part(w).values())


def test_segment_isolation_blocks_original_video(env: dict) -> None:
    from vpbench.train.config import ContrastiveConfig
    from vpbench.train.model import SFTContrastiveModel

    batch, ids, _ = _batch(env, env["model"])
    m = _model(env, n_layers=4).eval()
    w = SFTContrastiveModel(m, ContrastiveConfig(blocks=(2,)), ids).eval()
    n = batch.video_grid_thw.shape[0]
    grid2 = batch.video_grid_thw.repeat_interleave(2, dim=0)
    spgt2 = batch.second_per_grid_ts.repeat_interleave(2)
    with torch.no_grad():
        f = w.video_features(torch.cat([batch.pixel_values, batch.pixel_values_deg]),
                             torch.cat([batch.video_grid_thw] * 2))
        inter = [x for pair in zip(f[:n], f[n:]) for x in pair]
        changed = [x + 1.0 if i % 2 == 0 else x for i, x in enumerate(inter)]  # alter Z_v only
        g = {(iso, ch): w.encode_blocks(batch.cl, torch.cat(v), grid2, spgt2, iso)[2]
             for iso in (True, False) for ch, v in (("same", inter), ("changed", changed))}
        # 4D causal mask path == transformers' own 2D-mask path
        lm = m.model.language_model
        emb = w._embed(batch.cl.input_ids, torch.cat(inter))
        pos = w._positions(batch.cl.input_ids, grid2, spgt2, batch.cl.attention_mask)
        hs = lm(inputs_embeds=emb, attention_mask=batch.cl.attention_mask, position_ids=pos,
                output_hidden_states=True).hidden_states[2]
        rows = torch.arange(n)[:, None]
    torch.testing.assert_close(g[(False, "same")], hs[rows, batch.cl.eos_positions], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g[(True, "same")][:, 1], g[(True, "changed")][:, 1])  # h_v' blind to Z_v
    assert not torch.allclose(g[(False, "same")][:, 1], g[(False, "changed")][:, 1])  # literal causal leaks
    assert not torch.allclose(g[(True, "same")][:, 2], g[(True, "changed")][:, 2])  # h_t sees Z_v
    assert not torch.allclose(g[(True, "same")][:, 0], g[(True, "changed")][:, 0])


# -- the recipe ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def full(env: dict):
    """The tiny config for 4 steps (dropout on), checkpoints at steps 2 and 4, export at the end."""
    return env["recipe"].run(_cfg(env, "full", **{"train.save_every": 2}))


def test_golden_loss_curve(full) -> None:
    rec = full
    keys = ("loss", "sft", "v2v", "t2v", "v2t")
    got = {k: [round(h[k], 6) for h in rec.history] for k in keys}
    golden, command = _golden_file()
    if os.environ.get("VPBENCH_RECORD_GOLDEN"):
        import transformers

        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps({
            "command": command,
            "config": "recipes/configs/sft_contrastive/tiny.yaml (paths in a tmp dir, train.max_steps=4, "
                      "train.save_every=2); tiny model build_tiny_qwen(seed=0); synth_sft_manifest(8 clips, seed=0)",
            "tolerance": {"rel": 1e-5, "abs": 2e-6},  # 6 printed decimals; the run is bit-reproducible
            "env": {"torch": torch.__version__, "transformers": transformers.__version__},
            "steps": GOLDEN_STEPS, **got}, indent=2) + "\n")
    want = json.loads(golden.read_text())
    tol = want["tolerance"]
    for k in keys:
        assert got[k] == pytest.approx(want[k], rel=tol["rel"], abs=tol["abs"]), k
    assert got["loss"][-1] < got["loss"][0]


def test_synthetic_clips_do_not_depend_on_process_state(env: dict, tmp_path: Path) -> None:
    # The golden curves assume these bytes. libx264 (PyAV's build, crf + mbtree) encoded the same
    # frames differently depending on the heap: the golden test failed after other tests had run.
    from vpbench.train.manifest import synth_sft_manifest

    ref = Path(env["manifest"]).parent
    names = sorted(p.relative_to(ref) for p in ref.rglob("*.mp4"))
    assert len(names) == 8
    for i in range(6):
        junk = [bytearray(48 * (j % 89 + 1)) for j in range(700 * i)]  # a different heap each time
        again = synth_sft_manifest(tmp_path / f"again{i}", n_clips=8, seed=0).parent
        del junk
        assert [(again / n).read_bytes() for n in names] == [(ref / n).read_bytes() for n in names]


def test_recipe_run_does_not_depend_on_earlier_runs(env: dict, full) -> None:
    """The tiny recipe again in this process (``full`` and other runs went before, with other
    settings): the same losses, lrs, grad norms, bit for bit."""
    again = env["recipe"].run(_cfg(env, "full_again"), save=False)
    keep = [k for k in full.history[0] if k != "step_time_s"]
    assert len(again.history) == len(full.history) == GOLDEN_STEPS
    assert [{k: h[k] for k in keep} for h in again.history] == [{k: h[k] for k in keep} for h in full.history]


def _run_capture(env: dict, out: str, **over: object):
    """Set up the recipe, record the gradients the optimiser sees, train, return (recipe, grads)."""
    mod = env["recipe"]
    rec = mod.SFTContrastiveRecipe(_cfg(env, out, **over))
    rec.setup()
    grads: list[list[torch.Tensor]] = []
    rec.optimizer.optimizer.register_step_pre_hook(
        lambda opt, a, k: grads.append([p.grad.detach().clone() for g in opt.param_groups for p in g["params"]]))
    rec.train()
    rec.cleanup()
    return rec, grads


def test_batch_split_invariance_without_contrastive(env: dict) -> None:
    # Ablation B (no contrastive term, hence no dropout). SFT CE is normalised by the answer tokens
    # of the whole step, so 4x1 == 2x2 although the examples have different answer lengths. (The
    # contrastive term is not split-invariant: its negatives are the micro-batch.)
    over = {"contrastive.enabled": False, "train.max_steps": 1, "model.gradient_checkpointing": False}
    a, ga = _run_capture(env, "inv_a", **over, **{"train.batch_size": 4, "train.grad_accum": 1})
    b, gb = _run_capture(env, "inv_b", **over, **{"train.batch_size": 2, "train.grad_accum": 2})
    assert a.history[0]["answer_tokens"] == b.history[0]["answer_tokens"]
    assert a.history[0]["sft"] == pytest.approx(b.history[0]["sft"], rel=1e-6)
    for x, y in zip(ga[0], gb[0]):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-7)
    # Adam's first step is ~lr*sign(g): the gradient check above is the sharp one; params may differ
    # where |g| ~ eps (float summation order), hence the looser atol (lr is 1e-3)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=5e-5)


def test_resume_reproduces_uninterrupted_run(env: dict, full) -> None:
    ckpt = env["base"] / "full" / "checkpoints" / "step_2"
    # a crashed earlier attempt logged steps 1-3 (the last row half-written) after checkpoint step 2
    (env["base"] / "resumed").mkdir(exist_ok=True)
    (env["base"] / "resumed" / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 9.0}) + "\n" for s in (1, 2, 3)) + '{"step": 4, "lo')
    part = env["recipe"].SFTContrastiveRecipe(_cfg(env, "resumed", **{"train.resume_from": str(ckpt)}))
    part.setup()
    assert part.step == 2
    part.train()
    part.cleanup()
    rows = [json.loads(x) for x in (env["base"] / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # each step once: the stale step 3 row is gone
    assert rows[2]["loss"] == pytest.approx(full.history[2]["loss"]) and rows[0]["loss"] == 9.0
    for h_full, h_res in zip(full.history[2:], part.history):
        for k in ("loss", "sft", "v2v", "t2v", "v2t"):
            assert h_res[k] == pytest.approx(h_full[k], rel=1e-6, abs=1e-7), k
    for p, q in zip(full.model.parameters(), part.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_resume_refuses_changed_manifest_or_config(env: dict, full, tmp_path: Path) -> None:
    """Resuming with another manifest or other model/data/contrastive/optim settings is a ConfigError
    naming what differs (train.* may change; nothing is loaded before the check)."""
    ckpt = str(env["base"] / "full" / "checkpoints" / "step_2")
    rec = env["recipe"].SFTContrastiveRecipe(_cfg(env, "resume_bad1", **{"train.resume_from": ckpt,
                                                                         "optim.lr_sft": 5e-4,
                                                                         "contrastive.temperature": 0.1}))
    with pytest.raises(ConfigError, match=r"contrastive\.temperature \(0\.05 saved, 0\.1 now\).*optim\.lr_sft"):
        rec.setup()
    changed = tmp_path / "changed.jsonl"
    lines = Path(env["manifest"]).read_text().splitlines()
    changed.write_text("\n".join(lines[:-1]) + "\n")
    rec = env["recipe"].SFTContrastiveRecipe(_cfg(env, "resume_bad2", **{"train.resume_from": ckpt,
                                                                         "data.manifest": str(changed),
                                                                         "data.video_root": str(Path(env["manifest"]).parent)}))
    with pytest.raises(ConfigError, match=r"manifest_sha256 .*data\.manifest .*data\.video_root"):
        rec.setup()
    from vpbench.train.checkpoint import config_differences

    a = full.cfg.to_dict()
    assert config_differences(a, _cfg(env, "elsewhere", **{"train.max_steps": 9, "data.num_workers": 1}).to_dict()) == []


def test_latest_pointer_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vpbench.train import checkpoint

    class Acc:
        is_main_process = True

        def save_state(self, d: str) -> None:
            Path(d).mkdir(parents=True)

        def wait_for_everyone(self) -> None:
            pass

    checkpoint.save_checkpoint(Acc(), tmp_path, 1, {})
    replaced: list[tuple[str, str]] = []
    real = os.replace
    monkeypatch.setattr(checkpoint.os, "replace", lambda a, b: (replaced.append((Path(a).name, Path(b).name)),
                                                               real(a, b)))
    checkpoint.save_checkpoint(Acc(), tmp_path, 2, {})
    assert ("latest" in [b for _, b in replaced]) and all(a != b for a, b in replaced)
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_2\n"
    assert checkpoint.resolve_resume(tmp_path, "latest") == tmp_path / "checkpoints" / "step_2"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step_1", "step_2"]


def test_gpu_scorer_in_dataloader_workers_is_a_config_error() -> None:
    from vpbench.train.config import load_config

    gpu = {"data.scorer": "blip2", "data.scorer_options": "{model_dir: /m, device: 'cuda:0'}", "data.num_workers": "2"}
    for mode in ("auto", "scorer"):
        with pytest.raises(ConfigError, match="(?i)precompute key_frames with `vpbench data craft`.*num_workers=0"):
            load_config(TINY_YAML, {**gpu, "data.key_frames": mode})
    with pytest.raises(ConfigError, match="forked DataLoader workers"):
        load_config(TINY_YAML, {**gpu, "data.scorer": "clip", "data.key_frames": "auto"})
    # fine: key frames from the manifest, no workers, a CPU scorer, or a scorer without a model
    assert load_config(TINY_YAML, {**gpu, "data.key_frames": "manifest"}).data.num_workers == 2
    assert load_config(TINY_YAML, {**gpu, "data.num_workers": "0"}).data.scorer == "blip2"
    assert load_config(TINY_YAML, {**gpu, "data.scorer_options": "{device: cpu}"}).data.num_workers == 2
    assert load_config(TINY_YAML, {**gpu, "data.scorer": "random"}).data.scorer == "random"


def test_big_configs_train_fp32_masters_on_crafted_key_frames() -> None:
    from vpbench.train.config import load_config

    for name in ("qwen2_5_vl_3b.yaml", "qwen2_5_vl_7b.yaml"):
        cfg = load_config(TINY_YAML.parent / name)
        # bf16 weights + plain AdamW (DDP / FSDP) would round small updates to zero: fp32 weights, bf16 autocast
        assert (cfg.model.dtype, cfg.train.mixed_precision) == ("float32", "bf16"), name
        assert cfg.data.key_frames == "manifest" and cfg.data.num_workers > 0, name


def test_key_frames_only_at_frame_0_are_a_data_error(env: dict) -> None:
    """degrade() keeps frame 0, so key frames [0] (or none) would give V' == V."""
    from transformers import AutoTokenizer

    from vpbench.train.data import SFTDataset
    from vpbench.train.manifest import read_manifest

    cfg = _cfg(env, "unused", **{"data.key_frames": "manifest"})
    exs = read_manifest(env["manifest"])
    tok = AutoTokenizer.from_pretrained(env["model"])
    ds = SFTDataset([dataclasses.replace(exs[0], key_frames=(0,))], cfg.data, env["model"], tok)
    with pytest.raises(DataError, match=f"record '{exs[0].id}': no key frame after frame 0"):
        ds[0]
    ok = SFTDataset([dataclasses.replace(exs[0], key_frames=(0, 1))], cfg.data, env["model"], tok)[0]
    assert ok.key_frames == (0, 1)
    plain = SFTDataset([dataclasses.replace(exs[0], key_frames=(0,))], cfg.data, env["model"], tok,
                       with_degraded=False)[0]  # no V' needed (contrastive off): nothing to check
    assert plain.key_frames == ()


def test_export_is_a_plain_qwen_checkpoint(env: dict, full) -> None:
    from safetensors import safe_open
    from transformers import Qwen2_5_VLForConditionalGeneration

    exp = env["base"] / "full" / "export"
    with safe_open(str(exp / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "heads" in k]
    loaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(exp)
    trained = full.accelerator.unwrap_model(full.model).model.state_dict()
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, trained[k])
    meta = json.loads((exp / "vpbench_train.json").read_text())
    assert meta["step"] == 4 and meta["heads_dropped"] and len(meta["manifest_sha256"]) == 64
    assert meta["config"]["contrastive"]["weight"] == 0.1
    assert (env["base"] / "full" / "metrics.jsonl").read_text().count("\n") == 4


def test_ddp_two_cpu_processes_match_one_process(env: dict) -> None:
    """2 processes × batch 1 × accum 2 (DDP over gloo, negatives gathered across processes) ≡
    1 process × batch 2 × accum 2: same examples per micro-batch, same negatives. Dropout off (the
    processes draw their own masks). Also checks the lr groups survive DDP wrapping."""
    import subprocess

    from safetensors.torch import load_file

    over = {"contrastive.visual_dropout": 0.0, "train.max_steps": 2, "model.gradient_checkpointing": False}
    env["recipe"].run(_cfg(env, "one", **over))
    args = [f"{k}={v}" for k, v in {**over, "model.path": env["model"], "data.manifest": env["manifest"],
                                    "train.output_dir": env["base"] / "two", "train.batch_size": 1,
                                    "train.save_every": 0}.items()]
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                    str(ROOT / "recipes" / "sft_contrastive.py"), "--config", str(TINY_YAML), *args],
                   check=True, cwd=ROOT, env={**os.environ, "ACCELERATE_USE_CPU": "1"}, timeout=300)
    one, two = (load_file(str(env["base"] / d / "export" / "model.safetensors")) for d in ("one", "two"))
    for k in one:
        torch.testing.assert_close(one[k], two[k], rtol=1e-4, atol=5e-5)  # Adam ~ lr*sign(g) where |g| ~ eps
    logs = [json.loads(x) for x in (env["base"] / "two" / "metrics.jsonl").read_text().splitlines()]
    assert logs[-1]["lr_model_decay"] == 1e-3 and logs[-1]["lr_heads_decay"] == 1e-2
    ref = [json.loads(x) for x in (env["base"] / "one" / "metrics.jsonl").read_text().splitlines()]
    assert [r["v2v"] for r in logs] == pytest.approx([r["v2v"] for r in ref], rel=1e-5)


# -- config and manifest -------------------------------------------------------------------------
def test_shipped_configs_load_strictly() -> None:
    from vpbench.train.config import load_config

    for name, block in (("qwen2_5_vl_7b.yaml", (16,)), ("qwen2_5_vl_3b.yaml", (16,)), ("tiny.yaml", (1,))):
        path = TINY_YAML.parent / name
        first = path.read_text().splitlines()[0]
        assert first.startswith("# Run"), f"{name} must open with the command that runs it"
        cfg = load_config(path)
        assert cfg.contrastive.blocks == block and cfg.contrastive.weight == 0.1
    big = load_config(TINY_YAML.parent / "qwen2_5_vl_7b.yaml")
    assert big.train.batch_size * big.train.grad_accum * 8 == 16  # the paper's global batch on 8 GPUs
    with pytest.raises(ConfigError, match="did you mean 'blocks'"):
        load_config(TINY_YAML, {"contrastive.block": "[2]"})
    abl = load_config(TINY_YAML, {"contrastive.enabled": "false", "data.scorer": "random",
                                  "data.key_frames": "scorer", "contrastive.blocks": "[1, 1]", "data.fps": "2"})
    assert (abl.contrastive.enabled, abl.data.scorer, abl.data.fps) == (False, "random", 2.0)


def test_manifest_errors_name_line_and_fix(tmp_path: Path) -> None:
    from vpbench.train.manifest import read_manifest

    rec = {"id": "a", "video": "x.mp4", "prompt": "p", "answer": "y", "keywords": ["k"]}
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps({**rec, "keyframes": [1]}) + "\n")
    with pytest.raises(DataError, match=r"m.jsonl:1 \(id 'a'\): unknown key 'keyframes' \(did you mean 'key_frames'"):
        read_manifest(p)
    p.write_text(json.dumps(rec) + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(DataError, match="duplicate id"):
        read_manifest(p)
    p.write_text(json.dumps({**rec, "key_frames": [5], "n_frames": 4}) + "\n")
    with pytest.raises(DataError, match="out of range"):
        read_manifest(p)
    p.write_text(json.dumps(rec) + "\n")
    assert read_manifest(p)[0].video == str(tmp_path / "x.mp4")


@pytest.mark.parametrize("workers", [0, 1])
def test_main_prints_data_errors_without_traceback(env: dict, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   workers: int) -> None:
    """A manifest whose key_frames were computed under another sampling: main() prints the
    DataError's message (also when a DataLoader worker raised it) and returns 2."""
    rows = [json.loads(x) for x in Path(env["manifest"]).read_text().splitlines()]
    bad = Path(env["manifest"]).parent / f"other_sampling_{workers}.jsonl"  # video paths are relative
    bad.write_text("".join(json.dumps({**r, "key_frames": [3], "n_frames": 32}) + "\n" for r in rows))
    code = env["recipe"].main(["--config", str(TINY_YAML), f"model.path={env['model']}", f"data.manifest={bad}",
                               "data.key_frames=manifest", f"data.num_workers={workers}",
                               f"train.output_dir={tmp_path / 'out'}", "train.max_steps=1"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("sft_contrastive: error:")]
    assert len(lines) == 1 and "were computed for 32 frames but the recipe samples 8" in lines[0], err
    assert "data.key_frames=scorer" in lines[0] and "Traceback" not in err
    assert env["recipe"].main(["--config", str(TINY_YAML), "contrastive.block=[1]"]) == 2  # ConfigError
    assert "did you mean 'blocks'" in capsys.readouterr().err


def test_exported_model_runs_under_vpbench_run(env: dict, full, tmp_path: Path) -> None:
    """The trained tiny checkpoint is evaluated by the harness like any Qwen2.5-VL dir, and the eval
    manifest carries the training provenance saved beside it."""
    from vpbench import cli
    from vpbench.synth.motionbench import synth_motionbench

    exp = env["base"] / "full" / "export"
    synth_motionbench(tmp_path / "mb", seed=1, n_videos=2)
    out = tmp_path / "eval"
    assert cli.main(["run", "--model", str(exp), "--tasks", "motionbench", "--data-root", str(tmp_path / "mb"),
                     "--output", str(out), "--device", "cpu", "--set", "protocol.max_new_tokens=2"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["training"]["step"] == 4
    assert manifest["tasks"]["motionbench"]["n_evaluated"] >= 2
