"""Preference pairs as token batches, shared by reward models and DPO/RPO.

A pair is the prompt with the chosen reply and the prompt with the rejected reply, each
rendered with the chat template (trainer/post/chat.py); the reply mask covers the reply and
its end-of-turn marker. Sequences longer than ``model.seq_len`` are cut there (counted as
``truncated``); a pair whose reply is cut away entirely is skipped (counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dataengine.trainer.post.base import PostContext
from dataengine.trainer.post.chat import ChatTemplateError, encode_reply


@dataclass
class Pair:
    chosen: list[int]
    chosen_mask: list[bool]
    rejected: list[int]
    rejected_mask: list[bool]
    row: dict


class PairStream:
    """The run's pairs: ``pairs(step)`` are that step's ``micro_batch x grad_accum`` pairs."""

    def __init__(self, ctx: PostContext, tokenizer):
        self.ctx, self.tokenizer = ctx, tokenizer
        cfg = ctx.cfg
        self.per_step = cfg.data.micro_batch_size * cfg.data.grad_accum
        self.order = ctx.rows.order(ctx.seed, cfg.steps * self.per_step * 2)
        self._cache: dict[tuple[str, str], Pair | None] = {}
        self.stream: list[Pair] = []
        self._next = 0

    def encode(self, row: dict, key: tuple[str, str]) -> Pair | None:
        if key not in self._cache:
            seq_len = self.ctx.cfg.model.seq_len
            try:
                c = encode_reply(self.tokenizer, row["prompt"], row["chosen"], seq_len)
                r = encode_reply(self.tokenizer, row["prompt"], row["rejected"], seq_len)
            except ChatTemplateError:
                raise
            except Exception:  # noqa: BLE001 - one row the template cannot render: skip, count
                self.ctx.count("template_error")
                self._cache[key] = None
                return None
            if c.truncated or r.truncated:
                self.ctx.count("truncated")
            if not any(c.loss_mask) or not any(r.loss_mask):
                self.ctx.count("reply_cut_off")
                self._cache[key] = None
            else:
                self._cache[key] = Pair(c.input_ids, c.loss_mask, r.input_ids, r.loss_mask, row)
        return self._cache[key]

    def _extend(self, upto: int) -> None:
        misses = 0
        while len(self.stream) < upto:
            i = self._next
            self._next += 1
            pair = self.encode(self.order[i], (self.order.component_name(i), self.order[i]["id"]))
            if pair is None:
                misses += 1
                if misses > 10_000 and not self.stream:
                    raise ChatTemplateError("no usable preference pair in the blend version")
                continue
            self.stream.append(pair)

    def pairs(self, step: int) -> list[Pair]:
        self._extend((step + 1) * self.per_step)
        return self.stream[step * self.per_step : (step + 1) * self.per_step]

    def held_out(self, limit: int) -> list[Pair]:
        rows = self.ctx.rows.val_rows(limit)
        return [p for p in (self.encode(r, ("held-out", r["id"])) for r in rows) if p is not None]


def right_pad(seqs: list[list[int]], masks: list[list[bool]], pad_id: int) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask and reply mask (B, L), padded on the right."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    reply = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, (s, m) in enumerate(zip(seqs, masks)):
        ids[i, : len(s)] = torch.tensor(s)
        attn[i, : len(s)] = 1
        reply[i, : len(m)] = torch.tensor(m)
    return {"input_ids": ids, "attention_mask": attn, "reply_mask": reply}


def pair_batch(pairs: list[Pair], pad_id: int) -> dict[str, torch.Tensor]:
    """Chosen sequences first, then rejected: rows [0, n) and [n, 2n)."""
    return right_pad([p.chosen for p in pairs] + [p.rejected for p in pairs],
                     [p.chosen_mask for p in pairs] + [p.rejected_mask for p in pairs], pad_id)
