"""vpbench.models.fast_vision: packed window attention and the linear patch embedding give transformers'
values (forward and gradients) on the tiny Qwen2.5-VL, keep its state dict, and leave other paths alone."""

from __future__ import annotations

import copy

import pytest
import torch

from vpbench.models.fast_vision import packed_chunk_attention, speed_up_vision_tower


def _reference_chunks(q, k, v, cu, scaling):
    """One attention per chunk, written out: softmax(q k^T * scale) v."""
    outs = []
    for a, b in zip(cu[:-1].tolist(), cu[1:].tolist()):
        w = torch.softmax(q[:, a:b] @ k[:, a:b].transpose(-1, -2) * scaling, dim=-1)
        outs.append((w @ v[:, a:b]).transpose(0, 1))
    return torch.cat(outs, 0)


@pytest.mark.parametrize("lengths", [[4, 4, 4], [3, 5, 3, 1, 5, 0, 4], [7]])
def test_packed_chunk_attention_is_per_chunk_attention(lengths):
    g = torch.Generator().manual_seed(0)
    n = sum(lengths)
    q, k, v = (torch.randn(2, n, 8, generator=g, dtype=torch.float64) for _ in range(3))
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    got = packed_chunk_attention(q, k, v, cu, 0.3)
    assert got.shape == (n, 2, 8)
    torch.testing.assert_close(got, _reference_chunks(q, k, v, cu, 0.3), rtol=1e-12, atol=1e-12)
    # no leakage across chunks: changing chunk 0's keys leaves every other row unchanged
    k2 = k.clone()
    k2[:, : lengths[0]] += 1.0
    other = packed_chunk_attention(q, k2, v, cu, 0.3)
    assert torch.equal(other[lengths[0]:], got[lengths[0]:])
    assert not torch.equal(other[: lengths[0]], got[: lengths[0]])


def _transformers4() -> bool:
    import transformers

    return transformers.__version__.split(".")[0] == "4"


def _swaps(n: int) -> int:
    """Modules swapped where transformers 4.x swaps ``n``: none under 5.x, where the comparisons below then
    hold trivially (transformers' modules on both sides) and test_other_... pins that nothing changed."""
    return n if _transformers4() else 0


def test_other_transformers_major_versions_are_left_alone(tiny_model):
    """Under 5.x (tox -e tf5) nothing is swapped: these classes mirror 4.x's forward passes."""
    fast = copy.deepcopy(tiny_model)
    assert speed_up_vision_tower(fast) == (len(fast.model.visual.blocks) + 1 if _transformers4() else 0)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from transformers import Qwen2_5_VLForConditionalGeneration

    from vpbench.models.tiny_qwen import build_tiny_qwen

    path = build_tiny_qwen(tmp_path_factory.mktemp("tiny") / "m", preset="small")
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(path), attn_implementation="sdpa",
                                                               torch_dtype=torch.float32)
    return model.double().eval()  # float64: the comparison sees the math, not float32 summation order


def _tower_inputs(model, grids):
    vis = model.model.visual if hasattr(model.model, "visual") else model.visual
    patch = vis.patch_embed
    dim = patch.in_channels * patch.temporal_patch_size * patch.patch_size ** 2
    grid = torch.tensor(grids)
    g = torch.Generator().manual_seed(1)
    return vis, torch.randn(int(grid.prod(-1).sum()), dim, generator=g, dtype=torch.float64), grid


# 2x2 merged tokens per temporal patch (one window each), a wider frame (several windows of unequal
# size: the window is 4x4 merged tokens, 6 columns leave one of 4 and one of 2) and an image.
GRIDS = [[[7, 4, 4], [3, 4, 4]], [[2, 8, 12], [1, 4, 4], [5, 4, 4]]]


@pytest.mark.parametrize("grids", GRIDS)
def test_swapped_tower_equals_transformers_forward_and_backward(tiny_model, grids):
    ref = copy.deepcopy(tiny_model)
    fast = copy.deepcopy(tiny_model)
    assert speed_up_vision_tower(fast) == _swaps(len(fast.model.visual.blocks) + 1)
    vis_ref, x, grid = _tower_inputs(ref, grids)
    vis_fast, _, _ = _tower_inputs(fast, grids)
    x_ref, x_fast = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_ref, out_fast = vis_ref(x_ref, grid), vis_fast(x_fast, grid)
    torch.testing.assert_close(out_fast, out_ref, rtol=1e-10, atol=1e-12)
    w = torch.randn(out_ref.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (out_ref * w).sum().backward()
    (out_fast * w).sum().backward()
    torch.testing.assert_close(x_fast.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
    grads_ref = dict(vis_ref.named_parameters())
    for name, p in vis_fast.named_parameters():
        torch.testing.assert_close(p.grad, grads_ref[name].grad, rtol=1e-10, atol=1e-12, msg=name)


def test_swap_keeps_state_dict_and_skips_other_paths(tiny_model):
    fast = copy.deepcopy(tiny_model)
    keys = list(fast.state_dict())
    speed_up_vision_tower(fast)
    assert list(fast.state_dict()) == keys
    assert all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(), tiny_model.state_dict().values()))
    assert speed_up_vision_tower(fast) == 0  # already swapped
    eager = copy.deepcopy(tiny_model)
    eager.model.visual.config._attn_implementation = "eager"
    assert speed_up_vision_tower(eager) == _swaps(1)  # the patch embedding only: eager stays the reference path


def test_bad_cu_seqlens_fail_instead_of_leaving_rows_unset():
    q = torch.zeros(2, 6, 4)
    with pytest.raises(ValueError, match="sequence length 6"):
        packed_chunk_attention(q, q, q, torch.tensor([0, 2, 4]), 1.0)


def test_swapped_model_pickles_and_follows_a_later_attention_switch(tiny_model):
    import pickle

    fast = copy.deepcopy(tiny_model)
    speed_up_vision_tower(fast)
    vis, x, grid = _tower_inputs(fast, GRIDS[1])
    again = pickle.loads(pickle.dumps(fast))  # torch.save / spawn-started workers pickle the model
    assert type(again.model.visual.blocks[0].attn) is type(vis.blocks[0].attn)
    torch.testing.assert_close(again.model.visual(x, grid), vis(x, grid), rtol=0, atol=0)
    # switched to eager after the swap: transformers' own path runs (the eager reference's values)
    ref = copy.deepcopy(tiny_model)
    for m in (fast, ref):
        m.model.visual.config._attn_implementation = "eager"
    torch.testing.assert_close(vis(x, grid), _tower_inputs(ref, GRIDS[1])[0](x, grid), rtol=1e-12, atol=1e-12)
