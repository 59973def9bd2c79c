"""Pure loss functions of the stage-1 recipe (RECIPE §2, paper eqs. 4-7).

All functions take projected global tokens (any scale: they are L2-normalised here, so the
similarity is the cosine) and return a scalar tensor. ``N`` is the number of anchors (the batch),
``D`` the contrastive dimension. Nothing here touches a model, a process group or global state.

* ``info_nce``: ``mean_i -log( exp(s(a_i, p_i)/tau) / sum_c exp(s(a_i, c)/tau) )`` with the
  candidates ``c`` = the in-batch positives ``p_1..p_N`` (when ``in_batch``) or only ``p_i``,
  followed by the extra ``negatives`` (``M`` rows, shared by every anchor).
* ``v2v_loss`` (eq. 4, SimCSE): anchors = original-video global tokens, positives = the same
  videos under a different dropout mask; the other videos' positives are the negatives.
* ``t2v_loss`` (eq. 5): anchor ``h_t,i``; positive ``h_v,i``; negatives the degraded videos
  ``h_v',j`` of the batch, own included. Other original videos are NOT negatives (RECIPE §2).
* ``v2t_loss`` (eq. 6): anchor ``h_v,i``; positive ``h_t,i``; negatives ``h_t,j``, ``j != i``.
* ``total_loss`` (eq. 7): ``L_sft + lambda_cl * (L_v2v + L_t2v + L_v2t)`` (the three terms are
  summed, then weighted).
* ``token_ce_sum``: summed next-token cross-entropy over supervised tokens (the recipe divides by
  the number of answer tokens of the whole accumulated global batch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100


def _normalize(x: "torch.Tensor") -> "torch.Tensor":
    import torch.nn.functional as F

    return F.normalize(x.float(), dim=-1)


def info_nce(
    anchors: "torch.Tensor",
    positives: "torch.Tensor",
    negatives: "torch.Tensor | None" = None,
    *,
    temperature: float = 0.05,
    in_batch: bool = True,
) -> "torch.Tensor":
    """InfoNCE with cosine similarity.

    anchors [N, D], positives [N, D] (row i is the positive of anchor i), negatives [M, D] or None.
    Logits per anchor: ``[s(a_i, p_1..p_N) | s(a_i, n_1..n_M)] / tau`` (in_batch) or
    ``[s(a_i, p_i) | s(a_i, n_1..n_M)] / tau``; target = the column of ``p_i``. Returns the mean
    over anchors (a scalar, float32).
    """
    import torch
    import torch.nn.functional as F

    if anchors.ndim != 2 or anchors.shape != positives.shape:
        raise ValueError(f"anchors and positives must both be [N, D], got {tuple(anchors.shape)} "
                         f"and {tuple(positives.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    a, p = _normalize(anchors), _normalize(positives)
    n = a.shape[0]
    if in_batch:
        logits = a @ p.T  # [N, N]
        target = torch.arange(n, device=a.device)
    else:
        logits = (a * p).sum(-1, keepdim=True)  # [N, 1]
        target = torch.zeros(n, dtype=torch.long, device=a.device)
    if negatives is not None:
        if negatives.ndim != 2 or negatives.shape[1] != a.shape[1]:
            raise ValueError(f"negatives must be [M, {a.shape[1]}], got {tuple(negatives.shape)}")
        logits = torch.cat([logits, a @ _normalize(negatives).T], dim=1)  # [N, N|1 + M]
    return F.cross_entropy(logits / temperature, target)


def v2v_loss(h_v: "torch.Tensor", h_v_pos: "torch.Tensor", temperature: float = 0.05) -> "torch.Tensor":
    """Eq. 4. h_v [N, D] (dropout view 1), h_v_pos [N, D] (dropout view 2) → scalar."""
    return info_nce(h_v, h_v_pos, temperature=temperature, in_batch=True)


def t2v_loss(
    h_t: "torch.Tensor", h_v: "torch.Tensor", h_v_deg: "torch.Tensor", temperature: float = 0.05
) -> "torch.Tensor":
    """Eq. 5. h_t [N, D] anchors, h_v [N, D] positives, h_v_deg [N, D] negatives (all of them,
    own included) → scalar. Logits row i: ``[s(t_i, v_i) | s(t_i, v'_1..v'_N)] / tau``."""
    return info_nce(h_t, h_v, h_v_deg, temperature=temperature, in_batch=False)


def v2t_loss(h_v: "torch.Tensor", h_t: "torch.Tensor", temperature: float = 0.05) -> "torch.Tensor":
    """Eq. 6. h_v [N, D] anchors, h_t [N, D] → scalar; logits ``s(v_i, t_j)/tau``, target j = i."""
    return info_nce(h_v, h_t, temperature=temperature, in_batch=True)


def contrastive_terms(
    z_v: "torch.Tensor",
    z_v_pos: "torch.Tensor",
    z_v_deg: "torch.Tensor",
    z_t: "torch.Tensor",
    temperature: float = 0.05,
) -> dict[str, "torch.Tensor"]:
    """The three terms for one block: {"v2v", "t2v", "v2t"} (each a scalar); inputs [N, D]."""
    return {
        "v2v": v2v_loss(z_v, z_v_pos, temperature),
        "t2v": t2v_loss(z_t, z_v, z_v_deg, temperature),
        "v2t": v2t_loss(z_v, z_t, temperature),
    }


def average_terms(per_block: list[Mapping[str, "torch.Tensor"]]) -> dict[str, "torch.Tensor"]:
    """Average each term over blocks (Table 6: a list of blocks, losses averaged)."""
    if not per_block:
        raise ValueError("average_terms needs at least one block")
    keys = list(per_block[0])
    return {k: sum(d[k] for d in per_block) / len(per_block) for k in keys}


def total_loss(
    sft: "torch.Tensor", terms: Mapping[str, "torch.Tensor"] | None, weight: float
) -> "torch.Tensor":
    """Eq. 7: ``sft + weight * (v2v + t2v + v2t)``; ``terms`` None (Ablation B) → ``sft``."""
    if not terms or weight == 0:
        return sft
    return sft + weight * (terms["v2v"] + terms["t2v"] + terms["v2t"])


def token_ce_sum(logits: "torch.Tensor", targets: "torch.Tensor") -> "torch.Tensor":
    """Sum of cross-entropy over rows: logits [K, V] (already gathered at the positions that
    predict a supervised token), targets [K] (token ids, no ignore index) → scalar float32."""
    import torch.nn.functional as F

    if logits.shape[0] == 0:
        return logits.float().sum() * 0.0
    return F.cross_entropy(logits.float(), targets, reduction="sum")
