"""The GRPO objective (RECIPE §3 eq. 10 objective): clipped ratio + k3 KL, token-level normalisation.

Shapes: B sequences (completions), T completion positions; ``mask`` [B, T] is 1 on completion
tokens (up to and including the first eos) and 0 on padding.

    ratio_t = exp(logp_t - old_t)
    L_t     = -min(ratio_t·A, clip(ratio_t, 1-ε_low, 1+ε_high)·A) + β·(exp(ref_t - logp_t) - (ref_t - logp_t) - 1)
    loss    = Σ_{b,t} mask·L / n_tokens

``n_tokens`` is the number of completion tokens of the whole optimiser step (all micro-batches,
all processes: TRL's ``dapo`` normalisation) so that the split of a step into micro-batches and
processes does not change the gradient; by default the local ``mask.sum()`` (``bnpo``).
"""

from __future__ import annotations

import torch


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """logits [B, T, V] (the positions that predict ``targets``), targets [B, T] → log p [B, T] (fp32)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(π || π_ref) per token: exp(r) - r - 1, r = ref - logp (≥ 0)."""
    r = ref_logp - logp
    return torch.exp(r) - r - 1.0


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None, advantages: torch.Tensor,
              mask: torch.Tensor, *, epsilon: float = 0.2, epsilon_high: float | None = None, beta: float = 0.04,
              n_tokens: float | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """logp / old_logp / ref_logp [B, T], advantages [B], mask [B, T] → (loss, stats).

    stats (detached sums over the active tokens, for logging and exact reduction across processes):
    ``tokens``, ``kl_sum``, ``clipped_sum`` (tokens whose clipped term was the minimum and differs),
    ``ratio_sum``."""
    if logp.shape != mask.shape or old_logp.shape != mask.shape or advantages.shape != mask.shape[:1]:
        raise ValueError(f"shapes: logp {tuple(logp.shape)}, old {tuple(old_logp.shape)}, mask {tuple(mask.shape)}, "
                         f"advantages {tuple(advantages.shape)}")
    m = mask.to(logp.dtype)
    a = advantages.to(logp.dtype)[:, None]
    ratio = torch.exp(logp - old_logp)
    hi = 1.0 + (epsilon if epsilon_high is None else epsilon_high)
    clipped = torch.clamp(ratio, 1.0 - epsilon, hi)
    t1, t2 = ratio * a, clipped * a
    per_tok = -torch.minimum(t1, t2)
    kl = None
    if ref_logp is not None and beta:
        kl = k3_kl(logp, ref_logp)
        per_tok = per_tok + beta * kl
    denom = float(n_tokens) if n_tokens is not None else float(m.sum().clamp(min=1.0))
    loss = (per_tok * m).sum() / max(denom, 1.0)
    with torch.no_grad():
        is_clipped = (t2 < t1) & (clipped != ratio)
        stats = {"tokens": m.sum(), "clipped_sum": (is_clipped.to(m.dtype) * m).sum(),
                 "ratio_sum": (ratio * m).sum(),
                 "kl_sum": (kl * m).sum() if kl is not None else torch.zeros((), dtype=m.dtype)}
    return loss, stats


def completion_mask(completions: torch.Tensor, eos_ids: tuple[int, ...], pad_id: int) -> torch.Tensor:
    """completions [B, T] (right-padded with ``pad_id``) → mask [B, T]: 1 up to and including the
    first eos token of each row, 0 after it (TRL's completion mask)."""
    is_eos = torch.zeros_like(completions, dtype=torch.bool)
    for e in eos_ids:
        is_eos |= completions == e
    t = completions.shape[1]
    pos = torch.arange(t, device=completions.device).expand_as(completions)
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(completions[:, 0], t))
    return (pos <= first[:, None]).long()
