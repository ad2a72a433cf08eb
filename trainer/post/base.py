"""What every post-training stage shares: its context, and the interface the loop drives.

A stage owns its model(s) and data; the loop (trainer/post/loop.py) owns everything else:
runtime settings, optimizer and schedule, checkpoints and resume, metrics, progress, the
report and the summary. One loop step is one call of :meth:`PostStage.train_step`, which
does its forward and backward passes and calls ``update()`` (clip, optimizer and scheduler
step) once, or several times for GRPO's updates per rollout batch.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from dataengine.trainer.post.config import PostTrainConfig
from dataengine.trainer.post.data import BlendRows
from dataengine.trainer.post.models import InitModel


@dataclass
class PostContext:
    cfg: PostTrainConfig
    rows: BlendRows
    init: InitModel
    device: torch.device
    output: Path
    bf16: bool = False
    #: (completions, answers, kinds) -> (rewards, statuses): the reward stage's scorer (GRPO)
    scorer: Callable | None = None
    seed: int = 0
    counters: dict = field(default_factory=dict)

    def autocast(self):
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n


class PostStage:
    """Base class; subclasses set ``name`` and implement the methods below."""

    name: str = ""
    #: optimizer updates per loop step (GRPO: updates per rollout batch)
    updates_per_step: int = 1

    def __init__(self, ctx: PostContext):
        self.ctx = ctx
        self.model: torch.nn.Module
        self.tokenizer = None

    def prepare(self, start_step: int) -> None:
        """Build what the data plan needs before ``start_step`` (called once, after any resume)."""

    def train_step(self, step: int, update: Callable[[], float]) -> dict:
        """Forward, backward and ``update()``; returns the step's metrics ("loss", "tokens", ...)."""
        raise NotImplementedError

    def evaluate(self) -> dict:
        """Held-out metrics, keys prefixed ``val_``."""
        return {}

    def after_update(self, step: int, record: dict, optimizers: list) -> list[dict]:
        """Events to log after a step (GRPO's reference resets)."""
        return []

    def state_dict(self) -> dict:
        """State the checkpoint must restore besides the model and optimizer."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def export(self, folder: Path) -> Path:
        """Write the trained model as a Hugging Face folder."""
        raise NotImplementedError

    def summary(self, metrics: list[dict]) -> dict:
        """Stage-specific summary fields (final accuracy, reward, resets, ...)."""
        return {}
