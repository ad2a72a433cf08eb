"""Preference optimisation on preference rows: DPO, IPO, SimPO and the RPO family.

The policy starts from ``--init``; a frozen copy is the reference (not loaded for SimPO,
which needs none). Per pair, the summed log-probabilities of the reply tokens under both
models give the losses of :mod:`dataengine.trainer.post.losses` (``dpo.loss``). RPO rows
need ``chosen_reward`` and ``rejected_reward`` (e.g. from a reward model: score the replies
with ``--stage rm``'s output and write them back with SQL); a version whose rows lack them
is refused before training.

Logged per step and on the held-out pairs: the loss, the implicit reward margin
``beta * ((pi_c - ref_c) - (pi_r - ref_r))`` (``margin``), how often it is positive
(``accuracy``), and the policy's mean log-probabilities of chosen and rejected replies.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dataengine.core.errors import DataEngineError
from dataengine.trainer.post.base import PostContext, PostStage
from dataengine.trainer.post.chat import ensure_chat_template
from dataengine.trainer.post.losses import preference_loss
from dataengine.trainer.post.models import frozen_copy, load_causal_lm, load_tokenizer, save_model_folder
from dataengine.trainer.post.pairs import Pair, PairStream, pair_batch


def reply_logps(model, batch: dict, device, autocast) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-prob of each row's reply tokens, reply lengths) for a right-padded batch."""
    from trl.trainer.utils import selective_log_softmax

    ids = batch["input_ids"].to(device)
    attn = batch["attention_mask"].to(device)
    mask = batch["reply_mask"].to(device)[:, 1:]
    with autocast:
        logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits[:, :-1]
    per_token = selective_log_softmax(logits.float(), ids[:, 1:])
    return (per_token * mask).sum(-1), mask.sum(-1).float()


class PreferenceStage(PostStage):
    name = "dpo"

    def __init__(self, ctx: PostContext):
        super().__init__(ctx)
        cfg = ctx.cfg.dpo
        self.tokenizer = load_tokenizer(ctx.init)
        self.template = ensure_chat_template(self.tokenizer, ctx.cfg.chat_template)
        if cfg.loss.startswith("rpo"):
            missing = sum(1 for rows in ctx.rows.rows.values() for r in rows
                          if r.get("chosen_reward") is None or r.get("rejected_reward") is None)
            if missing:
                raise DataEngineError(f"dpo.loss {cfg.loss} uses explicit rewards, but {missing:,} row(s) of "
                                      f"{ctx.rows.manifest['blend']}@{ctx.rows.manifest['version']} lack "
                                      "chosen_reward / rejected_reward")
        self.model = load_causal_lm(ctx.init).to(ctx.device)
        self.reference = None if cfg.loss == "simpo" else frozen_copy(self.model)
        self.pairs = PairStream(ctx, self.tokenizer)
        self._val: list[Pair] | None = None

    def loss(self, pairs: list[Pair]) -> tuple[torch.Tensor, dict]:
        cfg, n, dev = self.ctx.cfg.dpo, len(pairs), self.ctx.device
        batch = pair_batch(pairs, self.tokenizer.pad_token_id)
        logps, lengths = reply_logps(self.model, batch, dev, self.ctx.autocast())
        ref = None
        if self.reference is not None:
            with torch.no_grad():
                ref, _ = reply_logps(self.reference, batch, dev, self.ctx.autocast())
        rewards = {}
        if cfg.loss.startswith("rpo"):
            rewards = {"reward_c": torch.tensor([p.row["chosen_reward"] for p in pairs], device=dev),
                       "reward_r": torch.tensor([p.row["rejected_reward"] for p in pairs], device=dev)}
        losses, margin = preference_loss(
            cfg.loss, logps[:n], logps[n:], None if ref is None else ref[:n], None if ref is None else ref[n:],
            lengths[:n], lengths[n:], cfg.beta, reward_scale=cfg.reward_scale, simpo_gamma=cfg.simpo_gamma,
            label_smoothing=cfg.label_smoothing, **rewards)
        stats = {"margin": float(margin.detach().sum()), "correct": int((margin > 0).sum()),
                 "chosen_logp": float(logps[:n].detach().sum()), "rejected_logp": float(logps[n:].detach().sum())}
        return losses.sum(), stats

    def train_step(self, step: int, update) -> dict:
        pairs = self.pairs.pairs(step)
        mb = self.ctx.cfg.data.micro_batch_size
        total, tokens = 0.0, 0
        agg = {"margin": 0.0, "correct": 0, "chosen_logp": 0.0, "rejected_logp": 0.0}
        for m in range(0, len(pairs), mb):
            chunk = pairs[m : m + mb]
            loss, stats = self.loss(chunk)
            (loss / len(pairs)).backward()
            total += float(loss.detach())
            tokens += sum(len(p.chosen) + len(p.rejected) for p in chunk)
            for k in agg:
                agg[k] += stats[k]
        grad_norm = update()
        n = len(pairs)
        return {"loss": total / n, "margin": agg["margin"] / n, "accuracy": agg["correct"] / n,
                "chosen_logp": agg["chosen_logp"] / n, "rejected_logp": agg["rejected_logp"] / n,
                "grad_norm": grad_norm, "tokens": tokens}

    @torch.no_grad()
    def evaluate(self) -> dict:
        if self._val is None:
            self._val = self.pairs.held_out(self.ctx.cfg.data.val_samples)
        if not self._val:
            return {}
        self.model.eval()
        mb = self.ctx.cfg.data.micro_batch_size
        total, margin, correct, lp_c, lp_r = 0.0, 0.0, 0, 0.0, 0.0
        for m in range(0, len(self._val), mb):
            loss, stats = self.loss(self._val[m : m + mb])
            total += float(loss)
            margin += stats["margin"]
            correct += stats["correct"]
            lp_c += stats["chosen_logp"]
            lp_r += stats["rejected_logp"]
        n = len(self._val)
        return {"val_loss": total / n, "val_margin": margin / n, "val_accuracy": correct / n,
                "val_logp_gap": (lp_c - lp_r) / n, "val_pairs": n}

    def export(self, folder: Path) -> Path:
        return save_model_folder(folder, self.model, self.tokenizer,
                                 {"stage": "dpo", "loss": self.ctx.cfg.dpo.loss, "init_model": self.ctx.init.spec})

    def summary(self, metrics: list[dict]) -> dict:
        vals = [m for m in metrics if "val_margin" in m]
        return {"loss_kind": self.ctx.cfg.dpo.loss,
                "first_val_margin": vals[0]["val_margin"] if vals else None,
                "val_margin": vals[-1]["val_margin"] if vals else None,
                "val_accuracy": vals[-1]["val_accuracy"] if vals else None}
