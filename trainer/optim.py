"""Optimizers and learning-rate schedules.

Muon (``torch.optim.Muon``) orthogonalises updates of 2-D weight matrices, which only makes
sense for the hidden layers' matrices: embeddings, the output head, norms and biases go to
AdamW, as the Muon write-ups (Jordan et al. 2024; Liu et al. 2025, "Muon is scalable")
recommend. Weight decay applies to weight matrices only, never to norms, biases or
embeddings.
"""

from __future__ import annotations

import math

import torch

from dataengine.trainer.config import OptimizerConfig, ScheduleConfig


def _is_hidden_matrix(name: str, param: torch.Tensor, model) -> bool:
    """A 2-D weight inside a transformer block (not the embedding or the output head)."""
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    return param.ndim == 2 and ".layers." in f".{name}" and param is not embed and param is not head


def parameter_groups(model, cfg: OptimizerConfig) -> dict[str, list[dict]]:
    """{"muon": [...], "adamw": [...]} param groups; "muon" is empty unless cfg.name == "muon"."""
    embed = model.get_input_embeddings().weight
    muon, decay, no_decay = [], [], []
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:  # tied weights appear once
            continue
        seen.add(id(p))
        if cfg.name == "muon" and _is_hidden_matrix(name, p, model):
            muon.append(p)
        elif p.ndim >= 2 and p is not embed:
            decay.append(p)
        else:
            no_decay.append(p)
    groups = {"muon": [], "adamw": []}
    if muon:
        groups["muon"].append({"params": muon, "lr": cfg.muon_lr, "weight_decay": cfg.weight_decay})
    if decay:
        groups["adamw"].append({"params": decay, "lr": cfg.lr, "weight_decay": cfg.weight_decay})
    if no_decay:
        groups["adamw"].append({"params": no_decay, "lr": cfg.lr, "weight_decay": 0.0})
    return groups


def build_optimizers(model, cfg: OptimizerConfig, fused: bool = False) -> list[torch.optim.Optimizer]:
    """AdamW alone, or [Muon, AdamW]; the list order is fixed (checkpoints rely on it).

    ``fused``: one fused AdamW kernel for all parameters (CPU and CUDA; not for FSDP's DTensors)."""
    groups = parameter_groups(model, cfg)
    optimizers: list[torch.optim.Optimizer] = []
    if groups["muon"]:
        optimizers.append(
            torch.optim.Muon(groups["muon"], lr=cfg.muon_lr, momentum=cfg.muon_momentum, nesterov=True,
                             adjust_lr_fn=cfg.muon_adjust_lr)
        )
    kwargs = {"fused": True} if fused else {"foreach": True}
    optimizers.append(torch.optim.AdamW(groups["adamw"], lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, **kwargs))
    return optimizers


def lr_factor(step: int, total_steps: int, cfg: ScheduleConfig) -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based), for every group alike.

    cosine: linear warmup, then cosine decay to ``min_lr_ratio`` at the last step.
    wsd (warmup-stable-decay): linear warmup, constant, then a linear decay to ``min_lr_ratio``
    over the last ``decay_fraction`` of the steps, so a run can be extended from a
    stable-phase checkpoint.
    """
    warmup = min(cfg.warmup_steps, total_steps)
    if warmup and step < warmup:
        return (step + 1) / warmup
    if cfg.kind == "constant":
        return 1.0
    floor = cfg.min_lr_ratio
    if cfg.kind == "cosine":
        span = max(1, total_steps - warmup - 1)
        progress = min(1.0, (step - warmup) / span)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    decay_steps = max(1, round(cfg.decay_fraction * total_steps))
    decay_start = total_steps - decay_steps
    if step < decay_start:
        return 1.0
    progress = min(1.0, (step - decay_start + 1) / decay_steps)
    return 1.0 - (1.0 - floor) * progress


def build_schedulers(optimizers, total_steps: int, cfg: ScheduleConfig) -> list[torch.optim.lr_scheduler.LambdaLR]:
    """One LambdaLR per optimizer, all following :func:`lr_factor`."""
    return [torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total_steps, cfg)) for opt in optimizers]
