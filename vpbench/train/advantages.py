"""Advantages of Comparative GRPO (RECIPE §3), pure functions on tensors.

Shapes: P prompts, G samples per group; rows of a [P, G] tensor are groups (consecutive samples
of one prompt, TRL's layout). A reward that is ``None`` arrives as NaN.

* ``group_advantages(r)``      A_base = (r - mean_G) / (std_G + eps), std unbiased (TRL / Video-R1,
                               eps 1e-4); NaN rewards are left out of a group's mean / std and get
                               advantage 0; a group with one finite reward has std NaN → 0.
* ``comparative_rewards(q, q')`` r_c,i = Q(o_i) - Q(o'_i) per pair (eq. 8).
* ``EMABaseline``               b ← m·b + (1-m)·mean(r_c over the batch), initialised 0, updated
                               AFTER use (eq. 9 uses the b of the previous steps).
* ``combined_advantages``       A = A_base + λ_c·(r_c - b) (eq. 10), zero rows for prompts that
                               contribute no policy gradient.
* ``tgrpo_bonus``               Video-R1's T-GRPO rule: when p ≥ μ·p̃ (mean accuracy on ordered vs
                               shuffled frames), +α to every accuracy > 0.1 of the ordered group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


def group_advantages(rewards: torch.Tensor, eps: float = 1e-4, scale: bool = True) -> torch.Tensor:
    """rewards [P, G] (NaN = no reward) → A_base [P, G]; ``scale`` False = Dr.GRPO (mean only)."""
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be [P, G], got shape {tuple(rewards.shape)}")
    r = rewards.double()
    finite = ~torch.isnan(r)
    n = finite.sum(1, keepdim=True)
    mean = torch.where(finite, r, 0.0).sum(1, keepdim=True) / n.clamp(min=1)
    dev = torch.where(finite, r - mean, 0.0)
    adv = dev
    if scale:
        var = (dev ** 2).sum(1, keepdim=True) / (n - 1).clamp(min=1)
        std = torch.where(n > 1, var.sqrt(), torch.zeros_like(var))
        adv = dev / (std + eps)
    return torch.where(finite, adv, 0.0).to(rewards.dtype)


def comparative_rewards(q_full: torch.Tensor, q_degraded: torch.Tensor) -> torch.Tensor:
    """Q(o_i, y) - Q(o'_i, y) per pair: q_full, q_degraded [P, G] → r_c [P, G]."""
    if q_full.shape != q_degraded.shape:
        raise ValueError(f"full and degraded groups differ in shape: {tuple(q_full.shape)} vs "
                         f"{tuple(q_degraded.shape)} (G samples on each video)")
    return q_full - q_degraded


@dataclass
class EMABaseline:
    """b of eq. 9: EMA of the batch mean of r_c. ``value`` is what the current step uses;
    ``update(batch_mean)`` afterwards. Checkpointed (``state_dict`` / ``load_state_dict``)."""

    momentum: float = 0.9
    value: float = 0.0
    updates: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"EMA momentum must be in [0, 1), got {self.momentum}")

    def update(self, batch_mean: float) -> float:
        self.value = self.momentum * self.value + (1.0 - self.momentum) * float(batch_mean)
        self.updates += 1
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "value": self.value, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.momentum, self.value, self.updates = float(state["momentum"]), float(state["value"]), int(state["updates"])


def combined_advantages(a_base: torch.Tensor, r_c: torch.Tensor, baseline: float, lambda_c: float,
                        trainable: torch.Tensor) -> torch.Tensor:
    """A [P, G] = (A_base + λ_c·(r_c - b)) · trainable[:, None]; ``trainable`` [P] bool."""
    if a_base.shape != r_c.shape or trainable.shape != a_base.shape[:1]:
        raise ValueError(f"shapes: a_base {tuple(a_base.shape)}, r_c {tuple(r_c.shape)}, trainable "
                         f"{tuple(trainable.shape)} (want [P, G], [P, G], [P])")
    a = a_base + lambda_c * (r_c - baseline) if lambda_c else a_base.clone()
    return a * trainable[:, None].to(a.dtype)


def positive_gap(r_c: torch.Tensor) -> torch.Tensor:
    """[P, G] → [P] bool: mean_i r_c,i > 0 (the refeed test; ≤ 0 triggers a resample)."""
    return r_c.mean(1) > 0


def tgrpo_bonus(acc_ordered: torch.Tensor, acc_shuffled: torch.Tensor, mu: float = 0.8,
                alpha: float = 0.3) -> torch.Tensor:
    """Video-R1 T-GRPO: acc_ordered [P, G], acc_shuffled [P, G'] → bonus [P, G] (α on each
    ordered accuracy > 0.1 of a prompt whose p = mean(ordered) ≥ μ·mean(shuffled), else 0)."""
    p = acc_ordered.mean(1, keepdim=True)
    p_shuf = acc_shuffled.mean(1, keepdim=True)
    gate = p >= mu * p_shuf
    return torch.where(gate & (acc_ordered > 0.1), torch.full_like(acc_ordered, alpha), torch.zeros_like(acc_ordered))
