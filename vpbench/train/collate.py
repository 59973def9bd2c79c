"""Batch collation for the stage-1 recipe.

``collate_sft(examples, ids, padding_side, with_contrastive)`` → ``SFTBatch``:

* SFT pass: ``input_ids`` / ``attention_mask`` / ``labels`` [B, L]. Labels are ``-100`` except on
  the answer tokens and the closing ``<|im_end|>`` (the model learns to stop); padding is masked
  in both. ``padding_side="right"`` (default for training: the padded tail is never attended by
  real tokens) or ``"left"`` (real tokens end at the same column, as in generation); mRoPE
  positions come from ``get_rope_index`` with the attention mask, so both give the same loss.
* videos: ``pixel_values`` [ΣN, C·tps·p²] in batch order, ``video_grid_thw`` [B, 3],
  ``second_per_grid_ts`` [B].
* contrastive pass (when ``with_contrastive``): ``pixel_values_deg`` [ΣN, ...] (V' of each row),
  ``cl`` = [Z_v, eos, Z_v', eos, Z_t, eos] rows (``PackedSequences``), and ``view`` = [Z_v, eos]
  rows (SimCSE positive view). Their video order is V_0, V'_0, V_1, V'_1, ... and V_0, V_1, ....
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from vpbench.train.contrastive import PackedSequences, SpecialIds, build_row, pack_rows
from vpbench.train.data import PreparedExample
from vpbench.train.losses import IGNORE_INDEX


@dataclass(frozen=True, eq=False)
class SFTBatch:
    ids: tuple[str, ...]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor
    video_grid_thw: torch.Tensor
    second_per_grid_ts: torch.Tensor
    pixel_values_deg: torch.Tensor | None = None
    cl: PackedSequences | None = None
    view: PackedSequences | None = None

    @property
    def n_answer_tokens(self) -> int:
        """Supervised tokens (what the SFT loss is averaged over)."""
        return int((self.labels[:, 1:] != IGNORE_INDEX).sum())

    def to(self, device: torch.device | str) -> "SFTBatch":
        def mv(x: object) -> object:
            if isinstance(x, torch.Tensor):
                return x.to(device)
            if isinstance(x, PackedSequences):
                return PackedSequences(*(t.to(device) for t in (x.input_ids, x.attention_mask, x.segment_ids,
                                                                 x.eos_positions)))
            return x
        return SFTBatch(**{k: mv(getattr(self, k)) for k in self.__dataclass_fields__})


def _pad(rows: Sequence[Sequence[int]], value: int, side: str) -> torch.Tensor:
    length = max(len(r) for r in rows)
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for i, r in enumerate(rows):
        if side == "right":
            out[i, :len(r)] = torch.tensor(list(r), dtype=torch.long)
        else:
            out[i, length - len(r):] = torch.tensor(list(r), dtype=torch.long)
    return out


def collate_sft(examples: Sequence[PreparedExample], ids: SpecialIds, padding_side: str = "right",
                with_contrastive: bool = True) -> SFTBatch:
    if not examples:
        raise ValueError("collate_sft: empty batch")
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    input_ids = _pad([e.input_ids for e in examples], ids.pad, padding_side)
    mask = _pad([[1] * len(e.input_ids) for e in examples], 0, padding_side)
    labels = _pad([e.labels for e in examples], IGNORE_INDEX, padding_side)
    batch = dict(
        ids=tuple(e.id for e in examples), input_ids=input_ids, attention_mask=mask, labels=labels,
        pixel_values=torch.from_numpy(np.concatenate([e.pixel_values for e in examples])),
        video_grid_thw=torch.tensor([list(e.grid_thw) for e in examples], dtype=torch.long),
        second_per_grid_ts=torch.tensor([e.second_per_grid_t for e in examples], dtype=torch.float32),
    )
    if with_contrastive:
        batch["pixel_values_deg"] = torch.from_numpy(np.concatenate([e.pixel_values_deg for e in examples]))
        cl_rows = [build_row([("video", e.n_video_tokens), ("video", e.n_video_tokens), ("text", e.keyword_ids)],
                             ids) for e in examples]
        view_rows = [build_row([("video", e.n_video_tokens)], ids) for e in examples]
        batch["cl"] = pack_rows(cl_rows, ids.pad, padding_side)
        batch["view"] = pack_rows(view_rows, ids.pad, padding_side)
    return SFTBatch(**batch)  # type: ignore[arg-type]
