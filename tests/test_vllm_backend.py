"""``vllm:DIR``: what runs without vLLM or a GPU — option and layout validation, request building
(the same chat-template prompt, frames and fps as the hf backend). The hf-vs-vLLM parity run is
``tests/test_vllm_parity.py`` (``-m gpu``)."""

from __future__ import annotations

import json

import pytest

from vpbench.errors import ConfigError
from vpbench.models.loader import BackendOptions, load_backend
from vpbench.models.qwen_inputs import VIDEO_PAD, build_prompt, chat_renderer, load_chat_template, second_per_grid_t
from vpbench.models.vllm_backend import VLLMOptions, build_vllm_input, check_layout, rank_gpus, sampling_kwargs
from vpbench.registry import get_task

QWEN7B = {"model_type": "qwen2_5_vl", "num_attention_heads": 28, "num_key_value_heads": 4}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.synth.motionbench import synth_motionbench

    root = tmp_path_factory.mktemp("vllm")
    synth_motionbench(root / "mb", seed=3, n_videos=2)
    return build_tiny_qwen(root / "tiny", seed=0), root / "mb"


@pytest.mark.parametrize("arg, message", [
    ("/m,tp=0", "tp and dp must be >= 1"),
    ("/m,tensor_parallel=2", r"unknown option 'tensor_parallel'.*known: dp, enforce_eager"),
    ("/m,tp2", r"unknown option 'tp2' \(did you mean 'tp'\?\)"),
    ("/m,gpu_memory_utilization=1.5", r"gpu_memory_utilization must be in \(0, 1\]"),
    ("/m,mm_encoder_tp_mode=both", "mm_encoder_tp_mode must be"),
    ("/m,tp=two", "is not a int"),
])
def test_options_are_strict(arg, message):
    with pytest.raises(ConfigError, match=message):
        VLLMOptions.parse(arg)


def test_bad_tp_dp_layouts_refused_up_front():
    ok = VLLMOptions.parse("/m,tp=4,dp=2")
    check_layout(ok, QWEN7B, world_size=2, local_world_size=2, n_gpus=8)  # 2 replicas × 4 GPUs
    with pytest.raises(ConfigError, match=r"dp=2 but this launch has 1 process.*--nproc 2"):
        check_layout(ok, QWEN7B, world_size=1, local_world_size=1, n_gpus=8)
    with pytest.raises(ConfigError, match="need 8 GPUs on this node, 4 visible"):
        check_layout(ok, QWEN7B, world_size=2, local_world_size=2, n_gpus=4)
    with pytest.raises(ConfigError, match="tp=3 does not divide the model's 28 attention heads"):
        check_layout(VLLMOptions.parse("/m,tp=3"), QWEN7B, world_size=1, local_world_size=1, n_gpus=8)
    nested = {"text_config": {"num_attention_heads": 12, "num_key_value_heads": 2}}
    with pytest.raises(ConfigError, match="tp=8 does not divide the model's 12"):
        check_layout(VLLMOptions.parse("/m,tp=8"), nested, world_size=1, local_world_size=1, n_gpus=8)
    assert (rank_gpus(0, 4), rank_gpus(1, 4), rank_gpus(3, 1)) == ("0,1,2,3", "4,5,6,7", "3")


def test_spec_refuses_cpu_and_machines_without_gpus(tiny):
    model, _ = tiny
    with pytest.raises(ConfigError, match="CUDA GPUs only"):
        load_backend(f"vllm:{model}", BackendOptions(device="cpu"))
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"1 process\(es\) × tp=1 need 1 GPUs on this node, 0 visible"):
            load_backend(f"vllm:{model}", BackendOptions())
    with pytest.raises(ConfigError, match="not a local checkpoint directory"):
        load_backend("vllm:/no/such/dir", BackendOptions())


def test_request_has_the_hf_prompt_frames_and_fps(tiny):
    """The vLLM input carries the hf backend's prompt (before the pad expansion), vpbench's own
    frames, and the sampling fps — the value behind hf's second_per_grid_ts (here not vLLM's default 2)."""
    from transformers import AutoTokenizer

    from vpbench.engine.requests import build_request
    from vpbench.video.decode import decode_frames

    model, data = tiny
    task = get_task("motionbench")
    protocol = task.resolve_protocol(None, {"fps": 1.0})
    sample = task.load_samples(data)[0]
    req = build_request(task, sample, protocol)
    frames = decode_frames(task.video_path(data, req.video.path), protocol, req.video.start_s, req.video.end_s)
    tok = AutoTokenizer.from_pretrained(str(model), local_files_only=True)
    render = chat_renderer(tok, load_chat_template(model, tok))
    item = build_vllm_input(req, frames, render)
    assert item["prompt"].count(VIDEO_PAD) == 1
    assert build_prompt(req.messages, render, 7) == item["prompt"].replace(VIDEO_PAD, VIDEO_PAD * 7)
    assert item["multi_modal_data"]["video"] is frames.array and frames.array.shape[0] == 4
    fps = item["mm_processor_kwargs"]["fps"][0]
    assert fps != 2.0 and second_per_grid_t(frames, 2) == pytest.approx(2 / fps, abs=1e-6)
    with pytest.raises(ValueError, match="no frames were decoded"):
        build_vllm_input(req, None, render)
    assert sampling_kwargs(req) == {"max_tokens": protocol.max_new_tokens, "temperature": 0.0, "top_p": 1.0,
                                    "seed": protocol.seed}
    assert json.loads((model / "config.json").read_text())["model_type"] == "qwen2_5_vl"
