"""Reward models on preference rows: Bradley-Terry, attribute regression, and their combination.

The model is the init model's body with a linear head (``AutoModelForSequenceClassification``)
read at the last token of prompt + reply: output 0 is the reward, outputs 1.. the attribute
scores (HelpSteer2's helpfulness, correctness, coherence, complexity, verbosity, or whatever
names the rows carry in ``chosen_attributes``/``rejected_attributes``).

- ``rm.loss: bt``: ``-log sigmoid(r_c - r_r - margin)`` on output 0.
- ``scaled_bt``: the same, weighted by the pair's preference strength
  ``|chosen_reward - rejected_reward|`` (HelpSteer2-Preference's scaled Bradley-Terry; 1 when
  the row has no rewards, counted).
- ``regression``: mean squared error of the attribute outputs on the rows' attribute scores
  (SteerLM / HelpSteer2); the reward is then ``sum(attribute_weights[a] * score[a])``.
- ``combined``: ``regression_weight`` x regression + scaled Bradley-Terry on output 0.

Accuracy (the reward ranks chosen above rejected) is reported on the held-out split of the
blend version at every evaluation.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dataengine.core.errors import DataEngineError
from dataengine.trainer.post.base import PostContext, PostStage
from dataengine.trainer.post.chat import ensure_chat_template
from dataengine.trainer.post.losses import attribute_regression_loss, bradley_terry_loss
from dataengine.trainer.post.models import load_reward_model, load_tokenizer, save_model_folder
from dataengine.trainer.post.pairs import Pair, PairStream, pair_batch


class RewardModelStage(PostStage):
    name = "rm"

    def __init__(self, ctx: PostContext):
        super().__init__(ctx)
        cfg = ctx.cfg.rm
        self.tokenizer = load_tokenizer(ctx.init)
        self.template = ensure_chat_template(self.tokenizer, ctx.cfg.chat_template)
        self.attributes = list(cfg.attributes) or self._attributes_in_data()
        if cfg.loss in ("regression", "combined") and not self.attributes:
            raise DataEngineError(f"rm.loss {cfg.loss} needs attribute scores: the rows have no "
                                  "chosen_attributes / rejected_attributes")
        weights = cfg.attribute_weights or (
            {"helpfulness": 1.0} if "helpfulness" in self.attributes else {a: 1.0 for a in self.attributes})
        unknown = set(weights) - set(self.attributes)
        if unknown and cfg.loss == "regression":
            raise DataEngineError(f"rm.attribute_weights names attributes the model does not score: {sorted(unknown)}")
        self.weights = torch.tensor([weights.get(a, 0.0) for a in self.attributes], device=ctx.device)
        self.model = load_reward_model(ctx.init, 1 + len(self.attributes), self.tokenizer.pad_token_id).to(ctx.device)
        self.pairs = PairStream(ctx, self.tokenizer)
        self._val: list[Pair] | None = None

    def _attributes_in_data(self) -> list[str]:
        names: set[str] = set()
        for rows in self.ctx.rows.rows.values():
            for row in rows:
                for key in ("chosen_attributes", "rejected_attributes"):
                    names.update(row.get(key) or {})
        return sorted(names)

    # -- scoring -------------------------------------------------------------------------
    def outputs(self, batch: dict) -> torch.Tensor:
        """(B, 1 + attributes) head outputs at each sequence's last token."""
        base = getattr(self.model, self.model.base_model_prefix)
        ids, attn = batch["input_ids"].to(self.ctx.device), batch["attention_mask"].to(self.ctx.device)
        with self.ctx.autocast():
            hidden = base(input_ids=ids, attention_mask=attn, use_cache=False).last_hidden_state
            last = attn.sum(-1) - 1
            out = self.model.score(hidden[torch.arange(len(ids), device=ids.device), last])
        return out.float()

    def reward(self, outputs: torch.Tensor) -> torch.Tensor:
        if self.ctx.cfg.rm.loss == "regression":
            return (outputs[:, 1:] * self.weights).sum(-1)
        return outputs[:, 0]

    def _targets(self, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        """Attribute targets and a known-mask, chosen rows then rejected rows."""
        vals, known = [], []
        for key in ("chosen_attributes", "rejected_attributes"):
            for p in pairs:
                scores = p.row.get(key) or {}
                vals.append([float(scores.get(a, 0.0)) for a in self.attributes])
                known.append([float(a in scores) for a in self.attributes])
        dev = self.ctx.device
        return torch.tensor(vals, device=dev), torch.tensor(known, device=dev)

    def _strength(self, pairs: list[Pair]) -> torch.Tensor:
        out = []
        for p in pairs:
            c, r = p.row.get("chosen_reward"), p.row.get("rejected_reward")
            if c is None or r is None:
                self.ctx.count("no_preference_strength")
                out.append(1.0)
            else:
                out.append(abs(c - r))
        return torch.tensor(out, device=self.ctx.device)

    def loss(self, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(summed loss over the pairs, chosen rewards, rejected rewards)."""
        cfg = self.ctx.cfg.rm
        out = self.outputs(pair_batch(pairs, self.tokenizer.pad_token_id))
        n = len(pairs)
        r = self.reward(out)
        rc, rr = r[:n], r[n:]
        total = torch.zeros((), device=self.ctx.device)
        if cfg.loss in ("bt", "scaled_bt", "combined"):
            strength = self._strength(pairs) if cfg.loss in ("scaled_bt", "combined") else None
            total = total + bradley_terry_loss(out[:n, 0], out[n:, 0], cfg.margin, strength).sum()
        if cfg.loss in ("regression", "combined"):
            target, known = self._targets(pairs)
            weight = 1.0 if cfg.loss == "regression" else cfg.regression_weight
            total = total + weight * attribute_regression_loss(out[:, 1:], target, known) * n
        return total, rc.detach(), rr.detach()

    # -- the stage ---------------------------------------------------------------------------
    def train_step(self, step: int, update) -> dict:
        pairs = self.pairs.pairs(step)
        mb = self.ctx.cfg.data.micro_batch_size
        total, correct, margin, tokens = 0.0, 0, 0.0, 0
        for m in range(0, len(pairs), mb):
            chunk = pairs[m : m + mb]
            loss, rc, rr = self.loss(chunk)
            (loss / len(pairs)).backward()
            total += float(loss.detach())
            correct += int((rc > rr).sum())
            margin += float((rc - rr).sum())
            tokens += sum(len(p.chosen) + len(p.rejected) for p in chunk)
        grad_norm = update()
        return {"loss": total / len(pairs), "accuracy": correct / len(pairs), "margin": margin / len(pairs),
                "grad_norm": grad_norm, "tokens": tokens}

    @torch.no_grad()
    def evaluate(self) -> dict:
        if self._val is None:
            self._val = self.pairs.held_out(self.ctx.cfg.data.val_samples)
        if not self._val:
            return {}
        self.model.eval()
        mb = self.ctx.cfg.data.micro_batch_size
        total, correct, margin = 0.0, 0, 0.0
        for m in range(0, len(self._val), mb):
            loss, rc, rr = self.loss(self._val[m : m + mb])
            total += float(loss)
            correct += int((rc > rr).sum())
            margin += float((rc - rr).sum())
        n = len(self._val)
        return {"val_loss": total / n, "val_accuracy": correct / n, "val_margin": margin / n, "val_pairs": n}

    def export(self, folder: Path) -> Path:
        return save_model_folder(folder, self.model, self.tokenizer, {
            "stage": "rm", "kind": "reward_model", "init_model": self.ctx.init.spec, "loss": self.ctx.cfg.rm.loss,
            "outputs": ["reward", *self.attributes], "attribute_weights": dict(zip(self.attributes, self.weights.tolist())),
            "read_at": "the last token of the chat-templated prompt + reply"})

    def summary(self, metrics: list[dict]) -> dict:
        vals = [m for m in metrics if "val_accuracy" in m]
        return {"val_accuracy": vals[-1]["val_accuracy"] if vals else None, "outputs": ["reward", *self.attributes],
                "loss_kind": self.ctx.cfg.rm.loss}
