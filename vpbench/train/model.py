"""The trainable unit of the stage-1 recipe: a Qwen2.5-VL model plus contrastive heads.

``SFTContrastiveModel.forward(batch, sft_norm, cl_scale)`` runs, in ONE module call (so DDP / FSDP
/ ZeRO see one forward and one backward per micro-batch, and every parameter is used):

1. the vision tower once on [V_0..V_{B-1}] plus only the temporal patches of V' whose pixels differ
   from V's (``paired_video_features``): the tower works per temporal patch, so V' features are V's
   with those patches spliced in (exact; features are shared by the passes);
2. the SFT pass: [system, user: V prompt, assistant: answer] through the whole LLM; logits only
   at the positions that predict an answer token; ``ce_sum / sft_norm``;
3. the contrastive pass [Z_v, eos, Z_v', eos, Z_t, eos] (visual embeddings under dropout) cut after
   block max(l), and the SimCSE view pass [Z_v, eos] (a fresh dropout mask), global tokens at the
   eos positions of ``hidden_states[l]`` for each configured block (block max(l) itself is
   computed at the eos rows only: ``layer_rows``), the heads, and the three
   InfoNCE terms (averaged over blocks); negatives are the micro-batch of every process when
   ``gather_across_processes`` (then ``cl_scale`` should carry the world size, see the recipe).
   Without dropout (eval, or ``visual_dropout`` 0) the view equals segment 0 of the contrastive
   sequence (same tokens, positions and causal context), so its pass is skipped.

Returned: ``loss`` (what to backpropagate: ``sft_sum/sft_norm + weight*cl_scale*(v2v+t2v+v2t)``)
and detached logging values ``sft_sum``, ``n_tokens``, ``v2v``, ``t2v``, ``v2t``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from vpbench.train.collate import SFTBatch
from vpbench.train.contrastive import (PER_TEMPORAL_PATCH_TOWERS, ContrastiveHeads, PackedSequences, SpecialIds,
                                       block_attention_mask, capture_blocks, changed_temporal_patches,
                                       check_blocks, gather_at, gather_with_grad, inner_model, perturb,
                                       scatter_video, splice_temporal_patches, truncated_layers)
from vpbench.train.losses import IGNORE_INDEX, average_terms, contrastive_terms, token_ce_sum


def text_hidden_size(model: nn.Module) -> int:
    cfg = model.config
    text = getattr(cfg, "text_config", None)
    return int(getattr(text, "hidden_size", None) or cfg.hidden_size)


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Non-reentrant activation checkpointing of ``model``'s blocks (the hooks that read block l
    keep their graph): transformers 5.x ``activation_checkpointing_enable`` (``gradient_checkpointing_enable``
    is its deprecated alias there), 4.x ``gradient_checkpointing_enable``."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def rows_only_supported(layer: nn.Module, training: bool) -> bool:
    """Whether ``layer_rows`` reproduces ``layer``: a plain (unwrapped: no FSDP / checkpoint wrapper)
    Qwen2.5-VL decoder layer with full attention, eager or sdpa, and no attention dropout in play."""
    attn = getattr(layer, "self_attn", None)
    return (type(layer).__name__ == "Qwen2_5_VLDecoderLayer" and attn is not None
            and getattr(layer, "attention_type", "full_attention") == "full_attention"  # transformers 4.x
            and getattr(attn, "layer_type", None) in (None, "full_attention")  # transformers 5.x
            and getattr(attn, "sliding_window", None) is None
            and attn.config._attn_implementation in ("eager", "sdpa")
            and not (training and attn.attention_dropout > 0))


def layer_rows(layer: nn.Module, x: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor],
               mask_rows: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Output of decoder ``layer`` at the positions ``rows`` [B, S] only: x [B, L, d] (layer input),
    position_embeddings (cos, sin) as the text model's ``rotary_emb`` makes them (transformers 4.x:
    per-axis [3, B, L, hd]; 5.x: MRoPE sections already interleaved, [B, L, hd]), mask_rows
    [B, 1, S, L] (additive, the rows of the layer's mask) → [B, S, d]. Keys / values use every
    position; queries, o_proj, the residuals and the MLP only ``rows`` (they are per position),
    so this equals ``layer(x)[rows]`` while skipping most of the layer."""
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as q25

    attn = layer.self_attn
    b, length, _ = x.shape
    s = rows.shape[1]
    h = layer.input_layernorm(x)
    q = attn.q_proj(gather_at(h, rows)).view(b, s, -1, attn.head_dim).transpose(1, 2)
    k = attn.k_proj(h).view(b, length, -1, attn.head_dim).transpose(1, 2)
    v = attn.v_proj(h).view(b, length, -1, attn.head_dim).transpose(1, 2)
    cos, sin = position_embeddings
    seq_dim = cos.ndim - 2  # 2 for [3, B, L, hd] (4.x), 1 for [B, L, hd] (5.x)
    idx = rows.to(cos.device)[..., None].expand(-1, -1, cos.shape[-1])
    if seq_dim == 2:
        idx = idx[None].expand(cos.shape[0], -1, -1, -1)
    cos_q, sin_q = cos.gather(seq_dim, idx), sin.gather(seq_dim, idx)
    if seq_dim == 2:  # transformers 4.x: the sections are picked inside the rotation
        section = attn.rope_scaling["mrope_section"]
        q = q25.apply_multimodal_rotary_pos_emb(q, q, cos_q, sin_q, section)[0]
        k = q25.apply_multimodal_rotary_pos_emb(k, k, cos, sin, section)[1]
    else:  # transformers 5.x: plain rotation of the interleaved cos / sin
        q = q25.apply_rotary_pos_emb(q, q, cos_q, sin_q)[0]
        k = q25.apply_rotary_pos_emb(k, k, cos, sin)[1]
    impl = attn.config._attn_implementation
    fn = q25.eager_attention_forward if impl == "eager" else q25.ALL_ATTENTION_FUNCTIONS[impl]
    out, _ = fn(attn, q, k, v, mask_rows.to(q.dtype), dropout=0.0, scaling=attn.scaling, sliding_window=None)
    y = gather_at(x, rows) + attn.o_proj(out.reshape(b, s, -1).contiguous())
    return y + layer.mlp(layer.post_attention_layernorm(y))


class SFTContrastiveModel(nn.Module):
    """``model``: a ``Qwen2_5_VLForConditionalGeneration``; ``cfg``: ``ContrastiveConfig``.
    ``splice_vision`` False runs the tower on the whole of V', ``rows_only_top`` False runs block
    max(l) on every position (reference paths: same values, slower)."""

    def __init__(self, model: nn.Module, cfg: Any, ids: SpecialIds, splice_vision: bool = True,
                 rows_only_top: bool = True) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.ids = ids
        self.splice_vision = splice_vision
        self.rows_only_top = rows_only_top
        inner = inner_model(model)
        n_layers = len(inner.language_model.layers)
        self.active = bool(cfg.enabled and cfg.weight > 0)  # weight 0 ≡ Ablation B (no unused heads)
        self.blocks: tuple[int, ...] = check_blocks(cfg.blocks, n_layers) if self.active else ()
        self.heads: ContrastiveHeads | None = None
        if self.active:
            d = text_hidden_size(model)
            dtype = next(model.parameters()).dtype
            self.heads = ContrastiveHeads(self.blocks, d, cfg.proj_hidden or d, cfg.proj_dim).to(dtype)

    # -- pieces --------------------------------------------------------------------------------
    def video_features(self, pixel_values: torch.Tensor, grid: torch.Tensor) -> list[torch.Tensor]:
        """Vision tower → one [n_i, d] tensor per video (rows of ``grid``)."""
        feats = inner_model(self.model).get_video_features(pixel_values, grid)
        feats = getattr(feats, "pooler_output", feats)  # transformers 5.x: a ModelOutput (merged tokens)
        if isinstance(feats, torch.Tensor):
            sizes = (grid.prod(-1) // inner_model(self.model).visual.spatial_merge_size ** 2).tolist()
            feats = torch.split(feats, sizes)
        return list(feats)

    def paired_video_features(self, pixel_values: torch.Tensor, pixel_values_deg: torch.Tensor,
                              grid: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Features of V and V' ([n_i, d] per video) in ONE tower call. With a per-temporal-patch tower
        (see ``PER_TEMPORAL_PATCH_TOWERS``) only the temporal patches of V' whose pixels differ from
        V's are encoded (grid rows (k, h, w) appended after V's) and spliced into V's features;
        otherwise the whole of V' is encoded."""
        n = grid.shape[0]
        visual = inner_model(self.model).visual
        if not (self.splice_vision and type(visual).__name__ in PER_TEMPORAL_PATCH_TOWERS):
            feats = self.video_features(torch.cat([pixel_values, pixel_values_deg]), torch.cat([grid, grid]))
            return feats[:n], feats[n:]
        changed = changed_temporal_patches(pixel_values, pixel_values_deg, grid)
        rows, grids, start = [pixel_values], [grid], 0
        for (t, h, w), ts in zip(grid.tolist(), changed):
            if ts:
                sel = torch.tensor(ts, device=pixel_values.device)
                chunk = pixel_values_deg[start:start + t * h * w].view(t, h * w, -1)
                rows.append(chunk.index_select(0, sel).reshape(len(ts) * h * w, -1))
                grids.append(grid.new_tensor([[len(ts), h, w]]))
            start += t * h * w
        feats = self.video_features(torch.cat(rows), torch.cat(grids))
        feats_v, extra = feats[:n], iter(feats[n:])
        unit = visual.spatial_merge_size ** 2
        feats_d = [splice_temporal_patches(f, next(extra), ts, h * w // unit) if ts else f
                   for f, ts, (_, h, w) in zip(feats_v, changed, grid.tolist())]
        return feats_v, feats_d

    def _embed(self, input_ids: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        emb = inner_model(self.model).get_input_embeddings()(input_ids)
        return scatter_video(emb, input_ids, self.ids.video_pad, video)

    def _positions(self, input_ids: torch.Tensor, grid: torch.Tensor, spgt: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
        from vpbench.models.qwen_inputs import mm_token_type_ids, takes_mm_token_type_ids

        m = inner_model(self.model)
        if takes_mm_token_type_ids(m):  # transformers 5.x: modality ids come before the grids
            types = mm_token_type_ids(input_ids, self.ids.video_pad)
            pos, _ = m.get_rope_index(input_ids, types, None, grid, second_per_grid_ts=spgt, attention_mask=mask)
        else:
            pos, _ = m.get_rope_index(input_ids, None, grid, second_per_grid_ts=spgt, attention_mask=mask)
        return pos  # [3, B, L]

    def sft_pass(self, batch: SFTBatch, feats_v: Sequence[torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Summed answer-token CE of the micro-batch and its token count."""
        inner = inner_model(self.model)
        emb = self._embed(batch.input_ids, torch.cat(list(feats_v)))
        pos = self._positions(batch.input_ids, batch.video_grid_thw, batch.second_per_grid_ts,
                              batch.attention_mask)
        out = inner.language_model(inputs_embeds=emb, attention_mask=batch.attention_mask, position_ids=pos,
                                   use_cache=False)
        targets = batch.labels[:, 1:]
        sel = targets != IGNORE_INDEX
        hidden = out.last_hidden_state[:, :-1][sel]  # [K, d]
        logits = self.model.lm_head(hidden)  # [K, V]
        return token_ce_sum(logits, targets[sel]), int(sel.sum())

    def encode_blocks(self, packed: PackedSequences, video: torch.Tensor, grid: torch.Tensor,
                      spgt: torch.Tensor, isolate: bool) -> dict[int, torch.Tensor]:
        """Global tokens {block: [B, S, d]} of packed sequences, the LLM cut after max(blocks).
        Only the eos rows of block max(blocks) are used, so its layer runs on those rows alone
        (``layer_rows``; keys / values still on every position) where ``rows_only_supported``."""
        lm = inner_model(self.model).language_model
        emb = self._embed(packed.input_ids, video)
        pos = self._positions(packed.input_ids, grid, spgt, packed.attention_mask)
        top, eos = max(self.blocks), packed.eos_positions
        rows_only = self.rows_only_top and rows_only_supported(lm.layers[top - 1], self.training)
        if isolate:
            mask4 = block_attention_mask(packed.segment_ids, packed.attention_mask, True, dtype=emb.dtype)
            mask: Any = {"full_attention": mask4, "sliding_attention": mask4}
        else:  # plain causal + padding: let transformers build (or skip) its own mask
            mask = packed.attention_mask
        n_run = top - 1 if rows_only else top
        grab = sorted({b for b in self.blocks if b <= n_run} | ({n_run} if rows_only and n_run else set()))
        with truncated_layers(lm, n_run), capture_blocks(lm.layers, grab) as store:
            if n_run:
                lm(inputs_embeds=emb, attention_mask=mask, position_ids=pos, use_cache=False)
        out = {b: gather_at(store[b], eos) for b in self.blocks if b <= n_run}
        if rows_only:
            x = store[n_run] if n_run else emb
            rows_mask = block_attention_mask(packed.segment_ids, packed.attention_mask, isolate, dtype=emb.dtype,
                                             query_positions=eos)
            layer = lm.layers[top - 1]
            args = (layer, x, lm.rotary_emb(x, pos), rows_mask, eos)
            if getattr(layer, "gradient_checkpointing", False) and self.training:
                from torch.utils.checkpoint import checkpoint

                out[top] = checkpoint(layer_rows, *args, use_reentrant=False)
            else:
                out[top] = layer_rows(*args)
        return out

    def contrastive_pass(self, batch: SFTBatch, feats_v: Sequence[torch.Tensor],
                         feats_d: Sequence[torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
        """Terms {v2v, t2v, v2t} averaged over blocks, and the gather world size."""
        assert batch.cl is not None and batch.view is not None and self.heads is not None
        p, train = self.cfg.visual_dropout, self.training
        inter = [f for pair in zip(feats_v, feats_d) for f in pair]  # V_0, V'_0, V_1, V'_1, ...
        grid2 = batch.video_grid_thw.repeat_interleave(2, dim=0)
        spgt2 = batch.second_per_grid_ts.repeat_interleave(2)
        g_cl = self.encode_blocks(batch.cl, perturb(torch.cat(inter), p, train), grid2, spgt2,
                                  self.cfg.segment_isolation)
        # no dropout: the view [Z_v, eos] is exactly segment 0 of the contrastive sequence
        g_view = (self.encode_blocks(batch.view, perturb(torch.cat(list(feats_v)), p, train), batch.video_grid_thw,
                                     batch.second_per_grid_ts, isolate=False) if train and p > 0 else None)
        per_block, world = [], 1
        for b in self.blocks:
            z = {"v": self.heads.v(b, g_cl[b][:, 0]), "d": self.heads.v(b, g_cl[b][:, 1]),
                 "t": self.heads.t(b, g_cl[b][:, 2])}
            z["p"] = z["v"] if g_view is None else self.heads.v(b, g_view[b][:, 0])
            if self.cfg.gather_across_processes:
                for k in z:
                    z[k], world = gather_with_grad(z[k])
            per_block.append(contrastive_terms(z["v"], z["p"], z["d"], z["t"], self.cfg.temperature))
        return average_terms(per_block), world

    # -- the step ------------------------------------------------------------------------------
    def forward(self, batch: SFTBatch, sft_norm: float = 1.0, cl_scale: float = 1.0,
                passes: tuple[str, ...] = ("sft", "cl")) -> dict[str, torch.Tensor]:
        use_cl = "cl" in passes and self.active
        if use_cl:
            assert batch.pixel_values_deg is not None, "collate with with_contrastive=True"
            feats_v, feats_d = self.paired_video_features(batch.pixel_values, batch.pixel_values_deg,
                                                          batch.video_grid_thw)
        else:
            feats_v, feats_d = self.video_features(batch.pixel_values, batch.video_grid_thw), []
        zero = batch.pixel_values.new_zeros(())
        out: dict[str, torch.Tensor] = {}
        loss = zero
        if "sft" in passes:
            ce_sum, n_tok = self.sft_pass(batch, feats_v)
            loss = loss + ce_sum / sft_norm
            out["sft_sum"], out["n_tokens"] = ce_sum.detach(), torch.tensor(float(n_tok))
        if use_cl:
            terms, world = self.contrastive_pass(batch, feats_v, feats_d)
            loss = loss + self.cfg.weight * cl_scale * (terms["v2v"] + terms["t2v"] + terms["v2t"])
            out.update({k: v.detach() for k, v in terms.items()})
        out["loss"] = loss
        return out
