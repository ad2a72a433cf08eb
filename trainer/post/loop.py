"""The post-training loop: SFT, reward models, DPO/RPO and GRPO on a blend version's rows.

Like the pretraining loop it writes, under the run folder::

    metrics.jsonl     one line per step (loss, lr, grad norm, tokens/s, the stage's own metrics),
                      per evaluation (val_*) and per event (GRPO's reference resets)
    checkpoints/      resumable checkpoints: model, optimizer, schedule, RNG, the stage's extra
                      state (GRPO: reference model, prompt position, resets)
    model/            the trained model as a Hugging Face folder (with its chat template)
    report.html       curves of the stage's metrics, resets marked
    summary.json      final metrics; the API records them in ``dataengine.training_runs``

Re-running the same command resumes from the latest checkpoint; the metrics file is cut back
to the checkpoint's step. A checkpoint of another stage, init model or blend version is
refused unless ``force``. With ``runtime.deterministic`` on CPU a resumed run repeats the
uninterrupted one exactly (data order and rollout sampling are functions of the step).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from dataengine.core.errors import DataEngineError
from dataengine.trainer import checkpoint as ckpt
from dataengine.trainer.distributed import init_distributed, shutdown
from dataengine.trainer.optim import build_optimizers, build_schedulers, clip_and_step
from dataengine.trainer.post.base import PostContext, PostStage
from dataengine.trainer.post.config import PostTrainConfig
from dataengine.trainer.post.data import BlendRows
from dataengine.trainer.post.models import InitModel
from dataengine.trainer.precision import use_bf16

#: Metric keys that vary run to run with the machine, not with the training (left out of comparisons).
TIMING_KEYS = ("tokens_per_s", "seconds", "rollout_seconds", "update_seconds", "rollout_tokens_per_s", "rollout_share")


def stage_class(name: str) -> type[PostStage]:
    if name == "sft":
        from dataengine.trainer.post.sft import SftStage
        return SftStage
    if name == "rm":
        from dataengine.trainer.post.reward_model import RewardModelStage
        return RewardModelStage
    if name == "dpo":
        from dataengine.trainer.post.dpo import PreferenceStage
        return PreferenceStage
    if name == "grpo":
        from dataengine.trainer.post.grpo import GrpoStage
        return GrpoStage
    raise DataEngineError(f"unknown post-training stage {name!r}: use sft, rm, dpo or grpo")


class MetricsLog:
    """Append-only JSONL; on resume the lines after the checkpoint's step are dropped."""

    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int) -> None:
        if self.path.exists():
            keep = [ln for ln in self.path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
            self.path.write_text("".join(ln + "\n" for ln in keep))

    def reset(self) -> None:
        if self.path.exists():
            self.path.unlink()

    def write(self, record: dict) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")


def run_id_for(stage: str, manifest: dict, init: InitModel, cfg: PostTrainConfig, output: Path) -> str:
    key = json.dumps([stage, manifest["manifest_hash"], init.fingerprint(), cfg.model_dump(mode="json"),
                      str(output.resolve())], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _configure_runtime(cfg: PostTrainConfig, device: torch.device) -> None:
    if device.type == "cpu":
        torch.set_num_threads(cfg.runtime.threads)
    if cfg.runtime.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")


def train_post(stage: str, manifest: dict, cfg: PostTrainConfig, output: str | Path, init: InitModel, *,
               blend_ref: str | None = None, force: bool = False, resume: bool = True, scorer=None) -> dict:
    """Run post-training ``stage`` on the rows of a blend version's export; returns the summary."""
    output = Path(output)
    env = init_distributed(cfg.runtime.device)
    try:
        if env.world > 1:
            raise DataEngineError("post-training runs in one process: launch it without torchrun")
        return _train(stage, manifest, cfg, output, init, env.device,
                      blend_ref or f"{manifest['blend']}@{manifest['version']}", force, resume, scorer)
    finally:
        shutdown(env)


def _train(stage_name, manifest, cfg: PostTrainConfig, output: Path, init: InitModel, device, blend_ref: str,
           force: bool, resume: bool, scorer) -> dict:
    _configure_runtime(cfg, device)
    output.mkdir(parents=True, exist_ok=True)
    metrics = MetricsLog(output / "metrics.jsonl")
    ckpt_dir = output / "checkpoints"
    rows = BlendRows(manifest, cfg.data.val_fraction)
    expected = {"sft": "chat", "rm": "preference", "dpo": "preference", "grpo": "verifiable"}[stage_name]
    if rows.shape != expected:
        raise DataEngineError(f"--stage {stage_name} trains on {expected} rows; {blend_ref} has {rows.shape} rows")
    seed = cfg.data.seed if cfg.data.seed is not None else manifest.get("seed", 1234)
    ctx = PostContext(cfg=cfg, rows=rows, init=init, device=device, output=output, scorer=scorer, seed=seed)
    stage = stage_class(stage_name)(ctx)
    ctx.bf16 = use_bf16(cfg.runtime.precision, device, getattr(stage.model.config, "hidden_size", 0))
    optimizers = build_optimizers(stage.model, cfg.optimizer, fused=True)
    schedulers = build_schedulers(optimizers, cfg.steps * stage.updates_per_step, cfg.schedule)
    params = [p for p in stage.model.parameters() if p.requires_grad]

    meta = {
        "stage": stage_name, "blend": manifest["blend"], "blend_version": manifest["version"],
        "manifest_hash": manifest["manifest_hash"], "blend_content_hash": manifest["blend_content_hash"],
        "tokenizer": manifest["tokenizer"], "tokenizer_hash": manifest["tokenizer_hash"],
        "init_model": init.spec, "init_fingerprint": init.fingerprint(), "config": cfg.model_dump(mode="json"),
    }
    start_step, resumed_from, forced = 0, None, []
    latest = ckpt.latest_checkpoint(ckpt_dir) if resume else None
    if latest is not None:
        old = json.loads((latest / "meta.json").read_text())
        forced = ckpt.check_compatible(old, manifest, force)
        for key, what in (("stage", "stage"), ("init_fingerprint", "init model")):
            if old.get(key) != meta[key]:
                if not force:
                    raise ckpt.ResumeMismatch(
                        f"refusing to resume: the checkpoint in {output} is a {old.get('stage')} run from "
                        f"{old.get('init_model')}, this is a {stage_name} run from {init.spec} (another {what}); "
                        "use --fresh, a new --output, or --force")
                forced.append(f"{what} differs")
        if old["step"] > cfg.steps:
            raise ckpt.ResumeMismatch(f"the checkpoint in {output} is at step {old['step']}, past this run's "
                                      f"{cfg.steps} steps; use a new --output or --fresh")
        state = ckpt.load_checkpoint(latest, stage.model, optimizers, schedulers)
        stage.load_state_dict(state.get("extra") or {})
        start_step, resumed_from = state["step"], str(latest)
        metrics.truncate_after(start_step)
    else:
        metrics.reset()
    stage.prepare(start_step)

    def update() -> float:
        return float(clip_and_step(params, cfg.optimizer.grad_clip, optimizers, schedulers))

    bar = _Bar(cfg.steps, start_step) if cfg.progress else None
    stage.model.train()
    last_val: dict = {}
    for step in range(start_step, cfg.steps):
        started = time.perf_counter()
        lr = optimizers[-1].param_groups[0]["lr"]
        record = stage.train_step(step, update)
        seconds = time.perf_counter() - started
        done = step + 1
        tokens = record.pop("tokens", 0)
        line = {"step": done, "lr": lr, **record, "tokens": tokens, "seconds": seconds,
                "tokens_per_s": tokens / seconds if seconds > 0 else float("nan")}
        if done % cfg.log_every == 0 or done == cfg.steps:
            metrics.write(line)
        for event in stage.after_update(done, record, optimizers):
            metrics.write({"step": done, **event})
        if done % cfg.eval_every == 0 or done == cfg.steps:
            last_val = stage.evaluate()
            if last_val:
                metrics.write({"step": done, **last_val})
            stage.model.train()
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            ckpt.save_checkpoint(ckpt_dir, done, stage.model, optimizers, schedulers, meta,
                                 keep=cfg.keep_checkpoints, extra=stage.state_dict())
        if bar is not None:
            bar.update(record.get("loss", float("nan")), record.get("reward"))
    if bar is not None:
        bar.close()

    from dataengine.trainer.post.report import write_post_report
    from dataengine.trainer.report import read_metrics

    rows_logged = read_metrics(metrics.path)
    steps_logged = [r for r in rows_logged if "loss" in r]
    tps = [r["tokens_per_s"] for r in steps_logged[1:]] or [r["tokens_per_s"] for r in steps_logged]
    vals = [r for r in rows_logged if any(k.startswith("val_") for k in r)]
    model_dir = stage.export(output / "model")
    summary = {
        "run_id": run_id_for(stage_name, manifest, init, cfg, output),
        "stage": stage_name,
        "init_model": init.spec,
        "blend_ref": blend_ref,
        "blend": manifest["blend"],
        "blend_version": manifest["version"],
        "manifest_hash": manifest["manifest_hash"],
        "tokenizer_hash": manifest["tokenizer_hash"],
        "steps": cfg.steps,
        "tokens": int(sum(r.get("tokens", 0) for r in steps_logged)),
        "parameters": sum(p.numel() for p in stage.model.parameters()),
        "world_size": 1,
        "device": device.type,
        "precision": "bf16" if ctx.bf16 else "fp32",
        "optimizer": cfg.optimizer.name,
        "final_loss": steps_logged[-1]["loss"] if steps_logged else None,
        "final_val_loss": next((v["val_loss"] for v in reversed(vals) if "val_loss" in v), None),
        "unigram_val_loss": None,
        "tokens_per_s": float(np.median(tps)) if tps else None,
        "mfu": None,
        "stage_metrics": {**stage.summary(rows_logged), "skipped": dict(ctx.counters)},
        "resumed_from": resumed_from,
        "forced_mismatch": "; ".join(forced) or None,
        "checkpoint_path": str(ckpt.latest_checkpoint(ckpt_dir)),
        "model_path": str(model_dir),
        "report_path": str(output / "report.html"),
    }
    write_post_report(output / "report.html", rows_logged, summary, cfg.model_dump(mode="json"))
    (output / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


class _Bar:
    def __init__(self, total: int, done: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=done, unit="step", dynamic_ncols=True, leave=True)

    def update(self, loss: float, reward: float | None) -> None:
        post = {"loss": f"{loss:.3f}"}
        if reward is not None:
            post["reward"] = f"{reward:.3f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
