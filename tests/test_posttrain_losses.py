"""Every post-training loss against a value computed by hand (math module, no torch) on fixed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from dataengine.trainer.post.losses import (aggregate, attribute_regression_loss, bernoulli_kl, bradley_terry_loss,
                                            group_advantages, grpo_token_loss, kl_k3, preference_loss)


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# one pair: policy and reference log-probs of the chosen and rejected replies (3 and 4 tokens)
PI_C, PI_R, REF_C, REF_R, N_C, N_R = -4.0, -6.0, -5.0, -5.5, 3.0, 4.0
BETA = 0.5
H = (PI_C - REF_C) - (PI_R - REF_R)  # 1.5
R_C, R_R, ETA = 2.0, 0.5, 0.8


def t(x: float) -> torch.Tensor:
    return torch.tensor([x], dtype=torch.float64)


def loss_of(kind: str, **kw) -> float:
    loss, _ = preference_loss(kind, t(PI_C), t(PI_R), t(REF_C), t(REF_R), t(N_C), t(N_R), BETA,
                              reward_c=t(R_C), reward_r=t(R_R), reward_scale=ETA, simpo_gamma=0.3, **kw)
    return float(loss)


def test_dpo_and_conservative_dpo():
    assert loss_of("dpo") == pytest.approx(-math.log(sig(BETA * H)), rel=1e-12)
    e = 0.1
    want = -(1 - e) * math.log(sig(BETA * H)) - e * math.log(sig(-BETA * H))
    assert loss_of("dpo", label_smoothing=e) == pytest.approx(want, rel=1e-12)


def test_ipo_uses_per_token_log_ratios():
    h_avg = (PI_C - REF_C) / N_C - (PI_R - REF_R) / N_R
    assert loss_of("ipo") == pytest.approx((h_avg - 1 / (2 * BETA)) ** 2, rel=1e-12)


def test_simpo_is_reference_free_and_length_normalised():
    want = -math.log(sig(BETA * (PI_C / N_C - PI_R / N_R) - 0.3))
    got, _ = preference_loss("simpo", t(PI_C), t(PI_R), None, None, t(N_C), t(N_R), BETA, simpo_gamma=0.3)
    assert float(got) == pytest.approx(want, rel=1e-12)


def test_rpo_losses_pull_the_implicit_reward_gap_to_the_explicit_one():
    a, b = BETA * H, ETA * (R_C - R_R)  # 0.75 and 1.2
    assert loss_of("rpo_sq") == pytest.approx((a - b) ** 2, rel=1e-12)
    p, q = sig(a), sig(b)
    backward = p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))  # KL(model || target)
    forward = q * math.log(q / p) + (1 - q) * math.log((1 - q) / (1 - p))  # KL(target || model)
    assert loss_of("rpo_bwd_kl") == pytest.approx(backward, rel=1e-10)
    assert loss_of("rpo_fwd_kl") == pytest.approx(forward, rel=1e-10)
    assert backward != pytest.approx(forward)  # the two directions differ here
    assert float(bernoulli_kl(t(0.3), t(0.3))) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="chosen_reward"):
        preference_loss("rpo_sq", t(PI_C), t(PI_R), t(REF_C), t(REF_R), t(N_C), t(N_R), BETA)


def test_reward_model_losses():
    assert float(bradley_terry_loss(t(1.0), t(-0.5))) == pytest.approx(-math.log(sig(1.5)), rel=1e-12)
    assert float(bradley_terry_loss(t(1.0), t(-0.5), margin=0.5, strength=t(3.0))) == pytest.approx(
        -3 * math.log(sig(1.0)), rel=1e-12)
    pred = torch.tensor([[1.0, 2.0], [3.0, 0.0]], dtype=torch.float64)
    target = torch.tensor([[2.0, 2.0], [1.0, 9.0]], dtype=torch.float64)
    known = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)  # the 9 is unknown: ignored
    assert float(attribute_regression_loss(pred, target, known)) == pytest.approx((1 + 0 + 4) / 3, rel=1e-12)


def test_grpo_token_loss_clips_asymmetrically_and_adds_the_k3_kl():
    logp = torch.tensor([[math.log(1.5), math.log(0.5), 0.0]], dtype=torch.float64)
    old = torch.zeros_like(logp)
    ref = torch.tensor([[0.0, 0.0, math.log(2.0)]], dtype=torch.float64)
    adv = torch.tensor([1.0], dtype=torch.float64)
    per_token, parts = grpo_token_loss(logp, old, ref, adv, eps_low=0.2, eps_high=0.4, kl_coef=0.1)
    # ratios 1.5, 0.5, 1.0 with A = +1: min(1.5, clip to 1.4) = 1.4; min(0.5, 0.8) = 0.5; 1.0
    k3 = [math.exp(0 - math.log(1.5)) - (0 - math.log(1.5)) - 1, math.exp(0 - math.log(0.5)) - (0 - math.log(0.5)) - 1,
          math.exp(math.log(2.0)) - math.log(2.0) - 1]
    want = [-1.4 + 0.1 * k3[0], -0.5 + 0.1 * k3[1], -1.0 + 0.1 * k3[2]]
    assert per_token[0].tolist() == pytest.approx(want, rel=1e-12)
    assert parts["clipped"][0].tolist() == [1.0, 0.0, 0.0]
    # a negative advantage clips the low side: ratio 0.5 -> 0.8
    per_token, _ = grpo_token_loss(logp, old, None, -adv, 0.2, 0.4, 0.0)
    assert per_token[0].tolist() == pytest.approx([1.5, 0.8, 1.0], rel=1e-12)
    assert float(kl_k3(t(0.2), t(0.2))) == 0.0


def test_token_level_averaging_weighs_every_token_once():
    loss = torch.tensor([[1.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    assert float(aggregate(loss, mask, "token")) == pytest.approx(8 / 5)  # 4 + 4 over 5 tokens
    assert float(aggregate(loss, mask, "sequence")) == pytest.approx((1 + 4) / 2)  # per completion first
    assert float(aggregate(loss, mask, "token", total_tokens=10)) == pytest.approx(0.8)


def test_group_advantages_are_normalised_per_group():
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0]), 4)
    std = math.sqrt(((0.75**2) + 3 * (0.25**2)) / 3)  # unbiased, as torch.std
    assert adv[:4].tolist() == pytest.approx([0.75 / std, -0.25 / std, -0.25 / std, -0.25 / std], rel=1e-5)
    assert adv[4:].tolist() == [0.0, 0.0, 0.0, 0.0]  # equal rewards: no signal (dynamic sampling drops these)
