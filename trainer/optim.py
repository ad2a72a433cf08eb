"""Optimizers and learning-rate schedules.

Muon orthogonalises updates of 2-D weight matrices, which only makes sense for the hidden
layers' matrices: embeddings, the output head, norms and biases go to AdamW, as the Muon
write-ups (Jordan et al. 2024; Liu et al. 2025, "Muon is scalable") recommend. Weight decay
applies to weight matrices only, never to norms, biases or embeddings. Per-parameter factors
from the parametrization (trainer/parametrization.py) scale each group's learning rate, weight
decay and Adam epsilon; parameters with equal settings share one group.
"""

from __future__ import annotations

import math

import torch

from dataengine.trainer.config import ModelConfig, OptimizerConfig, ScheduleConfig
from dataengine.trainer.muon import GroupedMuon
from dataengine.trainer.parametrization import Multipliers, parameter_multipliers


def _is_hidden_matrix(name: str, param: torch.Tensor, model) -> bool:
    """A 2-D weight inside a transformer block (not the embedding or the output head)."""
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    return param.ndim == 2 and ".layers." in f".{name}" and param is not embed and param is not head


def optimizer_of(model, cfg: OptimizerConfig) -> dict[str, str]:
    """"muon" or "adamw" per parameter name (each shared parameter once)."""
    out, seen = {}, set()
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        out[name] = "muon" if cfg.name == "muon" and _is_hidden_matrix(name, p, model) else "adamw"
    return out


def parametrization_multipliers(model, model_cfg: ModelConfig, cfg: OptimizerConfig) -> dict[str, Multipliers]:
    """Per-parameter factors of ``model_cfg.parametrization`` for the optimizer that updates each one."""
    return parameter_multipliers(model, model_cfg.parametrization, model_cfg.base_hidden, model_cfg.base_layers,
                                 optimizer_of(model, cfg), cfg.muon_adjust_lr)


def parameter_groups(model, cfg: OptimizerConfig,
                     multipliers: dict[str, Multipliers] | None = None) -> dict[str, list[dict]]:
    """{"muon": [...], "adamw": [...]} param groups; "muon" is empty unless cfg.name == "muon".

    Groups are ordered by first appearance in the model, so the layout (and checkpoints) are
    the same in every process."""
    embed = model.get_input_embeddings().weight
    which = optimizer_of(model, cfg)
    groups: dict[str, dict[tuple, dict]] = {"muon": {}, "adamw": {}}
    for name, p in model.named_parameters():
        if name not in which or not p.requires_grad:  # tied weights appear once
            continue
        m = (multipliers or {}).get(name, Multipliers())
        kind = which[name]
        decays = p.ndim >= 2 and p is not embed
        lr = (cfg.muon_lr if kind == "muon" else cfg.lr) * m.lr
        wd = cfg.weight_decay * m.weight_decay if decays else 0.0
        key = (lr, wd) if kind == "muon" else (lr, wd, cfg.eps * m.eps)
        group = groups[kind].setdefault(key, {"params": [], "lr": lr, "weight_decay": wd})
        if kind == "adamw":
            group["eps"] = key[2]
        group["params"].append(p)
    return {kind: list(by_key.values()) for kind, by_key in groups.items()}


def build_optimizers(model, cfg: OptimizerConfig, fused: bool = False,
                     multipliers: dict[str, Multipliers] | None = None) -> list[torch.optim.Optimizer]:
    """AdamW alone, or [Muon, AdamW]; the list order is fixed (checkpoints rely on it).

    ``fused``: one fused AdamW kernel for all parameters (CPU and CUDA; not for FSDP's DTensors,
    which get the foreach implementation). Muon is :class:`GroupedMuon` (batched Newton-Schulz)."""
    groups = parameter_groups(model, cfg, multipliers)
    optimizers: list[torch.optim.Optimizer] = []
    if groups["muon"]:
        optimizers.append(GroupedMuon(groups["muon"], lr=cfg.muon_lr, momentum=cfg.muon_momentum, nesterov=True,
                                      adjust_lr_fn=cfg.muon_adjust_lr, gram=cfg.muon_gram))
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
    """One LambdaLR per optimizer, all following :func:`lr_factor` (each group keeps its own peak)."""
    return [torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total_steps, cfg)) for opt in optimizers]


def clip_and_step(params, grad_clip: float, optimizers, schedulers) -> torch.Tensor:
    """One update: clip the gradients' global norm to ``grad_clip`` (0: no clipping), step every
    optimizer and scheduler, clear the gradients. Returns the norm before clipping (a full
    tensor under FSDP2, where ``clip_grad_norm_`` returns a DTensor)."""
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    for opt in optimizers:
        opt.step()
    for sched in schedulers:
        sched.step()
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    return norm
