"""Comparative GRPO's pure functions against hand-computed values (RECIPE §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vpbench.errors import ConfigError
from vpbench.train.advantages import (EMABaseline, combined_advantages, comparative_rewards, group_advantages,
                                      positive_gap, tgrpo_bonus)
from vpbench.train.grpo_loss import completion_mask, grpo_loss, k3_kl, token_logprobs

NAN = float("nan")


def _close(got: torch.Tensor, want, atol: float = 1e-6) -> None:
    torch.testing.assert_close(got.double(), torch.tensor(want, dtype=torch.float64), atol=atol, rtol=0)


# -- advantages ----------------------------------------------------------------------------------
def test_group_advantages_hand_values() -> None:
    a = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0], [3.0, 1.0, 2.0, 2.0]]))
    s0 = math.sqrt((4 * 0.25) / 3)  # unbiased std of (1, 0, 0, 1): sqrt(1/3)
    s1 = math.sqrt((1 + 1 + 0 + 0) / 3)  # (3, 1, 2, 2): mean 2
    want = [[0.5 / (s0 + 1e-4), -0.5 / (s0 + 1e-4), -0.5 / (s0 + 1e-4), 0.5 / (s0 + 1e-4)],
            [1 / (s1 + 1e-4), -1 / (s1 + 1e-4), 0.0, 0.0]]
    _close(a, want)
    assert group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), scale=False).tolist() == [[0.5, -0.5, -0.5, 0.5]]


def test_group_advantages_all_equal_and_missing_rewards() -> None:
    assert group_advantages(torch.tensor([[0.7, 0.7, 0.7]])).tolist() == [[0.0, 0.0, 0.0]]
    a = group_advantages(torch.tensor([[1.0, NAN, 0.0], [NAN, 3.0, NAN]]))
    s = math.sqrt(0.5)  # finite (1, 0): mean 0.5, unbiased std sqrt(0.5)
    _close(a, [[0.5 / (s + 1e-4), 0.0, -0.5 / (s + 1e-4)], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError):
        group_advantages(torch.tensor([1.0, 2.0]))


def test_comparative_reward_ema_and_combination() -> None:
    rc = comparative_rewards(torch.tensor([[1.0, 0.5], [0.0, 0.0]]), torch.tensor([[0.0, 0.5], [1.0, 0.0]]))
    assert rc.tolist() == [[1.0, 0.0], [-1.0, 0.0]]
    assert positive_gap(rc).tolist() == [True, False]
    b = EMABaseline()
    assert b.value == 0.0  # initialised 0: the first step uses b = 0
    assert b.update(0.5) == pytest.approx(0.05)  # 0.9*0 + 0.1*0.5
    assert b.update(-0.2) == pytest.approx(0.025)  # 0.9*0.05 + 0.1*(-0.2)
    again = EMABaseline()
    again.load_state_dict(b.state_dict())
    assert (again.value, again.updates) == (b.value, 2)
    a = combined_advantages(torch.tensor([[1.0, -1.0], [0.5, -0.5]]), torch.tensor([[0.5, 0.0], [0.2, 0.2]]), 0.1,
                            1.0, torch.tensor([True, False]))
    _close(a, [[1.4, -1.1], [0.0, 0.0]])
    # lambda_c = 0: plain GRPO
    a0 = combined_advantages(torch.tensor([[1.0, -1.0]]), torch.tensor([[9.0, 9.0]]), 5.0, 0.0, torch.tensor([True]))
    assert a0.tolist() == [[1.0, -1.0]]
    with pytest.raises(ValueError):
        EMABaseline(momentum=1.0)


def test_rc_nonpositive_everywhere_gives_no_gradient_rows() -> None:
    rc = comparative_rewards(torch.tensor([[0.0, 1.0], [0.2, 0.2]]), torch.tensor([[0.5, 0.5], [0.2, 0.2]]))
    trainable = positive_gap(rc)
    assert trainable.tolist() == [False, False]  # means 0.0 and 0.0: <= 0 both
    a = combined_advantages(group_advantages(torch.tensor([[0.0, 1.0], [1.0, 0.0]])), rc, 0.3, 1.0, trainable)
    assert a.abs().sum().item() == 0.0


def test_tgrpo_bonus_rule() -> None:
    ordered = torch.tensor([[1.0, 0.0, 1.0, 0.05], [1.0, 0.0, 0.0, 0.0]])
    shuffled = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # p = 0.5125 >= 0.8 * 0.5; p = 0.25 < 0.8 * 1.0
    _close(tgrpo_bonus(ordered, shuffled), [[0.3, 0.0, 0.3, 0.0], [0.0, 0.0, 0.0, 0.0]])


# -- loss --------------------------------------------------------------------------------------
def test_k3_and_token_logprobs() -> None:
    lp = torch.tensor([math.log(0.25), 0.0])
    ref = torch.tensor([math.log(0.5), 0.0])
    assert k3_kl(lp, ref).tolist() == pytest.approx([2 - math.log(2) - 1, 0.0])  # r = ln 2: e^r - r - 1
    logits = torch.tensor([[[0.0, math.log(3.0)]]])  # p = (1/4, 3/4)
    assert token_logprobs(logits, torch.tensor([[1]])).item() == pytest.approx(math.log(0.75))


def _loss_case(pad_value: float = 0.0, beta: float = 0.1):
    old = torch.zeros(2, 3)
    logp = torch.tensor([[math.log(1.5), math.log(0.5), pad_value], [math.log(0.5), pad_value, pad_value]],
                        requires_grad=True)
    ref = logp.detach().clone()
    ref[0, 0] = logp[0, 0].item() + math.log(2.0)  # r = ln 2 on token (0, 0), 0 elsewhere
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    loss, st = grpo_loss(logp, old, ref, torch.tensor([1.0, -2.0]), mask, epsilon=0.2, beta=beta)
    return logp, loss, st


def test_clipped_objective_hand_values() -> None:
    # token (0,0): ratio 1.5, A 1 -> min(1.5, 1.2) = 1.2 (clipped); (0,1): ratio 0.5 -> min(0.5, 0.8) = 0.5;
    # (1,0): ratio 0.5, A -2 -> min(-1.0, -1.6) = -1.6 (clipped). Sum of -min: -1.2 - 0.5 + 1.6 = -0.1
    logp, loss, st = _loss_case(beta=0.1)
    kl = 1 - math.log(2)  # k3 at r = ln 2
    assert loss.item() == pytest.approx((-0.1 + 0.1 * kl) / 3, abs=1e-6)
    assert (st["tokens"].item(), st["clipped_sum"].item()) == (3.0, 2.0)
    assert st["kl_sum"].item() == pytest.approx(kl, abs=1e-6)
    loss.backward()
    # d/dlogp of -ratio*A where unclipped (0,1): -0.5 * 1 / 3; clipped tokens: only the KL term
    # d k3/dlogp = 1 - exp(r) = -1 at (0,0): 0.1 * -1 / 3
    _close(logp.grad, [[-0.1 / 3, -0.5 / 3, 0.0], [0.0, 0.0, 0.0]])
    l_norm, _ = grpo_loss(logp.detach(), torch.zeros(2, 3), None, torch.tensor([1.0, -2.0]),
                             torch.tensor([[1, 1, 0], [1, 0, 0]]), beta=0.0, n_tokens=10)
    assert l_norm.item() == pytest.approx(-0.1 / 10, abs=1e-6)  # token-level normalisation by the step's count


def test_padding_mask_ignores_padded_values() -> None:
    a_logp, a, _ = _loss_case(pad_value=0.0)
    b_logp, b, _ = _loss_case(pad_value=5.0)  # absurd padded log-probs: exp(5) ratios
    assert a.item() == b.item()
    a.backward()
    b.backward()
    assert torch.equal(a_logp.grad, b_logp.grad)
    m = completion_mask(torch.tensor([[5, 2, 0, 0], [5, 6, 7, 8], [2, 9, 9, 9]]), eos_ids=(2,), pad_id=0)
    assert m.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]


# -- quality -------------------------------------------------------------------------------------
class _StubNLI:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str]]] = []

    def __call__(self, premises, hypotheses):
        self.calls.append((list(premises), list(hypotheses)))
        return [0.25 + 0.5 * (h == p) for p, h in zip(premises, hypotheses)]


def _quality(nli=None):
    from vpbench.train.rewards import QualityScorer, resolve_parser

    return QualityScorer(resolve_parser("motionbench"), resolve_parser("vsibench:lmms_eval"), nli)


def test_quality_per_answer_type() -> None:
    nli = _StubNLI()
    q = _quality(nli)
    prompt = "Which way?\nA. left\nB. right\nAnswer with the option's letter from the given choices directly."
    rows = [(prompt, "B", "B", "choice"), (prompt, "(B) right", "B", "choice"),
            (prompt, "The answer is B", "B", "choice"),  # MotionBench's official parser reads "T"
            ("How many?", "There are 3 bounces", "3", "number"), ("How many?", "three", "3", "number"),
            ("How many?", "3.0", "3", "number"), ("How many?", "4", "3", "number"), ("How many?", "many", "3", "number"),
            ("Does it stop?", "Yes.", "yes", "open"), ("Does it stop?", "no, it does not", "Yes", "open"),
            ("Describe.", "a ball falls", "a ball falls", "open"), ("Describe.", "nothing", "a ball falls", "open")]
    got = q([r[0] for r in rows], [r[1] for r in rows], answer=[r[2] for r in rows], answer_type=[r[3] for r in rows])
    assert got == [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.75, 0.25]
    # one NLI call for the open rows, premise = reference, hypothesis = response
    assert nli.calls == [(["a ball falls", "a ball falls"], ["a ball falls", "nothing"])]
    with pytest.raises(ConfigError, match="nli_model"):
        _quality(None)(["Describe."], ["x"], answer=["y"], answer_type=["open"])


def test_format_reward_and_weighted_sum() -> None:
    from vpbench.train.rewards import FormatReward, weighted_rewards

    q = _quality(_StubNLI())
    fmt = FormatReward(q, min_chars=1, max_chars=10)
    p = ["Q?\nA. x\nB. y"] * 4
    got = fmt(p, ["B", "", "B" * 11, "hello"], answer=["B", "B", "B", "z"], answer_type=["choice", "choice", "choice",
                                                                                           "open"])
    assert got == [1.0, 0.0, 0.0, 1.0]  # parseable and 1..10 chars; empty; too long (11 chars); open non-empty

    def none_for_open(prompts, completions, answer_type, **_):
        return [None if t == "open" else 2.0 for t in answer_type]

    def always_none(prompts, completions, **_):
        return [None] * len(completions)

    w = weighted_rewards([none_for_open, fmt], [1.0, 0.5], p[:2], ["B", "hello"], answer=["B", "z"],
                         answer_type=["choice", "open"])
    assert w == [2.0 + 0.5 * 1.0, 0.5 * 1.0]
    assert math.isnan(weighted_rewards([always_none], [1.0], ["x"], ["y"])[0])


# -- NLI -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", [("entailment", "neutral", "contradiction"), ("contradiction", "entailment", "neutral"),
                                   ("CONTRADICTION", "NEUTRAL", "ENTAILMENT")])
def test_entailment_index_read_from_label2id(order) -> None:
    from vpbench.train.nli import entailment_index

    assert entailment_index({name: i for i, name in enumerate(order)}) == [o.lower() for o in order].index("entailment")


def test_entailment_index_missing_is_an_error() -> None:
    from vpbench.train.nli import entailment_index

    with pytest.raises(ConfigError, match="no 'entailment' label"):
        entailment_index({"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2})


def test_nli_scorer_uses_the_entailment_column(tmp_path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from vpbench.train.nli import NLIScorer, build_tiny_nli

    orders = [("entailment", "neutral", "contradiction"), ("contradiction", "entailment", "neutral"),
              ("contradiction", "neutral", "entailment")]
    prem, hyp = ["the man waves his hand", "a car stops"], ["the man waves", "the door opens"]
    dirs = [build_tiny_nli(tmp_path / f"nli{k}", labels=o, seed=0) for k, o in enumerate(orders)]
    # same seed: same weights, only the label names differ; the hand softmax of the raw logits
    tok = AutoTokenizer.from_pretrained(dirs[0])
    model = AutoModelForSequenceClassification.from_pretrained(dirs[0]).eval()
    with torch.no_grad():
        logits = model(**tok(prem, hyp, return_tensors="pt", padding=True)).logits.tolist()
    probs = [[math.exp(x) / sum(math.exp(y) for y in row) for x in row] for row in logits]
    for d, order in zip(dirs, orders):
        col = order.index("entailment")
        got = NLIScorer(d)(prem, hyp)
        assert got == pytest.approx([p[col] for p in probs], abs=1e-6), order
    assert len({round(p[c], 6) for p in probs for c in range(3)}) > 3  # the columns really differ
    with pytest.raises(ConfigError, match="no config.json"):
        NLIScorer(tmp_path / "missing")


# -- rollouts with refeed (stub rollout, stub quality) ------------------------------------------
def _prep(answer_type: str = "choice"):
    from vpbench.train.rl_data import RLExample, RLPrepared, VideoInput

    def clip(v: float) -> VideoInput:
        return VideoInput(frames=np.full((2, 4, 4, 3), v, np.uint8), pixel_values=np.full((4, 8), v, np.float32),
                          grid=np.array([[1, 2, 2]]), second_per_grid_t=1.0, n_video_tokens=1)

    ex = RLExample(id="x", video="v.mp4", prompt="Q?", answer="B", answer_type=answer_type)
    return RLPrepared(example=ex, full=clip(1), degraded=clip(2), shuffled=clip(3), prompt_ids=(10, 11),
                      refeed_prompt_ids=(10, 11, 99), refeed_prompt="Q?\nRe-answer", key_frames=(1,))


class _StubRollout:
    """Completions encode (clip, prompt kind): token 1 = full clip, 2 = degraded; 7 = refeed prompt."""

    def __init__(self, full_by_attempt: list[list[str]], degraded: list[str]) -> None:
        self.full, self.degraded, self.calls = full_by_attempt, degraded, []

    def sync(self, model) -> None:  # pragma: no cover - interface
        pass

    def generate(self, prompt_ids, video, n, seed):
        kind = "degraded" if int(video.pixel_values[0, 0]) == 2 else "full"
        self.calls.append((kind, tuple(prompt_ids), seed))
        if kind == "degraded":
            texts = self.degraded
        else:
            texts = self.full[sum(1 for c in self.calls if c[0] == "full") - 1]
        return [[ord(ch) for ch in t] for t in texts[:n]]


def _exact(prompts, completions, answer, **_):
    return [float(c == a) for c, a in zip(completions, answer)]


def _grpo(**over):
    from vpbench.train.grpo_config import GRPOSection

    return GRPOSection(**{"num_generations": 4, "max_refeed": 2, **over})


def _collect(rollout, **over):
    from vpbench.train.grpo_step import collect_group

    decode = lambda ids: "".join(chr(i) for i in ids)  # noqa: E731
    return collect_group(_prep(), 0, 3, rollout, decode, _exact, None, _grpo(**over), 0.0, seed=0)


def test_positive_gap_needs_no_refeed() -> None:
    r = _StubRollout([["B", "B", "A", "A"]], degraded=["A", "A", "A", "B"])
    g = _collect(r)
    assert (g.refeeds, g.trainable, g.prompt_ids) == (0, True, (10, 11))
    assert g.q_full == [1, 1, 0, 0] and g.q_ref == [0, 0, 0, 1] and g.r_c == [1, 1, 0, -1]  # mean 0.25 > 0
    assert [c[0] for c in r.calls] == ["degraded", "full"]


def test_refeed_changes_the_trained_prompt() -> None:
    from vpbench.train.grpo_step import token_batch

    r = _StubRollout([["A", "A", "A", "B"], ["B", "B", "B", "A"]], degraded=["B", "A", "A", "A"])
    g = _collect(r)
    # attempt 0: r_c = (0,0,0,1) - (1,0,0,0) -> mean 0 <= 0: resample under the refeed prompt, which succeeds
    assert (g.refeeds, g.trainable) == (1, True)
    assert g.prompt_ids == (10, 11, 99) and g.prompt_text == "Q?\nRe-answer"
    assert g.texts == ["B", "B", "B", "A"] and g.r_c == [0.0, 1.0, 1.0, 0.0]  # (1,1,1,0) - (1,0,0,0)
    assert [c[1] for c in r.calls] == [(10, 11), (10, 11), (10, 11, 99)]
    assert len({c[2] for c in r.calls}) == 3  # each rollout its own seed
    b = token_batch(g, torch.zeros(4), pad_id=0, device="cpu", dtype=torch.float32)
    assert b.input_ids[:, :3].tolist() == [[10, 11, 99]] * 4 and b.prompt_len == 3
    assert b.targets[:, 0].tolist() == [ord("B")] * 3 + [ord("A")]
    assert torch.equal(b.pixel_values, torch.full((16, 8), 1.0))  # the FULL clip, 4 copies, never the degraded one


def test_retries_exhausted_gives_no_policy_gradient() -> None:
    r = _StubRollout([["A"] * 4, ["A"] * 4, ["C"] * 4], degraded=["B", "A", "A", "A"])
    g = _collect(r)
    assert (g.refeeds, g.trainable) == (2, False)  # max_refeed = 2 resamples, gap still <= 0
    assert [c[0] for c in r.calls] == ["degraded", "full", "full", "full"]
    assert g.prompt_ids == (10, 11, 99) and g.texts == ["C"] * 4  # the last group is the one kept
    # all-equal rewards in the group: zero base advantage too
    assert group_advantages(torch.tensor([g.rewards])).abs().sum().item() == 0.0
    g0 = _collect(_StubRollout([["A"] * 4], degraded=["B", "A", "A", "A"]), refeed=False)
    assert (g0.refeeds, g0.trainable, g0.prompt_ids) == (0, True, (10, 11))  # standard GRPO trains every prompt
