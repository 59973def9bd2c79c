"""Faster, equal-valued CPU paths for two parts of the Qwen2.5-VL vision tower (transformers 4.x).

With ``sdpa`` attention, transformers' ``Qwen2_5_VLVisionAttention`` runs ONE attention
call per window / temporal patch (a Python loop over ``cu_seqlens``): a tiny model at batch 32 makes
~700 such calls per training step. ``PackedWindowAttention`` groups the chunks by length and runs one
``scaled_dot_product_attention`` per distinct length on [n_chunks, heads, L, head_dim] — the same
per-chunk attention (no cross-chunk terms, no mask), in a handful of calls.

``Qwen2_5_VisionPatchEmbed`` is a Conv3d whose kernel equals its stride on inputs that are exactly one
kernel each: a matrix product with the flattened kernel. ``LinearPatchEmbed`` computes it as
``F.linear`` (PyTorch's CPU Conv3d path for this shape is several times slower, forward and backward).

Both swap the module's class in place (``speed_up_vision_tower``): parameters, buffers, state-dict
keys and saved checkpoints are unchanged. Values equal transformers' to float rounding
(tests/test_fast_vision.py compares them on the pinned stack, forward and gradients).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def packed_chunk_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                           scaling: float) -> torch.Tensor:
    """Attention within each chunk [cu_seqlens[i], cu_seqlens[i+1]) only.

    q, k, v: [H, N, D]; cu_seqlens: [n+1] (0 … N, non-decreasing) → [N, H, D]. One SDPA call per
    distinct chunk length (chunks of a length gathered into a batch [n_L, H, L, D])."""
    h, n, d = q.shape
    cu_seqlens = cu_seqlens.to(device=q.device, dtype=torch.long)
    if cu_seqlens.numel() < 1 or int(cu_seqlens[0]) != 0 or int(cu_seqlens[-1]) != n:
        raise ValueError(f"cu_seqlens must run from 0 to the sequence length {n}, got {cu_seqlens.tolist()}")
    lengths = cu_seqlens[1:] - cu_seqlens[:-1]
    starts = cu_seqlens[:-1]
    out = q.new_empty(n, h, d)
    for length in torch.unique(lengths).tolist():
        if length == 0:
            continue
        first = starts[lengths == length]
        if first.numel() * length == n:  # one length covers everything: a view, no gather
            idx = None
            qs, ks, vs = (t.reshape(h, -1, length, d).transpose(0, 1) for t in (q, k, v))
        else:
            idx = (first[:, None] + torch.arange(length, device=q.device)).reshape(-1)
            qs, ks, vs = (t[:, idx].reshape(h, -1, length, d).transpose(0, 1) for t in (q, k, v))
        o = F.scaled_dot_product_attention(qs, ks, vs, scale=scaling)  # [n_L, H, L, D]
        o = o.permute(0, 2, 1, 3).reshape(-1, h, d)  # [n_L * L, H, D]
        if idx is None:
            return o
        out = out.index_copy(0, idx, o)
    return out


def _hf_classes() -> tuple[type[nn.Module], type[nn.Module]] | None:
    """(vision attention, patch embedding) classes of transformers 4.x's Qwen2.5-VL, whose forward passes the
    swapped classes reproduce; None on another major version (its modules are left as they are)."""
    import transformers
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as q25

    if transformers.__version__.split(".")[0] != "4":
        return None
    return q25.Qwen2_5_VLVisionAttention, q25.Qwen2_5_VisionPatchEmbed


class PackedWindowAttention(nn.Module):
    """Class swapped onto a ``Qwen2_5_VLVisionAttention`` (see module docstring); same attributes."""

    qkv: nn.Linear
    proj: nn.Linear
    num_heads: int
    scaling: float

    def forward(self, hidden_states: torch.Tensor, cu_seqlens: torch.Tensor,
                rotary_pos_emb: torch.Tensor | None = None,
                position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
                **kwargs: object) -> torch.Tensor:
        """hidden_states [N, dim], cu_seqlens [n+1], position_embeddings (cos, sin) [N, head_dim] → [N, dim]."""
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

        if self.config._attn_implementation != "sdpa" or (self.training and self.attention_dropout):
            return super().forward(hidden_states, cu_seqlens, rotary_pos_emb=rotary_pos_emb,  # type: ignore[misc]
                                   position_embeddings=position_embeddings, **kwargs)
        n = hidden_states.shape[0]
        q, k, v = self.qkv(hidden_states).reshape(n, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        cos, sin = position_embeddings
        q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)  # [N, H, D]
        out = packed_chunk_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), cu_seqlens,
                                     self.scaling)
        return self.proj(out.reshape(n, -1))


class LinearPatchEmbed(nn.Module):
    """Class swapped onto a ``Qwen2_5_VisionPatchEmbed``: the kernel-sized Conv3d as one matmul."""

    proj: nn.Conv3d
    embed_dim: int

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """hidden_states [N, C·T·P·P] (or anything viewable so) → [N, embed_dim]."""
        w = self.proj.weight  # [E, C, T, P, P]
        x = hidden_states.reshape(-1, w[0].numel()).to(w.dtype)
        return F.linear(x, w.reshape(w.shape[0], -1))


# The combined classes (mixin first, then transformers' class), made on first use and found by name, so a
# swapped model pickles (torch.save, spawn-started workers) and unpickles in a fresh process (__getattr__).
_SWAPPED: dict[str, type] = {}
_MIXINS = {"PackedWindowAttention": (PackedWindowAttention, 0), "LinearPatchEmbed": (LinearPatchEmbed, 1)}


def _swapped_class(mixin: type[nn.Module], base: type[nn.Module]) -> type[nn.Module]:
    name = f"{mixin.__name__}Over{base.__name__}"
    if name not in _SWAPPED:
        _SWAPPED[name] = type(name, (mixin, base), {"__module__": __name__, "__qualname__": name})
    return _SWAPPED[name]


def __getattr__(name: str) -> type:
    mixin_name = name.split("Over", 1)[0]
    classes = _hf_classes() if mixin_name in _MIXINS and "Over" in name else None
    if classes is not None:
        mixin, which = _MIXINS[mixin_name]
        cls = _swapped_class(mixin, classes[which])
        if cls.__name__ == name:
            return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def kernels_tag() -> str | None:
    """What `speed_up_vision_tower` swaps in under the installed transformers (None: nothing), for
    fingerprints: float32 values differ from transformers' modules by rounding, so cached outputs must not mix."""
    return "fast_vision-1" if _hf_classes() is not None else None


def speed_up_vision_tower(model: nn.Module) -> int:
    """Swap, in ``model``, every plain ``Qwen2_5_VLVisionAttention`` running sdpa (not flash attention, which
    already packs; not eager, the reference path; not under attention dropout) and every
    ``Qwen2_5_VisionPatchEmbed`` to the faster classes. Returns how many modules were swapped (0 for other
    architectures, and under transformers 5.x, whose forward passes these classes do not mirror)."""
    classes = _hf_classes()
    if classes is None:
        return 0
    attn_cls, embed_cls = classes
    swapped = 0
    for module in model.modules():
        if type(module) is attn_cls:
            impl = getattr(module.config, "_attn_implementation", None)
            if impl == "sdpa" and not getattr(module, "attention_dropout", 0.0):
                module.__class__ = _swapped_class(PackedWindowAttention, attn_cls)
                swapped += 1
        elif type(module) is embed_cls and module.proj.bias is None:
            if tuple(module.proj.kernel_size) == tuple(module.proj.stride):
                module.__class__ = _swapped_class(LinearPatchEmbed, embed_cls)
                swapped += 1
    return swapped
