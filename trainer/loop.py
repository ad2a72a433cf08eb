"""The pretraining loop: a blend version's tokens in, checkpoints, metrics and a HF folder out.

Output folder layout::

    OUTPUT/metrics.jsonl      one line per logged step {"step", "loss", "lr", "grad_norm", "tokens_per_s", ...}
                              and per evaluation {"step", "val_loss"}
    OUTPUT/checkpoints/       resumable checkpoints (trainer/checkpoint.py)
    OUTPUT/model/             transformers folder with tokenizer (trainer/hf_export.py)
    OUTPUT/report.html        loss and throughput curves (written by dataengine.api.train)
    OUTPUT/summary.json       final metrics, also recorded in the warehouse by the CLI

Reproducibility: the model is initialised from ``runtime.init_seed``; step ``s`` reads a fixed
set of samples (trainer/data.py); with ``runtime.deterministic`` on CPU, deterministic kernels
and a fixed thread count make a resumed run bitwise identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from dataengine.kernels import cpu_fused
from dataengine.trainer import checkpoint as ckpt
from dataengine.trainer.attention import choose_attention, use_attention
from dataengine.trainer.batches import MicroBatch, Prefetcher, micro_batch
from dataengine.trainer.config import TrainConfig
from dataengine.trainer.data import TrainStream, unigram_baseline, validation_batches
from dataengine.trainer.distributed import (DistEnv, barrier, gradient_sync, init_distributed, mean_across_ranks,
                                            parameter_checksums, shutdown, sum_across_ranks, wrap_model)
from dataengine.trainer.loss import token_cross_entropy
from dataengine.trainer.model import build_model, flops_per_token, gpu_peak_flops, model_config
from dataengine.trainer.optim import (build_optimizers, build_schedulers, clip_and_step, lr_factor,
                                      parametrization_multipliers)
from dataengine.trainer.parametrization import apply_initialization
from dataengine.trainer.precision import autocast, use_bf16
from dataengine.trainer.rmsnorm import use_fused_rmsnorm
from dataengine.trainer.rotary import use_head_major_rotary
from dataengine.trainer.swiglu import use_fused_mlp


def run_id_for(manifest: dict, cfg: TrainConfig, output: Path) -> str:
    """Stable across resumes of the same run: blend export, config and output folder."""
    key = json.dumps([manifest["manifest_hash"], cfg.model_dump(mode="json"), str(output.resolve())], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _configure_runtime(cfg: TrainConfig, env: DistEnv) -> None:
    if env.device.type == "cpu":
        torch.set_num_threads(cfg.runtime.threads)
    if cfg.runtime.deterministic:
        if env.device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # CUDA attention backward kernels have no deterministic variant: warn there, enforce on CPU
        torch.use_deterministic_algorithms(True, warn_only=env.device.type == "cuda")


# On CPU, compiling pays only for long runs: the first compile of `small` took 32 s for a 1.10x
# faster step (break-even ~700 steps of 2,048 tokens, ~3.5e13 training FLOPs; evaluation adds a
# second graph). auto compiles CPU runs of about three times that (benchmarks/RESULTS.md).
CPU_COMPILE_MIN_RUN_FLOPS = 1e14


def should_compile(setting, device: torch.device, run_flops: float = 0.0) -> bool:
    """``runtime.compile``: True/False, or auto = on CUDA, and on CPU for runs of at least
    CPU_COMPILE_MIN_RUN_FLOPS training FLOPs per process when inductor can build its C++ there.

    ``run_flops`` comes from the config (all its steps, not those left after a resume), so the same
    config always makes the same choice, and with it the same numerics."""
    if setting != "auto":
        return bool(setting)
    if device.type == "cuda":
        return True
    return device.type == "cpu" and run_flops >= CPU_COMPILE_MIN_RUN_FLOPS and cpu_compiler_available()


def cpu_compiler_available() -> bool:
    """Whether inductor's CPU backend can build here: a C++ compiler (``$CXX``, g++, c++ or clang++)
    and Python's headers."""
    import shutil
    import sysconfig

    cxx = os.environ.get("CXX")
    found = shutil.which(cxx) if cxx else any(shutil.which(c) for c in ("g++", "c++", "clang++"))
    return bool(found) and Path(sysconfig.get_paths()["include"], "Python.h").exists()


def use_fused_layers(setting, device: torch.device, compiled: bool) -> bool:
    """``runtime.fused_layers``: True/False, or auto = on CPU when not compiling (compile fuses
    these ops itself, and their strided ``out=`` writes would break its graph)."""
    return device.type == "cpu" and not compiled if setting == "auto" else bool(setting)


def use_cpu_kernels(setting, applicable: bool) -> bool:
    """``runtime.cpu_kernels``: False, True (they must build), or auto = where they apply (the
    fused layers under bf16 with one torch thread) and build (kernels/cpu_fused.py); switches
    them on or off for this process."""
    wanted = applicable if setting == "auto" else bool(setting)
    built = wanted and cpu_fused.library() is not None
    if setting is True and not built:
        raise RuntimeError("runtime.cpu_kernels is true but the fused CPU kernels could not be built "
                           "(no C compiler, or the build failed: see the warning above); set it to auto or false")
    cpu_fused.set_enabled(built)
    return built


def build_parametrized_model(hf_config, cfg: TrainConfig):
    """A freshly initialised model under ``cfg.model.parametrization``, and its per-parameter
    multipliers (what :func:`trainer.optim.build_optimizers` needs)."""
    model = build_model(hf_config, seed=cfg.runtime.init_seed)
    multipliers = parametrization_multipliers(model, cfg.model, cfg.optimizer)
    apply_initialization(model, multipliers)
    return model, multipliers


class _Metrics:
    """Append-only JSONL on rank 0; on resume, lines after the checkpoint's step are dropped
    so the file reads as if the run had never stopped."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def truncate_after(self, step: int) -> None:
        if not self.enabled or not self.path.exists():
            return
        keep = [line for line in self.path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in keep))

    def reset(self) -> None:
        if self.enabled and self.path.exists():
            self.path.unlink()

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(record) + "\n")


def causal_lm_loss(model, batch: MicroBatch, bf16: bool) -> torch.Tensor:
    """Mean next-token cross-entropy of a micro-batch (fp32 math on the logits: trainer/loss.py)."""
    with autocast(batch.inputs.device, bf16):
        logits = model(input_ids=batch.inputs, position_ids=batch.position_ids, use_cache=False).logits
    return token_cross_entropy(logits, batch.targets)


@torch.no_grad()
def evaluate(model, batches: list[np.ndarray], env: DistEnv, bf16: bool, eos_id: int | None = None) -> float:
    """Mean validation loss over the fixed validation set (batches split across ranks).

    ``eos_id``: evaluate with document masking, as the run trains (None: plain causal windows)."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=env.device)
    for window in batches[env.rank :: env.world]:
        batch = micro_batch(window, eos_id).to(env.device)
        n = batch.tokens
        total += torch.tensor([causal_lm_loss(model, batch, bf16).double().item() * n, n], dtype=torch.float64,
                              device=env.device)
    model.train()
    total = sum_across_ranks(total, env)
    return float(total[0] / total[1]) if total[1] else float("nan")


def train(manifest: dict, cfg: TrainConfig, output: str | Path, tokenizer, *, blend_ref: str | None = None,
          force: bool = False, resume: bool = True) -> dict:
    """Train on the blend export ``manifest`` (see warehouse/export.py); returns the run summary.

    ``tokenizer`` is the `tokenizers.Tokenizer` the blend was exported with (saved with the model).
    Resumes from the latest checkpoint in ``output`` unless ``resume`` is False.
    """
    output = Path(output)
    env = init_distributed(cfg.runtime.device)
    try:
        return _train(manifest, cfg, output, tokenizer, env, blend_ref or f"{manifest['blend']}@{manifest['version']}",
                      force, resume)
    finally:
        cpu_fused.set_enabled(False)  # the switch is per run
        shutdown(env)


def _train(manifest, cfg: TrainConfig, output: Path, tokenizer, env: DistEnv, blend_ref: str, force: bool,
           resume: bool) -> dict:
    _configure_runtime(cfg, env)
    d, seq_len = cfg.data, cfg.model.seq_len
    if env.is_main:
        output.mkdir(parents=True, exist_ok=True)
    barrier(env)
    metrics = _Metrics(output / "metrics.jsonl", env.is_main)
    ckpt_dir = output / "checkpoints"

    stream = TrainStream(manifest, seq_len, d.seed, d.micro_batch_size, d.grad_accum, env.world, cfg.steps, d.val_fraction)
    val = validation_batches(manifest, seq_len, d.val_fraction, d.val_samples, d.micro_batch_size)
    unigram = unigram_baseline(manifest, stream, val, manifest["vocab_size"]) if env.is_main else None

    hf_config = model_config(cfg.model.preset, manifest["vocab_size"], manifest["eos_id"], seq_len, cfg.model.overrides)
    bf16 = use_bf16(cfg.runtime.precision, env.device, hf_config.hidden_size)
    model, multipliers = build_parametrized_model(hf_config, cfg)
    model.to(env.device)
    use_attention(model, choose_attention(cfg.runtime.attention, env.device, seq_len, bf16))
    fpt = flops_per_token(model, seq_len)
    run_flops = fpt * d.micro_batch_size * d.grad_accum * seq_len * cfg.steps  # per process
    compiled = should_compile(cfg.runtime.compile, env.device, run_flops)
    fused = use_fused_layers(cfg.runtime.fused_layers, env.device, compiled)
    use_head_major_rotary(model, fused)
    use_fused_rmsnorm(model, fused)
    use_fused_mlp(model, fused)
    kernels = use_cpu_kernels(cfg.runtime.cpu_kernels, fused and bf16 and torch.get_num_threads() == 1)
    n_params = sum(p.numel() for p in model.parameters())
    wrapped = wrap_model(model, env, cfg.runtime.distributed, bf16)
    if compiled:  # after wrapping (FSDP2 wants its hooks in place); in place, so state-dict keys stay plain
        model.compile()
    sharded = env.active and cfg.runtime.distributed == "fsdp"
    optimizers = build_optimizers(model, cfg.optimizer, fused=not sharded, multipliers=multipliers)
    schedulers = build_schedulers(optimizers, cfg.steps, cfg.schedule)

    start_step, resumed_from, forced, elapsed = 0, None, [], 0.0
    latest = ckpt.latest_checkpoint(ckpt_dir) if resume else None
    if latest is not None:
        meta = json.loads((latest / "meta.json").read_text())
        forced = ckpt.check_compatible(meta, manifest, force)
        forced += ckpt.check_config(meta.get("config"), cfg.model_dump(mode="json"), output, force)
        if meta.get("global_batch") != stream.global_batch and not force:
            raise ckpt.ResumeMismatch(
                f"refusing to resume: checkpoint global batch {meta.get('global_batch')} != {stream.global_batch} "
                "(micro_batch_size x grad_accum x world size); the data position would shift (use --force)")
        if meta["step"] > cfg.steps:
            raise ckpt.ResumeMismatch(f"the checkpoint in {output} is at step {meta['step']}, past this run's "
                                      f"{cfg.steps} steps; use a new --output or --fresh")
        state = ckpt.load_checkpoint(latest, wrapped, optimizers, schedulers, sharded=sharded)
        start_step, resumed_from, elapsed = state["step"], str(latest), float(meta.get("elapsed_s", 0.0))
        metrics.truncate_after(start_step)
    elif env.is_main:
        metrics.reset()

    meta = {
        "blend": manifest["blend"], "blend_version": manifest["version"], "manifest_hash": manifest["manifest_hash"],
        "blend_content_hash": manifest["blend_content_hash"], "tokenizer": manifest["tokenizer"],
        "tokenizer_hash": manifest["tokenizer_hash"], "global_batch": stream.global_batch, "world_size": env.world,
        "config": cfg.model_dump(mode="json"),
    }
    params = [p for p in wrapped.parameters() if p.requires_grad]
    peak = gpu_peak_flops(env.device)
    tokens_per_step = stream.global_batch * seq_len
    eos = manifest["eos_id"] if d.document_masking else None
    pin = env.device.type == "cuda"
    batches = Prefetcher(lambda s: [micro_batch(stream.micro_batch_at(s, m, env.rank), eos, pin)
                                    for m in range(d.grad_accum)], start_step, cfg.steps, d.prefetch)
    last_loss = last_val = float("nan")
    bar = _progress(cfg, env, start_step, compiled)
    interval_start, interval_steps = time.perf_counter(), 0
    wrapped.train()
    try:
        for step in range(start_step, cfg.steps):
            step_start = time.perf_counter()
            micro_batches = batches.get(step)
            loss_sum = torch.zeros((), dtype=torch.float32, device=env.device)
            for micro, batch in enumerate(micro_batches):
                with gradient_sync(wrapped, micro == d.grad_accum - 1, cfg.runtime.distributed, env):
                    loss = causal_lm_loss(wrapped, batch.to(env.device), bf16)
                    (loss / d.grad_accum).backward()
                loss_sum += loss.detach()
            grad_norm = clip_and_step(params, cfg.optimizer.grad_clip, optimizers, schedulers)
            done = step + 1
            last_loss = float(mean_across_ranks(loss_sum / d.grad_accum, env))  # waits for the step to finish
            elapsed += time.perf_counter() - step_start
            interval_steps += 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                seconds = time.perf_counter() - interval_start
                tps = tokens_per_step * interval_steps / seconds if seconds > 0 else float("nan")
                factor = lr_factor(step, cfg.steps, cfg.schedule)
                record = {"step": done, "loss": last_loss, "lr": cfg.optimizer.lr * factor, "grad_norm": float(grad_norm),
                          "tokens": done * tokens_per_step, "tokens_per_s": tps, "elapsed_s": elapsed,
                          "data_wait_s": batches.waited}
                if len(optimizers) > 1:
                    record["muon_lr"] = cfg.optimizer.muon_lr * factor
                if peak:
                    record["mfu"] = fpt * tps / (peak * env.world)
                metrics.write(record)
                interval_start, interval_steps = time.perf_counter(), 0
            if val and (done % cfg.eval_every == 0 or done == cfg.steps):
                last_val = evaluate(wrapped, val, env, bf16, eos)
                metrics.write({"step": done, "val_loss": last_val, "elapsed_s": elapsed})
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                ckpt.save_checkpoint(ckpt_dir, done, wrapped, optimizers, schedulers,
                                     {**meta, "samples_consumed": done * stream.global_batch, "elapsed_s": elapsed},
                                     rank=env.rank, sharded=sharded, keep=cfg.keep_checkpoints)
            if bar is not None:
                bar.update(1, loss=last_loss)
    finally:
        batches.close()
        if bar is not None:
            bar.close()

    checksums = None if sharded else parameter_checksums(wrapped, env)
    final_state = _full_model_state(wrapped, sharded)
    summary = None
    if env.is_main:
        from dataengine.trainer.hf_export import save_hf_folder
        from dataengine.trainer.report import read_metrics

        rows = read_metrics(metrics.path)
        losses = [r for r in rows if "loss" in r]
        vals = [r for r in rows if "val_loss" in r]
        tps = [r["tokens_per_s"] for r in losses[1:]] or [r["tokens_per_s"] for r in losses]
        model_dir = save_hf_folder(output / "model", hf_config, final_state, tokenizer, manifest["eos_id"])
        summary = {
            "run_id": run_id_for(manifest, cfg, output),
            "blend_ref": blend_ref,
            "blend": manifest["blend"],
            "blend_version": manifest["version"],
            "manifest_hash": manifest["manifest_hash"],
            "tokenizer_hash": manifest["tokenizer_hash"],
            "steps": cfg.steps,
            "tokens": cfg.steps * tokens_per_step,
            "parameters": n_params,
            "world_size": env.world,
            "device": env.device.type,
            "precision": "bf16" if bf16 else "fp32",  # what precision: auto chose on this machine
            "compiled": compiled,  # what compile: auto chose
            "fused_layers": fused,  # what fused_layers: auto chose
            "cpu_kernels": kernels,  # what cpu_kernels: auto chose (they run with one torch thread)
            "optimizer": cfg.optimizer.name,
            "parametrization": cfg.model.parametrization,
            "document_masking": d.document_masking,
            "train_seconds": elapsed,
            "final_loss": losses[-1]["loss"] if losses else last_loss,
            "final_val_loss": vals[-1]["val_loss"] if vals else last_val,
            "unigram_val_loss": unigram,
            "tokens_per_s": float(np.median(tps)) if tps else None,
            "mfu": float(np.median([r["mfu"] for r in losses if "mfu" in r])) if peak and losses else None,
            "resumed_from": resumed_from,
            "forced_mismatch": "; ".join(forced) or None,
            "rank_param_checksums": checksums,
            "checkpoint_path": str(ckpt.latest_checkpoint(ckpt_dir)),
            "model_path": str(model_dir),
            "report_path": str(output / "report.html"),
        }
        (output / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _full_model_state(model, sharded: bool) -> dict:
    """The whole model's weights on CPU (gathered from every rank under FSDP)."""
    if sharded:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    inner = getattr(model, "module", model)
    return {k: v.detach().cpu() for k, v in inner.state_dict().items()}


class _Bar:
    def __init__(self, total: int, done: int, note: str = ""):
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=done, unit="step", dynamic_ncols=True, leave=True, desc=note or None)
        self.note = note

    def update(self, n: int, loss: float) -> None:
        if self.note:  # e.g. "compiling": said while the first step runs, gone after it
            self.bar.set_description_str("", refresh=False)
            self.note = ""
        self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def _progress(cfg: TrainConfig, env: DistEnv, done: int, compiled: bool) -> _Bar | None:
    note = "compiling (first step)" if compiled else ""
    return _Bar(cfg.steps, done, note) if cfg.progress and env.is_main else None
