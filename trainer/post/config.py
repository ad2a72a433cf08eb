"""Post-training configuration: the pretraining config file plus one section per stage.

The same YAML file drives every stage: ``steps``, ``optimizer``, ``schedule``, ``data``,
``runtime``, ``log_every``, ``eval_every``, ``checkpoint_every`` mean what they mean for
pretraining, and the sections ``sft``, ``rm``, ``dpo`` and ``grpo`` hold each stage's own
settings (a stage reads only its own). ``model.seq_len`` is the longest sequence a stage
builds (a packed SFT row; prompt + reply for rm/dpo; the prompt for grpo, whose completions
add up to ``grpo.max_new_tokens``); the model's size comes from ``--init``, so
``model.preset`` and ``model.overrides`` are not used.

Post-training starts from a trained model, so its defaults differ from pretraining's
(:data:`STAGE_DEFAULTS`: a small constant learning rate after a short warmup, no weight
decay); the file's values and ``--set`` override them as usual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataengine.core.errors import DataEngineError
from dataengine.trainer.config import TrainConfig, load_config

POST_STAGES = ("sft", "rm", "dpo", "grpo")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SftConfig(_Strict):
    packing: bool = True  # several conversations per row, each attending only to itself
    assistant_only_loss: bool = True  # loss on assistant turns (content + end-of-turn) only


class RewardModelConfig(_Strict):
    # bt: Bradley-Terry on pairs; scaled_bt: BT weighted by the preference strength
    # |chosen_reward - rejected_reward| (HelpSteer2-Preference); regression: attribute scores
    # (SteerLM/HelpSteer2); combined: regression + scaled BT on the reward head
    loss: Literal["bt", "scaled_bt", "regression", "combined"] = "bt"
    attributes: list[str] = Field(default_factory=list)  # regression targets; default: every attribute seen
    attribute_weights: dict[str, float] = Field(default_factory=dict)  # reward = sum(w * attribute) for regression
    regression_weight: float = 1.0  # combined: weight of the regression term
    margin: float = 0.0  # BT margin: -log sigmoid(r_c - r_r - margin)


class PreferenceConfig(_Strict):
    # dpo: -log sigmoid(beta * h); ipo: (h_avg - 1/(2 beta))^2; simpo: reference-free, length-normalised,
    # margin gamma; rpo_sq / rpo_bwd_kl / rpo_fwd_kl: Reward-aware Preference Optimization, distance
    # between the implicit reward gap beta * h and eta * (chosen_reward - rejected_reward)
    loss: Literal["dpo", "ipo", "simpo", "rpo_sq", "rpo_bwd_kl", "rpo_fwd_kl"] = "dpo"
    beta: float = Field(0.1, gt=0)
    reward_scale: float = 1.0  # eta of the RPO losses
    simpo_gamma: float = 0.5  # SimPO's target margin
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)  # dpo only (conservative DPO)


class GrpoConfig(_Strict):
    prompts_per_step: int = Field(4, ge=1)  # groups per optimizer step (after dynamic sampling)
    group_size: int = Field(8, ge=2)  # completions per prompt
    max_new_tokens: int = Field(64, ge=1)
    temperature: float = Field(1.2, gt=0)  # ProRL samples rollouts at 1.2
    top_p: float = Field(1.0, gt=0, le=1)
    eps_low: float = Field(0.2, ge=0)  # decoupled clipping: ratio in [1 - eps_low, 1 + eps_high]
    eps_high: float = Field(0.4, ge=0)
    kl_coef: float = Field(1e-3, ge=0)  # beta of the KL penalty to the reference (k3 estimator)
    updates_per_rollout: int = Field(1, ge=1)  # policy updates per rollout batch (mu)
    loss_aggregation: Literal["token", "sequence"] = "token"  # token: every token counts once (DAPO/ProRL)
    dynamic_sampling: bool = True  # drop groups whose rewards are all equal, refill from new prompts
    max_sampling_rounds: int = Field(4, ge=1)  # rollout rounds per step to fill prompts_per_step groups
    reset_every: Optional[int] = Field(None, ge=1)  # reference reset (+ optimizer reset) every N steps
    reset_kl_share: Optional[float] = Field(0.5, gt=0, le=1)  # ... or when kl_coef*KL exceeds this share of the loss
    reset_min_interval: int = Field(10, ge=1)  # steps between two KL-triggered resets
    rollout_engine: Literal["auto", "transformers", "vllm"] = "auto"  # auto: vllm on CUDA when installed
    rollout_batch_size: int = Field(64, ge=1)  # sequences per generate() call (transformers)
    reward: dict = Field(default_factory=dict)  # parameters of the reward stage (e.g. code time limits)
    eval_prompts: int = Field(32, ge=0)  # held-out prompts scored greedily at each evaluation


class PostTrainConfig(TrainConfig):
    chat_template: Optional[str] = None  # a Jinja chat template replacing the init model's tokenizer's
    sft: SftConfig = Field(default_factory=SftConfig)
    rm: RewardModelConfig = Field(default_factory=RewardModelConfig)
    dpo: PreferenceConfig = Field(default_factory=PreferenceConfig)
    grpo: GrpoConfig = Field(default_factory=GrpoConfig)

    @model_validator(mode="after")
    def _check_post(self):
        if self.model.seq_len < 8:
            raise ValueError("model.seq_len must be at least 8 for post-training")
        return self


STAGE_DEFAULTS: dict[str, dict] = {
    stage: {
        "steps": 100,
        "model": {"seq_len": 1024},
        "optimizer": {"lr": lr, "weight_decay": 0.0},
        "schedule": {"kind": "constant", "warmup_steps": 5},
        "data": {"micro_batch_size": micro, "val_fraction": 0.05, "val_samples": 64},
        "eval_every": 25,
        "checkpoint_every": 25,
    }
    for stage, lr, micro in (("sft", 2e-5, 4), ("rm", 1e-5, 4), ("dpo", 5e-7, 4), ("grpo", 1e-6, 8))
}


def load_post_config(stage: str, path: str | Path | None, overrides: dict | None = None) -> PostTrainConfig:
    """The config of a post-training stage: its defaults, then the file, then ``overrides``."""
    if stage not in POST_STAGES:
        raise DataEngineError(f"unknown training stage {stage!r}: use pretrain, {', '.join(POST_STAGES)}")
    cfg = load_config(path, overrides, config_class=PostTrainConfig, defaults=STAGE_DEFAULTS[stage])
    if cfg.optimizer.name != "adamw":
        raise DataEngineError(f"post-training uses optimizer.name adamw (got {cfg.optimizer.name}); Muon is "
                              "for pretraining hidden matrices from scratch")
    return cfg
