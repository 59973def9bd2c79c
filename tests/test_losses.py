"""Stage-1 losses and contrastive-sequence helpers against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from vpbench.train.contrastive import (SpecialIds, block_attention_mask, build_row, gather_at, pack_rows,
                                       perturb)
from vpbench.train.losses import (average_terms, contrastive_terms, info_nce, t2v_loss, token_ce_sum, total_loss,
                                  v2t_loss, v2v_loss)

E = torch.eye(2)
SWAP = torch.tensor([[0.0, 1.0], [1.0, 0.0]])


def test_info_nce_identity_pairs_exact() -> None:
    # logits [[1,0],[0,1]]/tau: each row -log(e^(1/tau) / (e^(1/tau) + 1)) = log(1 + e^(-1/tau))
    assert info_nce(E, E, temperature=1.0).item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    assert info_nce(E, E, temperature=0.5).item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)
    # cosine: scaling a row changes nothing
    assert info_nce(E * torch.tensor([[3.0], [0.2]]), E, temperature=0.5).item() == pytest.approx(
        math.log(1 + math.exp(-2)), abs=1e-6)


def test_v2v_and_v2t_three_by_three_exact() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    c = 1 / math.sqrt(2)
    sims = [[1, 0, c], [0, 1, c], [c, c, 1]]
    tau = 0.5
    rows = [-math.log(math.exp(sims[i][i] / tau) / sum(math.exp(s / tau) for s in sims[i])) for i in range(3)]
    want = sum(rows) / 3
    assert v2v_loss(x, x, tau).item() == pytest.approx(want, abs=1e-6)
    assert v2t_loss(x, x, tau).item() == pytest.approx(want, abs=1e-6)
    # v2t is not symmetric in its arguments when positives differ from anchors
    assert v2t_loss(x, x.flip(0), tau).item() != pytest.approx(want, abs=1e-3)


def test_t2v_negatives_are_degraded_videos_only() -> None:
    # anchors t = I, positives v = I, negatives v' = swap(I)
    # row i logits: [s(t_i, v_i)=1 | s(t_i, v'_0), s(t_i, v'_1)] = [1 | 0, 1] (in some order)
    # loss_i = -log(e / (e + 1 + e)) = log(2 + e^-1)
    assert t2v_loss(E, E, SWAP, temperature=1.0).item() == pytest.approx(math.log(2 + math.exp(-1)), abs=1e-6)
    # other ORIGINAL videos are not negatives: making v_1 equal to t_0 changes nothing for row 0 ...
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    row0 = -math.log(math.e / (math.e + 1 + math.e))  # t_0 vs [v_0 | v'_0=(0,1), v'_1=(1,0)]
    row1 = -math.log(1 / (1 + math.e + 1))  # t_1=(0,1) vs [v_1=(1,0) -> 0 | v'_0 -> 1, v'_1 -> 0]
    assert t2v_loss(E, v, SWAP, temperature=1.0).item() == pytest.approx((row0 + row1) / 2, abs=1e-6)


def test_terms_sum_and_weighting() -> None:
    terms = contrastive_terms(E, E, SWAP, E, temperature=1.0)
    assert set(terms) == {"v2v", "t2v", "v2t"}
    assert terms["v2v"].item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    t = {"v2v": torch.tensor(0.5), "t2v": torch.tensor(0.25), "v2t": torch.tensor(0.125)}
    assert total_loss(torch.tensor(2.0), t, 0.1).item() == pytest.approx(2.0875, abs=1e-6)
    assert total_loss(torch.tensor(2.0), None, 0.1).item() == 2.0
    avg = average_terms([t, {k: v * 3 for k, v in t.items()}])
    assert avg["t2v"].item() == pytest.approx(0.5)


def test_token_ce_sum_exact() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    assert token_ce_sum(logits, torch.tensor([1, 0])).item() == pytest.approx(math.log(4 / 3) + math.log(2), abs=1e-6)
    assert token_ce_sum(logits[:0], torch.tensor([], dtype=torch.long)).item() == 0.0


def test_info_nce_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="temperature"):
        info_nce(E, E, temperature=0.0)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        info_nce(E, torch.ones(3, 2))


IDS = SpecialIds(vision_start=9, vision_end=10, video_pad=13, eos=2, pad=0)


def test_build_row_layout() -> None:
    ids, seg, eos = build_row([("video", 2), ("video", 1), ("text", [50, 51])], IDS)
    assert ids == [9, 13, 13, 10, 2, 9, 13, 10, 2, 50, 51, 2]
    assert seg == [0] * 5 + [1] * 4 + [2] * 3
    assert eos == [4, 8, 11]
    with pytest.raises(ValueError, match="vision special"):
        build_row([("text", [13])], IDS)


def test_pack_rows_left_and_right() -> None:
    rows = [build_row([("video", 1), ("text", [5])], IDS), build_row([("video", 2), ("text", [5, 6])], IDS)]
    r = pack_rows(rows, IDS.pad, "right")
    assert r.input_ids.tolist()[0] == [9, 13, 10, 2, 5, 2, 0, 0]
    assert r.eos_positions.tolist() == [[3, 5], [4, 7]]
    left = pack_rows(rows, IDS.pad, "left")
    assert left.input_ids.tolist()[0] == [0, 0, 9, 13, 10, 2, 5, 2]
    assert left.eos_positions.tolist() == [[5, 7], [4, 7]]
    assert left.segment_ids.tolist()[0][:3] == [-1, -1, 0]


def test_block_mask_isolates_degraded_segment() -> None:
    # segments: 0 0 1 1 2, last row position padded
    seg = torch.tensor([[0, 0, 1, 1, 2, -1]])
    att = torch.tensor([[1, 1, 1, 1, 1, 0]])
    m = block_attention_mask(seg, att, isolate=True)
    allowed = (m[0, 0] == 0).int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0],  # Z_v' does not see Z_v
        [0, 0, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 0],  # Z_t sees both videos
        [1, 1, 1, 1, 1, 1],  # padded query: own position only added (diagonal)
    ]
    causal = (block_attention_mask(seg, att, isolate=False)[0, 0] == 0).int()
    assert causal[2].tolist() == [1, 1, 1, 0, 0, 0]
    assert m.min().item() == torch.finfo(torch.float32).min


def test_gather_at_and_perturb() -> None:
    h = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    g = gather_at(h, torch.tensor([[1, 3], [0, 2]]))
    assert g.shape == (2, 2, 3)
    assert g[1, 1].tolist() == h[1, 2].tolist()
    x = torch.ones(100, 8)
    assert torch.equal(perturb(x, 0.1, training=False), x)
    torch.manual_seed(0)
    a, b = perturb(x, 0.5, True), perturb(x, 0.5, True)
    assert not torch.equal(a, b)  # a fresh mask per call (the SimCSE positive)
    assert set(a.unique().tolist()) <= {0.0, 2.0}
