"""GRPO on verifiable prompts, with ProRL's changes (Liu et al. 2025, "ProRL").

One step:

1. **Rollouts**: the next ``prompts_per_step`` prompts of the run's stream, ``group_size``
   completions each, sampled at ``temperature`` (ProRL: 1.2) from the current policy
   (trainer/post/rollout.py). Sampling is seeded by (seed, step, round), so a resumed run
   samples exactly what the uninterrupted one did.
2. **Rewards**: the reward stage's verifiers (``reward_kind`` of each row: math, exact, choice,
   code) score each completion against the row's ``answer``.
3. **Dynamic sampling** (DAPO): a group whose rewards are all equal has zero advantage and
   teaches nothing; it is dropped and new prompts are sampled, up to ``max_sampling_rounds``
   rounds per step.
4. **Advantages**: each reward minus its group's mean, over the group's standard deviation.
5. **Update** (``updates_per_rollout`` optimizer steps over the batch): per token
   ``-min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A) + kl_coef * KL(policy || reference)``
   with decoupled clip bounds (0.2 / 0.4), the k3 KL estimator, and token-level averaging
   (every completion token of the step weighs the same).
6. **Reference reset**: every ``reset_every`` steps, or when the KL term's share of the loss
   ``kl_coef KL / (kl_coef KL + mean |rho A|)`` exceeds ``reset_kl_share`` (at most once per
   ``reset_min_interval`` steps), the reference becomes a copy of the current policy and the
   optimizer state is cleared (ProRL's "hard reset"); each reset is a ``reference_reset`` line in
   metrics.jsonl and a marker in the report.

Logged per step: reward (all samples) and reward_kept (kept groups), groups kept/dropped,
KL, its share, entropy, clipped-token fraction, completion length, verifier statuses,
rollout and update seconds, rollout tokens per second and the rollout share of the step.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from dataengine.core.errors import DataEngineError
from dataengine.trainer.post.base import PostContext, PostStage
from dataengine.trainer.post.chat import ensure_chat_template, encode_prompt
from dataengine.trainer.post.losses import aggregate, group_advantages, grpo_token_loss
from dataengine.trainer.post.models import frozen_copy, load_causal_lm, load_tokenizer, save_model_folder
from dataengine.trainer.post.pairs import right_pad
from dataengine.trainer.post.rollout import TransformersRollout, VllmRollout, vllm_available


class GrpoStage(PostStage):
    name = "grpo"

    def __init__(self, ctx: PostContext):
        super().__init__(ctx)
        if ctx.scorer is None:
            raise DataEngineError("GRPO needs a reward scorer (the API passes the reward stage's)")
        g = ctx.cfg.grpo
        self.g = g
        self.updates_per_step = g.updates_per_rollout
        self.tokenizer = load_tokenizer(ctx.init)
        self.template = ensure_chat_template(self.tokenizer, ctx.cfg.chat_template)
        self.model = load_causal_lm(ctx.init).to(ctx.device)
        self.reference = frozen_copy(self.model) if g.kl_coef > 0 else None
        self.order = ctx.rows.order(ctx.seed, ctx.cfg.steps * g.prompts_per_step * g.max_sampling_rounds)
        self.next_prompt = 0
        self.last_reset = 0
        self.resets: list[dict] = []
        self._prompt_ids: dict[tuple[str, str], list[int] | None] = {}
        self.rollout = self._rollout_engine()

    def _rollout_engine(self):
        g, dev = self.g, self.ctx.device
        use_vllm = g.rollout_engine == "vllm" or (g.rollout_engine == "auto" and dev.type == "cuda" and vllm_available())
        if not use_vllm:
            return TransformersRollout(self.model, self.tokenizer, dev, g.rollout_batch_size)
        if dev.type != "cuda":
            raise DataEngineError("grpo.rollout_engine vllm needs a CUDA device")
        folder = self.ctx.init.folder
        if self.ctx.init.gguf_file:  # vLLM reads the architecture from a transformers folder
            folder = str(save_model_folder(self.ctx.output / "vllm-init", self.model, self.tokenizer))
        return VllmRollout(self.model, self.tokenizer, folder, g.max_new_tokens, g.temperature, g.top_p,
                           self.ctx.cfg.model.seq_len + g.max_new_tokens)

    # -- prompts -------------------------------------------------------------------------
    def _prompt(self, row: dict, key: tuple[str, str]) -> list[int] | None:
        if key not in self._prompt_ids:
            ids = encode_prompt(self.tokenizer, row["prompt"])
            if len(ids) > self.ctx.cfg.model.seq_len:
                self.ctx.count("prompt_too_long")
                ids = None
            self._prompt_ids[key] = ids
        return self._prompt_ids[key]

    def _next_prompts(self, n: int) -> list[tuple[dict, list[int]]]:
        out = []
        while len(out) < n:
            i = self.next_prompt
            self.next_prompt += 1
            row = self.order[i]
            ids = self._prompt(row, (self.order.component_name(i), row["id"]))
            if ids is not None:
                out.append((row, ids))
        return out

    # -- rollouts and rewards ----------------------------------------------------------------
    def _sample(self, step: int) -> tuple[list[dict], dict]:
        """Kept groups [{prompt_ids, completions, rewards}], and the sampling statistics."""
        g = self.g
        kept: list[dict] = []
        stats = {"rewards": [], "statuses": {}, "dropped": 0, "rounds": 0, "rollout_tokens": 0, "rollout_seconds": 0.0,
                 "completion_lengths": []}
        while len(kept) < g.prompts_per_step and stats["rounds"] < g.max_sampling_rounds:
            prompts = self._next_prompts(g.prompts_per_step - len(kept))
            torch.manual_seed(self.ctx.seed * 1_000_003 + step * 101 + stats["rounds"])
            started = time.perf_counter()
            flat = [ids for _, ids in prompts for _ in range(g.group_size)]
            completions = self.rollout.generate(flat, g.max_new_tokens, g.temperature, g.top_p)
            stats["rollout_seconds"] += time.perf_counter() - started
            stats["rounds"] += 1
            texts = self.tokenizer.batch_decode(completions, skip_special_tokens=True)
            answers = [row["answer"] for row, _ in prompts for _ in range(g.group_size)]
            kinds = [row["reward_kind"] for row, _ in prompts for _ in range(g.group_size)]
            rewards, statuses = self.ctx.scorer(texts, answers, kinds)
            stats["rewards"] += rewards
            stats["rollout_tokens"] += sum(len(c) for c in completions)
            stats["completion_lengths"] += [len(c) for c in completions]
            for s in statuses:
                stats["statuses"][s] = stats["statuses"].get(s, 0) + 1
            for k, (row, ids) in enumerate(prompts):
                group = slice(k * g.group_size, (k + 1) * g.group_size)
                group_rewards = rewards[group]
                if g.dynamic_sampling and max(group_rewards) == min(group_rewards):
                    stats["dropped"] += 1
                    continue
                if len(kept) < g.prompts_per_step:
                    kept.append({"prompt_ids": ids, "completions": completions[group], "rewards": group_rewards})
        return kept, stats

    # -- the update -----------------------------------------------------------------------------
    def _logps(self, model, batch: dict):
        from trl.trainer.utils import entropy_from_logits, selective_log_softmax

        ids, attn = batch["input_ids"].to(self.ctx.device), batch["attention_mask"].to(self.ctx.device)
        with self.ctx.autocast():
            logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits[:, :-1].float()
        logps = selective_log_softmax(logits, ids[:, 1:])
        with torch.no_grad():
            entropy = entropy_from_logits(logits.detach())
        return logps, entropy

    def train_step(self, step: int, update) -> dict:
        g, dev = self.g, self.ctx.device
        step_started = time.perf_counter()
        groups, stats = self._sample(step)
        record = {
            "reward": sum(stats["rewards"]) / max(len(stats["rewards"]), 1),
            "groups_kept": len(groups), "groups_dropped": stats["dropped"], "sampling_rounds": stats["rounds"],
            "completion_len": sum(stats["completion_lengths"]) / max(len(stats["completion_lengths"]), 1),
            "statuses": stats["statuses"], "rollout_tokens": stats["rollout_tokens"],
            "rollout_seconds": stats["rollout_seconds"],
            "rollout_tokens_per_s": stats["rollout_tokens"] / stats["rollout_seconds"] if stats["rollout_seconds"] else 0.0,
        }
        update_started = time.perf_counter()
        if not groups:  # nothing to learn from this step: advance the schedule, change no weight
            update()
            record.update({"loss": 0.0, "reward_kept": None, "kl": 0.0, "kl_share": 0.0, "entropy": None,
                           "clip_frac": 0.0, "tokens": 0, "update_seconds": 0.0})
            return self._timing(record, step_started, update_started)
        seqs, masks, advantages = [], [], []
        for grp in groups:
            adv = group_advantages(torch.tensor(grp["rewards"], dtype=torch.float32), len(grp["rewards"]))
            for completion, a in zip(grp["completions"], adv.tolist()):
                seqs.append(grp["prompt_ids"] + completion)
                masks.append([False] * len(grp["prompt_ids"]) + [True] * len(completion))
                advantages.append(a)
        record["reward_kept"] = sum(r for grp in groups for r in grp["rewards"]) / len(seqs)
        mb = self.ctx.cfg.data.micro_batch_size
        batches = [right_pad(seqs[m : m + mb], masks[m : m + mb], self.tokenizer.pad_token_id)
                   for m in range(0, len(seqs), mb)]
        advs = [torch.tensor(advantages[m : m + mb], device=dev) for m in range(0, len(seqs), mb)]
        total_tokens = float(sum(sum(m) for m in masks))
        with torch.no_grad():
            refs = [self._logps(self.reference, b)[0] if self.reference is not None else None for b in batches]
            olds = [self._logps(self.model, b)[0] for b in batches] if g.updates_per_rollout > 1 else None
        sums = {"loss": 0.0, "kl": 0.0, "pg": 0.0, "abs_pg": 0.0, "clipped": 0.0, "entropy": 0.0}
        for u in range(g.updates_per_rollout):
            for k, batch in enumerate(batches):
                mask = batch["reply_mask"][:, 1:].to(dev).float()
                logps, entropy = self._logps(self.model, batch)
                old = olds[k] if olds is not None else logps.detach()
                per_token, parts = grpo_token_loss(logps, old, refs[k], advs[k], g.eps_low, g.eps_high, g.kl_coef)
                if g.loss_aggregation == "token":
                    loss = aggregate(per_token, mask, "token", total_tokens)
                else:
                    loss = aggregate(per_token, mask, "sequence") * len(advs[k]) / len(seqs)
                loss.backward()
                if u == 0:  # what the rollout batch looked like before this step's updates
                    sums["loss"] += float(loss.detach())
                    for name in ("kl", "pg", "abs_pg", "clipped"):
                        sums[name] += float((parts[name].detach() * mask).sum())
                    sums["entropy"] += float((entropy * mask).sum())
            record["grad_norm"] = update()
        kl, abs_pg = sums["kl"] / total_tokens, sums["abs_pg"] / total_tokens
        kl_term = g.kl_coef * kl
        record.update({
            "loss": sums["loss"], "pg_loss": sums["pg"] / total_tokens, "kl": kl,
            "kl_share": kl_term / (kl_term + abs_pg) if kl_term + abs_pg > 0 else 0.0,
            "entropy": sums["entropy"] / total_tokens, "clip_frac": sums["clipped"] / total_tokens,
            "tokens": int(sum(len(s) for s in seqs)) * g.updates_per_rollout,
        })
        return self._timing(record, step_started, update_started)

    @staticmethod
    def _timing(record: dict, step_started: float, update_started: float) -> dict:
        now = time.perf_counter()
        record["update_seconds"] = now - update_started
        total = now - step_started
        record["rollout_share"] = record["rollout_seconds"] / total if total > 0 else 0.0
        return record

    # -- ProRL's reference reset -------------------------------------------------------------
    def after_update(self, step: int, record: dict, optimizers: list) -> list[dict]:
        g = self.g
        reason = None
        if g.reset_every and step % g.reset_every == 0:
            reason = "schedule"
        elif (g.reset_kl_share and self.reference is not None and record.get("kl_share", 0) > g.reset_kl_share
              and step - self.last_reset >= g.reset_min_interval):
            reason = "kl"
        if reason is None:
            return []
        if self.reference is not None:
            self.reference.load_state_dict(self.model.state_dict())
        cleared = 0
        for opt in optimizers:  # a fresh optimizer: moments and step counts start again
            cleared += len(opt.state)
            opt.state.clear()
        self.last_reset = step
        event = {"event": "reference_reset", "reason": reason, "kl": record.get("kl"),
                 "kl_share": record.get("kl_share"), "optimizer_states_cleared": cleared}
        self.resets.append({"step": step, **event})
        return [event]

    # -- evaluation, state, output ---------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict:
        rows = self.ctx.rows.val_rows(self.g.eval_prompts)
        prompts = [(r, ids) for r in rows if (ids := self._prompt(r, ("held-out", r["id"]))) is not None]
        if not prompts:
            return {}
        completions = self.rollout.generate([ids for _, ids in prompts], self.g.max_new_tokens, 1.0, 1.0, greedy=True)
        texts = self.tokenizer.batch_decode(completions, skip_special_tokens=True)
        rewards, _ = self.ctx.scorer(texts, [r["answer"] for r, _ in prompts], [r["reward_kind"] for r, _ in prompts])
        return {"val_reward": sum(rewards) / len(rewards), "val_prompts": len(prompts)}

    def state_dict(self) -> dict:
        return {"reference": self.reference.state_dict() if self.reference is not None else None,
                "next_prompt": self.next_prompt, "last_reset": self.last_reset, "resets": self.resets}

    def load_state_dict(self, state: dict) -> None:
        if state.get("reference") is not None and self.reference is not None:
            self.reference.load_state_dict(state["reference"])
        self.next_prompt = state.get("next_prompt", 0)
        self.last_reset = state.get("last_reset", 0)
        self.resets = list(state.get("resets", []))

    def export(self, folder: Path) -> Path:
        return save_model_folder(folder, self.model, self.tokenizer,
                                 {"stage": "grpo", "init_model": self.ctx.init.spec, "resets": self.resets})

    def summary(self, metrics: list[dict]) -> dict:
        steps = [m for m in metrics if "reward" in m]
        vals = [m for m in metrics if "val_reward" in m]
        rollout = sum(m.get("rollout_seconds", 0) for m in steps)
        update = sum(m.get("update_seconds", 0) for m in steps)
        return {
            "first_reward": steps[0]["reward"] if steps else None,
            "final_reward": steps[-1]["reward"] if steps else None,
            "val_reward": vals[-1]["val_reward"] if vals else None,
            "reference_resets": len(self.resets),
            "reset_steps": [r["step"] for r in self.resets],
            "rollout_engine": self.rollout.engine,
            "rollout_seconds": rollout, "update_seconds": update,
            "rollout_share": rollout / (rollout + update) if rollout + update else None,
            "rollout_tokens_per_s": (sum(m.get("rollout_tokens", 0) for m in steps) / rollout) if rollout else None,
        }
