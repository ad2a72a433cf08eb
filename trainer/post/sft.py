"""Supervised fine-tuning on chat rows: the chat template, loss on assistant tokens only, packing.

Each step packs the next conversations of the run's stream into ``micro_batch_size x
grad_accum`` rows of ``model.seq_len`` tokens (trainer/post/packing.py); the loss is the mean
cross-entropy over every assistant target token of the step (so a long reply counts by its
tokens, wherever it was packed). Conversations longer than ``seq_len`` are cut there (counted
as ``truncated``); one with no assistant token left is skipped (counted).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from dataengine.trainer.post.base import PostContext, PostStage
from dataengine.trainer.post.chat import ChatTemplateError, encode_chat, ensure_chat_template
from dataengine.trainer.post.models import load_causal_lm, load_tokenizer, save_model_folder
from dataengine.trainer.post.packing import IGNORE, Example, collate, pack_all, pack_step


class ChatExamples:
    """The run's conversations, tokenized once each (cached by component and id)."""

    def __init__(self, ctx: PostContext, tokenizer, total_hint: int):
        self.ctx, self.tokenizer = ctx, tokenizer
        self.order = ctx.rows.order(ctx.seed, total_hint)
        self.cfg = ctx.cfg
        self._cache: dict[tuple[str, str], Example | None] = {}
        self.stream: list[Example] = []  # the stream, usable examples only
        self._next = 0  # next index of the order to read

    def encode(self, row: dict, component: str = "") -> Example | None:
        key = (component, row["id"])
        if key not in self._cache:
            try:
                enc = encode_chat(self.tokenizer, row["messages"], self.cfg.model.seq_len,
                                  self.cfg.sft.assistant_only_loss)
            except ChatTemplateError:
                raise
            except Exception:  # noqa: BLE001 - a template error on one row: skip and count it
                self.ctx.count("template_error")
                self._cache[key] = None
                return None
            if enc.truncated:
                self.ctx.count("truncated")
            example = Example(enc.input_ids, enc.loss_mask)
            if example.targets() == 0:
                self.ctx.count("no_target_tokens")
                example = None
            self._cache[key] = example
        return self._cache[key]

    def extend(self, upto: int) -> None:
        """Make ``stream[upto - 1]`` exist."""
        misses = 0
        while len(self.stream) < upto:
            i = self._next
            self._next += 1
            example = self.encode(self.order[i], self.order.component_name(i))
            if example is None:
                misses += 1
                if misses > 10_000 and not self.stream:
                    raise ChatTemplateError("no usable conversation in the blend version (every row was skipped)")
                continue
            self.stream.append(example)


class SftStage(PostStage):
    name = "sft"

    def __init__(self, ctx: PostContext):
        super().__init__(ctx)
        cfg = ctx.cfg
        self.tokenizer = load_tokenizer(ctx.init)
        self.template = ensure_chat_template(self.tokenizer, cfg.chat_template)
        self.model = load_causal_lm(ctx.init).to(ctx.device)
        self.rows_per_step = cfg.data.micro_batch_size * cfg.data.grad_accum
        self.pad_id = self.tokenizer.pad_token_id
        hint = cfg.steps * self.rows_per_step * (4 if cfg.sft.packing else 1)
        self.examples = ChatExamples(ctx, self.tokenizer, hint)
        self._plan: list[tuple[int, list[list[int]]]] = []  # per step: (first stream index, rows)
        self._plan_end = 0  # the stream index after the last planned step
        self._val: list[Example] | None = None

    # -- the data plan -------------------------------------------------------------------
    def step_rows(self, step: int) -> list[list[Example]]:
        """The packed rows of ``step`` (planning every step before it first, once)."""
        cfg = self.ctx.cfg
        while len(self._plan) <= step:
            rows, end = pack_step(_Lengths(self), self._plan_end, self.rows_per_step, cfg.model.seq_len,
                                  cfg.sft.packing)
            self._plan.append((self._plan_end, rows))
            self._plan_end = end
        self.examples.extend(self._plan_end)
        stream = self.examples.stream
        return [[stream[i] for i in row] for row in self._plan[step][1]]

    def prepare(self, start_step: int) -> None:
        for s in range(start_step):  # replay the plan up to a resumed step (tokenizing what it needs)
            self.step_rows(s)

    # -- training ----------------------------------------------------------------------------
    def loss_sum(self, rows: list[list[Example]]) -> tuple[torch.Tensor, int, int]:
        """(summed cross-entropy over the rows' targets, targets, tokens)."""
        batch = {k: v.to(self.ctx.device) for k, v in collate(rows, self.pad_id).items()}
        with self.ctx.autocast():
            logits = self.model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                                use_cache=False).logits
        labels = batch["labels"]
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), labels.reshape(-1),
                               ignore_index=IGNORE, reduction="sum")
        return loss, int((labels != IGNORE).sum()), sum(len(e) for row in rows for e in row)

    def train_step(self, step: int, update) -> dict:
        rows = self.step_rows(step)
        targets = sum(e.targets() for row in rows for e in row)
        mb = self.ctx.cfg.data.micro_batch_size
        total, tokens = 0.0, 0
        for m in range(0, len(rows), mb):
            loss, _, n_tokens = self.loss_sum(rows[m : m + mb])
            (loss / max(targets, 1)).backward()
            total += float(loss.detach())
            tokens += n_tokens
        grad_norm = update()
        return {"loss": total / max(targets, 1), "grad_norm": grad_norm, "tokens": tokens, "target_tokens": targets,
                "examples": sum(len(r) for r in rows), "rows": len(rows)}

    @torch.no_grad()
    def evaluate(self) -> dict:
        if self._val is None:  # the held-out conversations, tokenized once
            held = self.ctx.rows.val_rows(self.ctx.cfg.data.val_samples)
            self._val = [e for e in (self.examples.encode(r, "held-out") for r in held) if e is not None]
        examples = self._val
        if not examples:
            return {}
        self.model.eval()
        cfg = self.ctx.cfg
        rows = pack_all([len(e) for e in examples], cfg.model.seq_len, cfg.sft.packing)
        total, targets = 0.0, 0
        for m in range(0, len(rows), cfg.data.micro_batch_size):
            loss, n, _ = self.loss_sum([[examples[i] for i in row] for row in rows[m : m + cfg.data.micro_batch_size]])
            total, targets = total + float(loss), targets + n
        return {"val_loss": total / max(targets, 1), "val_examples": len(examples)}

    def export(self, folder: Path) -> Path:
        return save_model_folder(folder, self.model, self.tokenizer, {"stage": "sft", "init_model": self.ctx.init.spec})

    def summary(self, metrics: list[dict]) -> dict:
        steps = [m for m in metrics if "loss" in m]
        return {"first_loss": steps[0]["loss"] if steps else None, "chat_template": self.template}


class _Lengths:
    """``lengths[i]`` of the stream, tokenizing on demand (pack_step reads as far as it needs)."""

    def __init__(self, stage: SftStage):
        self.stage = stage

    def __getitem__(self, i: int) -> int:
        self.stage.examples.extend(i + 1)
        return len(self.stage.examples.stream[i])
