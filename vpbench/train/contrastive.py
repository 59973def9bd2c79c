"""Helpers of the contrastive pass (RECIPE §2, paper eq. 3): sequences, masks, global tokens, heads.

Contrastive sequence of one example (each segment closed by one ``<|im_end|>`` = "eos")::

    [<vs> <video_pad>×n_v <ve> eos | <vs> <video_pad>×n_v' <ve> eos | keyword tokens eos]
       segment 0: Z_v                 segment 1: Z_v'                   segment 2: Z_t

``video_grid_thw`` rows follow the order of appearance over the whole batch (row 0: V_0, V'_0;
row 1: V_1, V'_1; ...), which is what ``get_rope_index`` expects. The SimCSE positive view uses
the same builder with the single segment ``[<vs> Z_v <ve> eos]``.

``segment_isolation`` (default true): an additive 4D mask [B, 1, L, L] forbids segment 1 (Z_v',
its vision markers and its eos) to attend to segment 0; everything else is causal (segment 2 sees
both videos, as the literal sequence). ``false`` gives the plain causal mask. Padding keys are
masked; every query keeps its own position, so no softmax row is empty.

Block ``l`` (1-based) = the raw output of decoder layer ``l-1`` = HF ``hidden_states[l]`` for
``l < N``. It is captured with a forward hook (first call per pass only: non-reentrant gradient
checkpointing re-runs the hook during recomputation), and the decoder stack is cut after
``max(blocks)`` layers for the pass (``truncated_layers``), so the pass costs ``l/N`` of a full one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vpbench.errors import ConfigError


@dataclass(frozen=True)
class SpecialIds:
    """Token ids the sequences are built from (released Qwen2.5-VL: 151652/151653/151656/151645/151643)."""

    vision_start: int
    vision_end: int
    video_pad: int
    eos: int
    pad: int

    @classmethod
    def from_model(cls, config: object, tokenizer: object) -> "SpecialIds":
        """Read vision ids from the model config, eos (``<|im_end|>``) and pad from the tokenizer."""
        eos = tokenizer.convert_tokens_to_ids("<|im_end|>")  # type: ignore[attr-defined]
        pad = getattr(tokenizer, "pad_token_id", None)
        if eos is None or eos == getattr(tokenizer, "unk_token_id", -1):
            raise ConfigError("the tokenizer has no <|im_end|> token; is this a Qwen2.5-VL checkpoint?")
        return cls(
            vision_start=int(config.vision_start_token_id),  # type: ignore[attr-defined]
            vision_end=int(config.vision_end_token_id),  # type: ignore[attr-defined]
            video_pad=int(config.video_token_id),  # type: ignore[attr-defined]
            eos=int(eos),
            pad=int(pad if pad is not None else eos),
        )


# -- sequences ---------------------------------------------------------------------------------
Segment = tuple[str, object]  # ("video", n_tokens:int) | ("text", token ids: Sequence[int])


def build_row(segments: Sequence[Segment], ids: SpecialIds) -> tuple[list[int], list[int], list[int]]:
    """One sequence from segments. Returns (input_ids [L], segment index per position [L],
    eos position per segment [S])."""
    input_ids: list[int] = []
    seg: list[int] = []
    eos_pos: list[int] = []
    for s, (kind, value) in enumerate(segments):
        if kind == "video":
            n = int(value)  # type: ignore[call-overload]
            if n <= 0:
                raise ValueError(f"segment {s}: a video needs > 0 tokens, got {n}")
            toks = [ids.vision_start] + [ids.video_pad] * n + [ids.vision_end]
        elif kind == "text":
            toks = [int(t) for t in value]  # type: ignore[union-attr]
            if not toks:
                raise ValueError(f"segment {s}: empty text segment")
            if ids.video_pad in toks or ids.vision_start in toks:
                raise ValueError(f"segment {s}: text tokens contain vision special tokens")
        else:
            raise ValueError(f"unknown segment kind {kind!r}")
        toks.append(ids.eos)
        input_ids += toks
        seg += [s] * len(toks)
        eos_pos.append(len(input_ids) - 1)
    return input_ids, seg, eos_pos


@dataclass(frozen=True, eq=False)
class PackedSequences:
    """A padded batch: input_ids / attention_mask / segment_ids [B, L] (segment -1 on padding),
    eos_positions [B, S] (absolute, after padding)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    segment_ids: torch.Tensor
    eos_positions: torch.Tensor


def pack_rows(rows: Sequence[tuple[list[int], list[int], list[int]]], pad_id: int,
              padding_side: str = "right") -> PackedSequences:
    """Pad rows from ``build_row`` to one length (``padding_side`` right or left)."""
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    length = max(len(r[0]) for r in rows)
    b, s = len(rows), len(rows[0][2])
    ids = torch.full((b, length), pad_id, dtype=torch.long)
    mask = torch.zeros((b, length), dtype=torch.long)
    seg = torch.full((b, length), -1, dtype=torch.long)
    eos = torch.zeros((b, s), dtype=torch.long)
    for i, (row_ids, row_seg, row_eos) in enumerate(rows):
        n = len(row_ids)
        off = 0 if padding_side == "right" else length - n
        ids[i, off:off + n] = torch.tensor(row_ids)
        mask[i, off:off + n] = 1
        seg[i, off:off + n] = torch.tensor(row_seg)
        eos[i] = torch.tensor(row_eos) + off
    return PackedSequences(ids, mask, seg, eos)


def block_attention_mask(segment_ids: torch.Tensor, attention_mask: torch.Tensor, isolate: bool,
                         dtype: torch.dtype = torch.float32,
                         query_positions: torch.Tensor | None = None) -> torch.Tensor:
    """Additive mask [B, 1, L, L]: 0 where query q may attend key k, ``finfo(dtype).min`` elsewhere.

    Allowed: ``k <= q`` and key k not padding, and (when ``isolate``) not (seg(q) == 1 and
    seg(k) == 0). The diagonal is always allowed (keeps padded query rows finite).
    ``query_positions`` [B, S]: only those query rows, [B, 1, S, L] (row s of batch row b is row
    ``query_positions[b, s]`` of the full mask).
    """
    b, length = segment_ids.shape
    keys = torch.arange(length, device=segment_ids.device)
    q = (keys[None].expand(b, -1) if query_positions is None else query_positions.to(segment_ids.device))
    allowed = keys[None, None, :] <= q[:, :, None]  # [B, q, k]
    allowed = allowed & attention_mask.bool()[:, None, :]
    if isolate:
        seg_q = segment_ids.gather(1, q)
        allowed &= ~((seg_q[:, :, None] == 1) & (segment_ids[:, None, :] == 0))
    allowed |= keys[None, None, :] == q[:, :, None]
    out = torch.zeros((b, 1) + tuple(allowed.shape[1:]), dtype=dtype, device=segment_ids.device)
    return out.masked_fill(~allowed[:, None], torch.finfo(dtype).min)


# -- V' features from the temporal patches that differ (exact splice) ---------------------------
# Vision towers whose output for one temporal patch (``temporal_patch_size`` frames) depends only on
# that patch's pixels and the video's (h, w): the patch embedding is per row; the 2-D rotary
# embedding uses (h, w) only; windows are built per temporal slice; full-attention blocks use
# ``cu_seqlens = repeat_interleave(h*w, t)`` (one segment per temporal patch); norms, MLPs and the
# merger are per token / per 2x2 group; no dropout. Checked in transformers 4.57 (``forward``,
# ``get_window_index``) and 5.23 (``vision_utils.get_vision_position_ids`` / ``get_vision_window_index``
# / ``get_vision_cu_seqlens(merge_temporal=False)``, the same arithmetic moved out of the tower);
# tests/test_train_speedups.py checks it on the installed version.
PER_TEMPORAL_PATCH_TOWERS = ("Qwen2_5_VisionTransformerPretrainedModel", "Qwen2VisionTransformerPretrainedModel")


def changed_temporal_patches(pixel_values: torch.Tensor, pixel_values_deg: torch.Tensor,
                             grid: torch.Tensor) -> list[list[int]]:
    """Per video (row of ``grid`` [B, 3] = (t, h, w)), the temporal patch indices whose pixel rows
    differ between V and V' (pixel_values / pixel_values_deg [ΣN, C·tps·p²], N = t·h·w per video,
    patches t-major as the processor writes them). NaN counts as a difference."""
    if pixel_values.shape != pixel_values_deg.shape:
        raise ValueError(f"V and V' pixel_values differ in shape: {tuple(pixel_values.shape)} vs "
                         f"{tuple(pixel_values_deg.shape)}")
    per_t = grid[:, 1] * grid[:, 2]
    if int((grid[:, 0] * per_t).sum()) != pixel_values.shape[0]:
        raise ValueError(f"video_grid_thw covers {int((grid[:, 0] * per_t).sum())} patches but pixel_values has "
                         f"{pixel_values.shape[0]} rows")
    n_chunks = int(grid[:, 0].sum())
    chunk_of_row = torch.repeat_interleave(torch.arange(n_chunks, device=grid.device),
                                           torch.repeat_interleave(per_t, grid[:, 0]))
    diff = (pixel_values != pixel_values_deg).any(dim=-1).to(grid.device)
    changed = torch.zeros(n_chunks, dtype=torch.bool, device=grid.device)
    changed[chunk_of_row[diff]] = True
    flags, out, start = changed.tolist(), [], 0
    for t in grid[:, 0].tolist():
        out.append([j for j in range(t) if flags[start + j]])
        start += t
    return out


def splice_temporal_patches(base: torch.Tensor, patches: torch.Tensor, changed: Sequence[int],
                            tokens_per_patch: int) -> torch.Tensor:
    """``base`` [t·n, d] (merged tokens of V, t-major, n = ``tokens_per_patch``) with the rows of the
    temporal patches ``changed`` replaced by ``patches`` [len(changed)·n, d] (in that order).
    Out of place; gradients flow to both inputs."""
    if patches.shape[0] != len(changed) * tokens_per_patch:
        raise ValueError(f"{patches.shape[0]} rows for {len(changed)} patches of {tokens_per_patch} tokens")
    if not changed:
        return base
    idx = (torch.tensor(list(changed), device=base.device)[:, None] * tokens_per_patch
           + torch.arange(tokens_per_patch, device=base.device)[None]).flatten()
    return base.index_copy(0, idx, patches.to(base.dtype))


def scatter_video(inputs_embeds: torch.Tensor, input_ids: torch.Tensor, video_pad: int,
                  video_embeds: torch.Tensor) -> torch.Tensor:
    """Place video_embeds [N_tok, d] at the ``video_pad`` positions of inputs_embeds [B, L, d]
    (row-major order, as transformers does). Raises on a count mismatch."""
    mask = input_ids == video_pad
    n = int(mask.sum())
    if n != video_embeds.shape[0]:
        raise ValueError(f"{n} <|video_pad|> tokens but {video_embeds.shape[0]} video embeddings")
    mask = mask[..., None].expand_as(inputs_embeds)
    return inputs_embeds.masked_scatter(mask, video_embeds.to(inputs_embeds.dtype))


def gather_at(hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """hidden [B, L, d], positions [B, S] → [B, S, d] (global tokens per row)."""
    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
    return hidden[rows, positions.to(hidden.device)]


# -- model access ------------------------------------------------------------------------------
def inner_model(model: nn.Module) -> nn.Module:
    """``Qwen2_5_VLModel`` inside a ``Qwen2_5_VLForConditionalGeneration`` (transformers >= 4.52)."""
    m = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT
    inner = getattr(m, "model", None)
    if inner is None or not hasattr(inner, "language_model") or not hasattr(inner, "visual"):
        raise ConfigError("expected a Qwen2_5_VLForConditionalGeneration with .model.language_model and "
                          ".model.visual (transformers >= 4.52)")
    return inner


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    return inner_model(model).language_model.layers


def check_blocks(blocks: Sequence[int], n_layers: int) -> tuple[int, ...]:
    """Blocks must be 1 <= l <= N-1 (block N is the LM output, not an intermediate layer)."""
    out = tuple(int(b) for b in blocks)
    if not out:
        raise ConfigError("contrastive.blocks must name at least one block")
    bad = [b for b in out if not 1 <= b <= n_layers - 1]
    if bad:
        raise ConfigError(f"contrastive.blocks {bad} out of range: the model has {n_layers} decoder layers, "
                          f"so a block must be in 1..{n_layers - 1} (paper default 16)")
    return out


@contextlib.contextmanager
def truncated_layers(language_model: nn.Module, n: int) -> Iterator[None]:
    """Run only the first ``n`` decoder layers inside the block (the text model iterates
    ``self.layers``); the original ModuleList is always restored."""
    full = language_model.layers
    language_model.layers = nn.ModuleList(list(full)[:n])
    try:
        yield
    finally:
        language_model.layers = full


@contextlib.contextmanager
def capture_blocks(layers: nn.ModuleList, blocks: Sequence[int]) -> Iterator[dict[int, torch.Tensor]]:
    """Yield a dict that fills with {block l: output of layers[l-1] [B, L, d]}, first call only."""
    store: dict[int, torch.Tensor] = {}
    handles = []
    for b in blocks:
        def hook(_m: nn.Module, _i: object, out: object, b: int = b) -> None:
            if b not in store:
                store[b] = out[0] if isinstance(out, tuple) else out  # type: ignore[assignment]
        handles.append(layers[b - 1].register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


# -- heads and perturbation --------------------------------------------------------------------
class ProjectionHead(nn.Module):
    """2-layer MLP ``Linear(d, hidden) → GELU → Linear(hidden, out)``, output L2-normalised.
    x [N, d] → [N, out]."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int = 256) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.fc1.weight.dtype)
        return F.normalize(self.fc2(F.gelu(self.fc1(x))), dim=-1)


class ContrastiveHeads(nn.Module):
    """One (g_v, g_t) pair per block: ``heads[str(l)].v`` / ``.t``."""

    def __init__(self, blocks: Sequence[int], d_in: int, d_hidden: int, d_out: int) -> None:
        super().__init__()
        self.pairs = nn.ModuleDict({
            str(b): nn.ModuleDict({"v": ProjectionHead(d_in, d_hidden, d_out),
                                   "t": ProjectionHead(d_in, d_hidden, d_out)})
            for b in blocks
        })

    def v(self, block: int, x: torch.Tensor) -> torch.Tensor:
        return self.pairs[str(block)]["v"](x)

    def t(self, block: int, x: torch.Tensor) -> torch.Tensor:
        return self.pairs[str(block)]["t"](x)


def perturb(video_embeds: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """SimCSE perturbation: dropout(p) on the visual token embeddings [N_tok, d] (each call draws
    a fresh mask; identity in eval mode or with p = 0)."""
    return F.dropout(video_embeds, p=p, training=training)


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All-gather x [n, D] over the default process group; the local slice keeps its autograd graph
    (SimCSE's put-back). Returns (x_all [world*n, D], world). Needs equal n on every rank."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 1
    world = dist.get_world_size()
    parts = [torch.zeros_like(x) for _ in range(world)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts, dim=0), world
