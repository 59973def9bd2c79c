"""The trainable unit of the stage-1 recipe: a Qwen2.5-VL model plus contrastive heads.

``SFTContrastiveModel.forward(batch, sft_norm, cl_scale)`` runs, in ONE module call (so DDP / FSDP
/ ZeRO see one forward and one backward per micro-batch, and every parameter is used):

1. the vision tower once on [V_0..V_{B-1}, V'_0..V'_{B-1}] (features are shared by the passes);
2. the SFT pass: [system, user: V prompt, assistant: answer] through the whole LLM; logits only
   at the positions that predict an answer token; ``ce_sum / sft_norm``;
3. the contrastive pass [Z_v, eos, Z_v', eos, Z_t, eos] (visual embeddings under dropout) cut after
   block max(l), and the SimCSE view pass [Z_v, eos] (a fresh dropout mask), global tokens at the
   eos positions of ``hidden_states[l]`` for each configured block, the heads, and the three
   InfoNCE terms (averaged over blocks); negatives are the micro-batch of every process when
   ``gather_across_processes`` (then ``cl_scale`` should carry the world size, see the recipe).

Returned: ``loss`` (what to backpropagate: ``sft_sum/sft_norm + weight*cl_scale*(v2v+t2v+v2t)``)
and detached logging values ``sft_sum``, ``n_tokens``, ``v2v``, ``t2v``, ``v2t``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from vpbench.train.collate import SFTBatch
from vpbench.train.contrastive import (ContrastiveHeads, PackedSequences, SpecialIds, block_attention_mask,
                                       capture_blocks, check_blocks, gather_at, gather_with_grad, inner_model,
                                       perturb, scatter_video, truncated_layers)
from vpbench.train.losses import IGNORE_INDEX, average_terms, contrastive_terms, token_ce_sum


def text_hidden_size(model: nn.Module) -> int:
    cfg = model.config
    text = getattr(cfg, "text_config", None)
    return int(getattr(text, "hidden_size", None) or cfg.hidden_size)


class SFTContrastiveModel(nn.Module):
    """``model``: a ``Qwen2_5_VLForConditionalGeneration``; ``cfg``: ``ContrastiveConfig``."""

    def __init__(self, model: nn.Module, cfg: Any, ids: SpecialIds) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.ids = ids
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
        if isinstance(feats, torch.Tensor):
            sizes = (grid.prod(-1) // inner_model(self.model).visual.spatial_merge_size ** 2).tolist()
            feats = torch.split(feats, sizes)
        return list(feats)

    def _embed(self, input_ids: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        emb = inner_model(self.model).get_input_embeddings()(input_ids)
        return scatter_video(emb, input_ids, self.ids.video_pad, video)

    def _positions(self, input_ids: torch.Tensor, grid: torch.Tensor, spgt: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
        pos, _ = inner_model(self.model).get_rope_index(input_ids, None, grid, second_per_grid_ts=spgt,
                                                         attention_mask=mask)
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
        """Global tokens {block: [B, S, d]} of packed sequences, the LLM cut after max(blocks)."""
        lm = inner_model(self.model).language_model
        emb = self._embed(packed.input_ids, video)
        pos = self._positions(packed.input_ids, grid, spgt, packed.attention_mask)
        mask4 = block_attention_mask(packed.segment_ids, packed.attention_mask, isolate, dtype=emb.dtype)
        with truncated_layers(lm, max(self.blocks)), capture_blocks(lm.layers, self.blocks) as store:
            lm(inputs_embeds=emb, attention_mask={"full_attention": mask4, "sliding_attention": mask4},
               position_ids=pos, use_cache=False)
        return {b: gather_at(store[b], packed.eos_positions) for b in self.blocks}

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
        g_view = self.encode_blocks(batch.view, perturb(torch.cat(list(feats_v)), p, train),
                                    batch.video_grid_thw, batch.second_per_grid_ts, isolate=False)
        per_block, world = [], 1
        for b in self.blocks:
            z = {"v": self.heads.v(b, g_cl[b][:, 0]), "d": self.heads.v(b, g_cl[b][:, 1]),
                 "t": self.heads.t(b, g_cl[b][:, 2]), "p": self.heads.v(b, g_view[b][:, 0])}
            if self.cfg.gather_across_processes:
                for k in z:
                    z[k], world = gather_with_grad(z[k])
            per_block.append(contrastive_terms(z["v"], z["p"], z["d"], z["t"], self.cfg.temperature))
        return average_terms(per_block), world

    # -- the step ------------------------------------------------------------------------------
    def forward(self, batch: SFTBatch, sft_norm: float = 1.0, cl_scale: float = 1.0,
                passes: tuple[str, ...] = ("sft", "cl")) -> dict[str, torch.Tensor]:
        use_cl = "cl" in passes and self.active
        n = batch.video_grid_thw.shape[0]
        if use_cl:
            assert batch.pixel_values_deg is not None, "collate with with_contrastive=True"
            feats = self.video_features(torch.cat([batch.pixel_values, batch.pixel_values_deg]),
                                        torch.cat([batch.video_grid_thw, batch.video_grid_thw]))
            feats_v, feats_d = feats[:n], feats[n:]
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
