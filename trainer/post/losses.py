"""The post-training objectives as pure functions of tensors (each checked by hand in the tests).

Notation: ``pi_c``/``pi_r`` are the policy's summed log-probabilities of the chosen / rejected
reply tokens, ``ref_c``/``ref_r`` the frozen reference's, ``n_c``/``n_r`` the reply lengths,
``h = (pi_c - ref_c) - (pi_r - ref_r)`` the log-ratio margin.

Preference losses (``preference_loss``):

- ``dpo`` (Rafailov et al. 2023): ``-log sigmoid(beta h)``; with label smoothing ``e``
  (conservative DPO): ``-(1-e) log sigmoid(beta h) - e log sigmoid(-beta h)``.
- ``ipo`` (Azar et al. 2023): ``(h_avg - 1/(2 beta))^2`` with per-token averaged log-ratios
  (TRL's convention, confirmed with the IPO authors).
- ``simpo`` (Meng et al. 2024): reference-free, ``-log sigmoid(beta (pi_c/n_c - pi_r/n_r) - gamma)``.
- RPO, Reward-aware Preference Optimization (Nemotron-4 340B report; NeMo-Aligner): the
  implicit reward gap ``a = beta h`` is pulled towards the explicit one
  ``b = eta (r*_c - r*_r)`` of a reward model:
  ``rpo_sq``: ``(a - b)^2``; ``rpo_bwd_kl``: KL(Bernoulli(sigmoid(a)) || Bernoulli(sigmoid(b)));
  ``rpo_fwd_kl``: KL(Bernoulli(sigmoid(b)) || Bernoulli(sigmoid(a))).

Reward-model losses: Bradley-Terry ``-log sigmoid(r_c - r_r - margin)``, scaled by the
preference strength for ``scaled_bt`` (HelpSteer2-Preference), and mean squared error on
attribute scores for regression (SteerLM / HelpSteer2).

GRPO (Shao et al. 2024) with ProRL's changes (Liu et al. 2025): per token
``-min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A) + kl_coef * KL`` with
``rho = exp(logp - logp_old)``, decoupled clip bounds (DAPO), the k3 estimator
``KL = exp(ref - logp) - (ref - logp) - 1``, and token-level averaging (every completion token
of the batch counts once, so long completions are not down-weighted).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PREFERENCE_LOSSES = ("dpo", "ipo", "simpo", "rpo_sq", "rpo_bwd_kl", "rpo_fwd_kl")


def bernoulli_kl(logit_p: torch.Tensor, logit_q: torch.Tensor) -> torch.Tensor:
    """KL(Bernoulli(sigmoid(logit_p)) || Bernoulli(sigmoid(logit_q))), stable in log space."""
    log_p, log_not_p = F.logsigmoid(logit_p), F.logsigmoid(-logit_p)
    log_q, log_not_q = F.logsigmoid(logit_q), F.logsigmoid(-logit_q)
    return log_p.exp() * (log_p - log_q) + log_not_p.exp() * (log_not_p - log_not_q)


def preference_loss(
    kind: str,
    pi_c: torch.Tensor, pi_r: torch.Tensor,
    ref_c: torch.Tensor | None, ref_r: torch.Tensor | None,
    n_c: torch.Tensor, n_r: torch.Tensor,
    beta: float,
    reward_c: torch.Tensor | None = None, reward_r: torch.Tensor | None = None,
    reward_scale: float = 1.0, simpo_gamma: float = 0.5, label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-pair loss, per-pair implicit reward margin) for one of :data:`PREFERENCE_LOSSES`."""
    if kind == "simpo":
        margin = beta * (pi_c / n_c - pi_r / n_r)
        return -F.logsigmoid(margin - simpo_gamma), margin
    if ref_c is None or ref_r is None:
        raise ValueError(f"{kind} needs the reference model's log-probabilities")
    h = (pi_c - ref_c) - (pi_r - ref_r)
    if kind == "dpo":
        loss = -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
        return loss, beta * h
    if kind == "ipo":
        h_avg = (pi_c - ref_c) / n_c - (pi_r - ref_r) / n_r
        return (h_avg - 1 / (2 * beta)) ** 2, beta * h
    if kind.startswith("rpo"):
        if reward_c is None or reward_r is None:
            raise ValueError(f"{kind} needs chosen_reward and rejected_reward on every row")
        a, b = beta * h, reward_scale * (reward_c - reward_r)
        if kind == "rpo_sq":
            return (a - b) ** 2, a
        if kind == "rpo_bwd_kl":
            return bernoulli_kl(a, b), a
        if kind == "rpo_fwd_kl":
            return bernoulli_kl(b, a), a
    raise ValueError(f"unknown preference loss {kind!r}: use one of {', '.join(PREFERENCE_LOSSES)}")


def bradley_terry_loss(r_c: torch.Tensor, r_r: torch.Tensor, margin: float = 0.0,
                       strength: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pair ``-strength * log sigmoid(r_c - r_r - margin)`` (strength 1 when None)."""
    loss = -F.logsigmoid(r_c - r_r - margin)
    return loss if strength is None else strength * loss


def attribute_regression_loss(pred: torch.Tensor, target: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the attribute scores that are present (``known`` is a 0/1 mask)."""
    return ((pred - target) ** 2 * known).sum() / known.sum().clamp(min=1)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || reference): non-negative, unbiased (Schulman 2020)."""
    diff = ref_logp - logp
    return diff.exp() - diff - 1


def grpo_token_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None, advantages: torch.Tensor,
    eps_low: float, eps_high: float, kl_coef: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token loss (B, T) with decoupled clipping and the KL penalty, and its parts.

    ``advantages`` is (B,) (one per completion); tokens are weighted by the caller's mask."""
    ratio = (logp - old_logp).exp()
    adv = advantages.unsqueeze(-1)
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - eps_low, 1 + eps_high) * adv
    pg = -torch.minimum(unclipped, clipped)
    kl = kl_k3(logp, ref_logp) if ref_logp is not None else torch.zeros_like(logp)
    parts = {"pg": pg, "kl": kl, "clipped": (clipped < unclipped).float(), "abs_pg": unclipped.abs()}
    return pg + kl_coef * kl, parts


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, how: str, total_tokens: float | None = None) -> torch.Tensor:
    """Token-level (sum over every completion token / their count: ProRL, DAPO) or sequence-level
    (mean per completion, then over completions: the original GRPO) average of a (B, T) loss.

    ``total_tokens``: the token count of the whole optimizer step when this is one micro-batch of it."""
    if how == "token":
        return (per_token * mask).sum() / (total_tokens if total_tokens else mask.sum().clamp(min=1))
    per_seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_seq.mean()


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """GRPO's advantage: each reward minus its group's mean, over the group's standard deviation."""
    grouped = rewards.view(-1, group_size)
    mean, std = grouped.mean(-1, keepdim=True), grouped.std(-1, keepdim=True)
    return ((grouped - mean) / (std + eps)).view(-1)
