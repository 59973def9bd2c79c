"""One Comparative-GRPO step's pieces: rollouts with refeed → groups → advantages → token batches.

``collect_group`` (per prompt; no gradient anywhere):
  1. G samples on the key-information-absent clip V' (same frames, key frames replaced): Q(o').
     They are scored only; they never enter a training batch.
  2. G samples on the full clip V under the prompt x: Q(o), r_c = Q(o) - Q(o') per pair.
  3. Refeed: while mean r_c ≤ 0 and fewer than ``max_refeed`` resamples, resample the full-video
     group under x + the refeed instruction. The group kept is the LAST one, trained under the
     prompt that produced it. Still ≤ 0 → ``trainable`` False (no policy gradient).
  4. Base reward r = Q(o) + w_fmt·format(o) (+ T-GRPO's bonus with ``comparator=tgrpo``).

``PolicyLogprobs``: the trainable module (wraps the Qwen2.5-VL model; what accelerate prepares):
  ``forward(batch) -> log p [G, T]`` of the completion tokens under the group's prompt and clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from vpbench.train.advantages import tgrpo_bonus
from vpbench.train.rl_data import RLPrepared, VideoInput
from vpbench.train.rollouts import Rollout, video_tensors


def rollout_seed(seed: int, step: int, index: int, attempt: int, kind: int) -> int:
    """A seed per (run seed, step, prompt, attempt, clip kind): independent of process count/order."""
    return int(np.random.SeedSequence([seed, step, index, attempt, kind]).generate_state(1)[0])


KIND_FULL, KIND_DEGRADED, KIND_SHUFFLED = 0, 1, 2


@dataclass
class Group:
    """One prompt's trained group (G completions on the FULL clip) and its statistics."""

    index: int
    prep: RLPrepared
    prompt_ids: tuple[int, ...]  # the prompt the kept group was sampled under (refeed: with the instruction)
    prompt_text: str
    completions: list[list[int]]
    texts: list[str]
    q_full: list[float]
    q_ref: list[float]  # Q on the degraded (or shuffled, tgrpo) clip; [] with comparator none
    rewards: list[float]  # base reward per completion
    refeeds: int  # resamples done
    trainable: bool
    r_c: list[float] = field(default_factory=list)
    gen_tokens: int = 0

    @property
    def video(self) -> VideoInput:
        return self.prep.full


def collect_group(prep: RLPrepared, index: int, step: int, rollout: Rollout, decode: Callable[[list[int]], str],
                  quality: Callable[..., list[float | None]], fmt: Callable[..., list[float | None]] | None,
                  g: Any, format_weight: float, seed: int) -> Group:
    """Rollouts, quality, refeed and base rewards of one prompt (see the module docstring).
    ``g``: the ``grpo`` config section."""
    ex, n = prep.example, g.num_generations
    cols = {"answer": [ex.answer] * n, "answer_type": [ex.answer_type] * n}
    gen_tokens = 0

    def sample(ids: Sequence[int], video: VideoInput, text: str, attempt: int, kind: int):
        nonlocal gen_tokens
        comp = rollout.generate(ids, video, n, rollout_seed(seed, step, index, attempt, kind))
        gen_tokens += sum(len(c) for c in comp)
        texts = [decode(c) for c in comp]
        q = [float(v) if v is not None else 0.0 for v in quality([text] * n, texts, **cols)]
        return comp, texts, q

    q_ref: list[float] = []
    if g.comparator == "comparative":
        q_ref = sample(prep.prompt_ids, prep.degraded, ex.prompt, 0, KIND_DEGRADED)[2]
    elif g.comparator == "tgrpo":
        assert prep.shuffled is not None, "RLDataset(shuffled=True) for comparator tgrpo"
        q_ref = sample(prep.prompt_ids, prep.shuffled, ex.prompt, 0, KIND_SHUFFLED)[2]
    ids, text = prep.prompt_ids, ex.prompt
    comp, texts, q = sample(ids, prep.full, text, 0, KIND_FULL)
    r_c = [a - b for a, b in zip(q, q_ref)] if g.comparator == "comparative" else []
    refeeds = 0
    if g.refeed:
        while float(np.mean(r_c)) <= 0 and refeeds < g.max_refeed:
            refeeds += 1
            ids, text = prep.refeed_prompt_ids, prep.refeed_prompt
            comp, texts, q = sample(ids, prep.full, text, refeeds, KIND_FULL)
            r_c = [a - b for a, b in zip(q, q_ref)]
    trainable = not g.refeed or float(np.mean(r_c)) > 0
    rewards = list(q)
    if fmt is not None and format_weight:
        f = fmt([text] * n, texts, **cols)
        rewards = [r + format_weight * (v or 0.0) for r, v in zip(rewards, f)]
    if g.comparator == "tgrpo":
        bonus = tgrpo_bonus(torch.tensor([q]), torch.tensor([q_ref]), g.tgrpo_mu, g.tgrpo_alpha)[0].tolist()
        rewards = [r + b for r, b in zip(rewards, bonus)]
    return Group(index=index, prep=prep, prompt_ids=tuple(ids), prompt_text=text, completions=comp, texts=texts,
                 q_full=q, q_ref=q_ref, rewards=rewards, refeeds=refeeds, trainable=trainable, r_c=r_c,
                 gen_tokens=gen_tokens)


@dataclass(frozen=True, eq=False)
class TokenBatch:
    """The G sequences [prompt + completion] of one group, right-padded: input_ids / attention_mask
    [G, L]; completion targets [G, T] and mask [G, T] (T = longest completion); the clip repeated
    G times; ``prompt_len``; advantages [G]; ``weight`` 1.0 (trainable) or 0.0."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    targets: torch.Tensor
    completion_mask: torch.Tensor
    pixel_values: torch.Tensor
    video_grid_thw: torch.Tensor
    second_per_grid_ts: torch.Tensor
    prompt_len: int
    advantages: torch.Tensor
    weight: float


def token_batch(group: Group, advantages: torch.Tensor, pad_id: int, device: Any, dtype: Any) -> TokenBatch:
    n, p = len(group.completions), len(group.prompt_ids)
    t = max(1, max(len(c) for c in group.completions))
    ids = torch.full((n, p + t), pad_id, dtype=torch.long)
    att = torch.zeros((n, p + t), dtype=torch.long)
    tgt = torch.full((n, t), pad_id, dtype=torch.long)
    cm = torch.zeros((n, t), dtype=torch.long)
    for i, c in enumerate(group.completions):
        ids[i, :p] = torch.tensor(group.prompt_ids)
        ids[i, p:p + len(c)] = torch.tensor(c, dtype=torch.long)
        att[i, :p + len(c)] = 1
        tgt[i, :len(c)] = torch.tensor(c, dtype=torch.long)
        cm[i, :len(c)] = 1
    vt = video_tensors(group.video, n, device, dtype)
    return TokenBatch(input_ids=ids.to(device), attention_mask=att.to(device), targets=tgt.to(device),
                      completion_mask=cm.to(device), pixel_values=vt["pixel_values_videos"],
                      video_grid_thw=vt["video_grid_thw"], second_per_grid_ts=vt["second_per_grid_ts"], prompt_len=p,
                      advantages=advantages.to(device), weight=1.0 if group.trainable else 0.0)


class PolicyLogprobs(nn.Module):
    """Wraps ``model`` (Qwen2_5_VLForConditionalGeneration); ``forward(batch)`` → log p [G, T] of
    the completion tokens. The LM head runs on the completion positions only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, b: TokenBatch) -> torch.Tensor:
        from vpbench.models.qwen_inputs import mm_token_type_ids, takes_mm_token_type_ids
        from vpbench.train.contrastive import inner_model
        from vpbench.train.grpo_loss import token_logprobs

        inner = inner_model(self.model)
        extra = {}
        if takes_mm_token_type_ids(inner):
            extra["mm_token_type_ids"] = mm_token_type_ids(b.input_ids, self.model.config.video_token_id,
                                                           self.model.config.image_token_id)
        out = inner(input_ids=b.input_ids, attention_mask=b.attention_mask, pixel_values_videos=b.pixel_values,
                    video_grid_thw=b.video_grid_thw, second_per_grid_ts=b.second_per_grid_ts, use_cache=False,
                    **extra)
        t = b.targets.shape[1]
        hidden = out.last_hidden_state[:, b.prompt_len - 1:b.prompt_len - 1 + t]  # positions predicting completions
        return token_logprobs(self.model.lm_head(hidden), b.targets)
