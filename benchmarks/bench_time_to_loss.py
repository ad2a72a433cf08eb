"""Time to a given validation loss: our trainer's defaults vs the best-tuned Hugging Face Trainer.

Every contender trains the same LlamaForCausalLM (same preset and starting weights) on the same
packed windows in the same order (one blend version: the demo corpus = tinyshakespeare,
512-token BPE; HF reads them through a sequential sampler), with one torch thread, for the
same number of steps. The validation loss is measured every ``--eval-every`` steps on the same
held-out windows; the clock counts training only (evaluation time is left out for everyone).
The target is the final validation loss of the best HF Trainer run of an lr grid; each
contender's time to the target is the training time at its first evaluation at or below it.

Contenders:
  hf-adamw lr=X     HF Trainer, AdamW (fused), fp32, warmup + cosine, wd 0.1, beta2 0.95,
                    clipping 1.0: one run per lr of ``--hf-lrs``; the best sets the target
  hf-muon-bf16      HF Trainer given our default optimizer settings on stock torch optimizers
                    (torch.optim.Muon for the hidden matrices + fused AdamW, our default lrs,
                    parameter groups and schedule) and bf16 autocast: what is left is engineering
  ours-adamw        our trainer at the HF best run's settings (AdamW at its lr, fp32, cosine to
                    0, no document masking): engineering at equal settings
  ours-defaults     `dataengine train` with no config beyond size, batch, steps and threads

    python benchmarks/bench_time_to_loss.py                                  # the race in RESULTS.md
    python benchmarks/bench_time_to_loss.py --preset tiny --seq-len 64 --steps 150 --hf-lrs 1e-3 3e-3  # quick

Contenders run one after the other (times depend on machine load; it is recorded). Needs the
HF Trainer's `accelerate` (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from trainer_common import add_shape_args, cpu_name, git_revision, line_chart, machine_load, prepare_blend, train_one

import numpy as np  # noqa: E402  (after trainer_common put the repository on sys.path)
import torch  # noqa: E402


def _common_overrides(args) -> dict:
    return {"steps": args.steps, "model.preset": args.preset, "model.seq_len": args.seq_len,
            "data.micro_batch_size": args.batch, "data.val_samples": args.val_samples, "eval_every": args.eval_every,
            "runtime.threads": args.threads, "log_every": 1}


def run_ours(name: str, overrides: dict, args, manifest: Path, tok: Path, out: Path) -> dict:
    result = train_one({"name": name, "overrides": {**_common_overrides(args), **overrides}, "manifest": str(manifest),
                        "tokenizer": str(tok), "output": str(out)})
    s = result["summary"]
    return {"name": name, "val": result["val"], "train_seconds": s["train_seconds"], "precision": s["precision"],
            "final_val_loss": s["final_val_loss"]}


class _Windows(torch.utils.data.Dataset):
    """Our trainer's packed windows as HF Trainer examples: 256 inputs and 256 shifted targets."""

    def __init__(self, stream, n: int):
        self.stream, self.n = stream, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        w = torch.from_numpy(self.stream.reader[i].astype(np.int64))
        return {"input_ids": w[:-1], "labels": w[1:], "shift_labels": w[1:]}


class _Together(torch.optim.Optimizer):
    """Our [Muon, AdamW] pair as the single optimizer the HF Trainer takes."""

    def __init__(self, optimizers):
        self.optimizers = optimizers
        self.defaults, self.state = {}, {}
        self._optimizer_step_pre_hooks, self._optimizer_step_post_hooks = {}, {}

    @property
    def param_groups(self):  # live: load_state_dict replaces the inner optimizers' group dicts
        return [g for o in self.optimizers for g in o.param_groups]

    def step(self, closure=None):
        for o in self.optimizers:
            o.step()

    def zero_grad(self, set_to_none: bool = True):
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict):
        for o, s in zip(self.optimizers, state_dict["optimizers"], strict=True):
            o.load_state_dict(s)


def run_hf(name: str, args, manifest: Path, lr: float | None, ours_optimizer: bool, bf16: bool, out: Path) -> dict:
    """One HF Trainer run; returns its validation curve against training seconds."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from dataengine.trainer.config import TrainConfig
    from dataengine.trainer.data import TrainStream, validation_batches
    from dataengine.trainer.distributed import DistEnv
    from dataengine.trainer.loop import build_parametrized_model, evaluate
    from dataengine.trainer.model import model_config
    from dataengine.trainer.optim import lr_factor, parameter_groups

    torch.set_num_threads(args.threads)
    m = json.loads(manifest.read_text())
    cfg = TrainConfig.model_validate({"steps": args.steps, "model": {"preset": args.preset, "seq_len": args.seq_len}})
    model, multipliers = build_parametrized_model(model_config(args.preset, m["vocab_size"], m["eos_id"], args.seq_len), cfg)
    stream = TrainStream(m, args.seq_len, None, args.batch, 1, 1, args.steps, cfg.data.val_fraction)
    val = validation_batches(m, args.seq_len, cfg.data.val_fraction, args.val_samples, args.batch)
    env = DistEnv(0, 1, 0, torch.device("cpu"))
    clock = {"elapsed": 0.0, "t0": None}
    curve: list[tuple[int, float, float]] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            if clock["t0"] is None:
                clock["t0"] = time.perf_counter()

        def on_step_end(self, a, state, control, model=None, **kw):
            now = time.perf_counter()
            clock["elapsed"] += now - clock["t0"]
            if state.global_step % args.eval_every == 0 or state.global_step == args.steps:
                curve.append((state.global_step, evaluate(model, val, env, bf16, None), clock["elapsed"]))
            clock["t0"] = time.perf_counter()  # evaluation time is not training time

    optimizers = (None, None)
    if ours_optimizer:
        o, groups = cfg.optimizer, parameter_groups(model, cfg.optimizer, multipliers)
        opt = _Together([torch.optim.Muon(groups["muon"], lr=o.muon_lr, momentum=o.muon_momentum, nesterov=True,
                                          adjust_lr_fn=o.muon_adjust_lr),
                         torch.optim.AdamW(groups["adamw"], lr=o.lr, betas=o.betas, eps=o.eps, fused=True)])
        optimizers = (opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, args.steps, cfg.schedule)))
    targs = TrainingArguments(
        output_dir=str(out), max_steps=args.steps, per_device_train_batch_size=args.batch,
        learning_rate=lr or cfg.optimizer.lr, weight_decay=0.1, adam_beta2=0.95, max_grad_norm=1.0,
        warmup_steps=args.warmup, lr_scheduler_type="cosine", logging_steps=args.steps, save_strategy="no",
        report_to=[], use_cpu=True, bf16=bf16, dataloader_num_workers=0, seed=0, disable_tqdm=True,
        train_sampling_strategy="sequential", remove_unused_columns=False,
    )
    Trainer(model=model, args=targs, train_dataset=_Windows(stream, args.steps * args.batch), optimizers=optimizers,
            callbacks=[Clock()]).train()
    assert torch.get_num_threads() == args.threads, "the HF Trainer changed the thread count"
    return {"name": name, "val": curve, "train_seconds": clock["elapsed"], "precision": "bf16" if bf16 else "fp32",
            "final_val_loss": curve[-1][1]}


def time_to(target: float, val: list) -> tuple[float | None, int | None]:
    """(training seconds, step) at the first evaluation at or below ``target``."""
    for step, loss, seconds in val:
        if loss <= target + 1e-12:
            return seconds, step
    return None, None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shape_args(ap, steps=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=20, help="HF runs' and ours-adamw's warmup steps")
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--val-samples", type=int, default=64)
    ap.add_argument("--hf-lrs", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3])
    ap.add_argument("--only", nargs="+", help="run only contenders whose name starts with one of these")
    ap.add_argument("--target", type=float, help="use this target loss instead of the HF grid's best")
    ap.add_argument("--json", type=Path, default=Path("time_to_loss.json"))
    ap.add_argument("--svg", type=Path)
    args = ap.parse_args()
    load_start, started = machine_load(), time.time()
    wanted = lambda name: not args.only or any(name.startswith(o) for o in args.only)  # noqa: E731
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest, tok = prepare_blend(tmp)
        for lr in args.hf_lrs:
            if wanted(f"hf-adamw lr={lr:g}"):
                results.append(run_hf(f"hf-adamw lr={lr:g}", args, manifest, lr, False, False, tmp / f"hf{lr}"))
                print(json.dumps({k: results[-1][k] for k in ("name", "final_val_loss", "train_seconds")}), flush=True)
        hf = [r for r in results if r["name"].startswith("hf-adamw")]
        best_hf = min(hf, key=lambda r: r["final_val_loss"]) if hf else None
        best_lr = float(best_hf["name"].split("=")[1]) if best_hf else 1e-3
        contenders = [
            ("hf-muon-bf16", lambda: run_hf("hf-muon-bf16", args, manifest, None, True, True, tmp / "hfmuon")),
            ("ours-adamw", lambda: run_ours(f"ours-adamw lr={best_lr:g}", {
                "optimizer.name": "adamw", "optimizer.lr": best_lr, "runtime.precision": "fp32",
                "schedule.kind": "cosine", "schedule.warmup_steps": args.warmup, "schedule.min_lr_ratio": 0.0,
                "data.document_masking": False}, args, manifest, tok, tmp / "ours-adamw")),
            ("ours-defaults", lambda: run_ours("ours-defaults", {}, args, manifest, tok, tmp / "ours-defaults")),
        ]
        for name, run in contenders:
            if wanted(name):
                results.append(run())
                print(json.dumps({k: results[-1][k] for k in ("name", "final_val_loss", "train_seconds")}), flush=True)
    target = args.target if args.target is not None else (best_hf["final_val_loss"] if best_hf else None)
    reference = best_hf["train_seconds"] if best_hf else None
    hf_muon = next((r for r in results if r["name"] == "hf-muon-bf16"), None)
    hf_muon_time = time_to(target, hf_muon["val"])[0] if hf_muon and target is not None else None
    lines = [(f"target: validation loss {target:.4f}" if target is not None else "no target (no HF grid, no --target)")
             + (f" ({best_hf['name']}, final)" if best_hf else ""),
             "| contender | precision | final val loss | training s (all steps) | s to target | step | vs best HF | vs hf-muon-bf16 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        seconds, step = time_to(target, r["val"]) if target is not None else (None, None)
        r["seconds_to_target"], r["step_to_target"] = seconds, step
        ratio = f"{seconds / reference:.2f}x" if seconds and reference else "-"
        ratio_muon = f"{seconds / hf_muon_time:.2f}x" if seconds and hf_muon_time else "-"
        lines.append(f"| {r['name']} | {r['precision']} | {r['final_val_loss']:.4f} | {r['train_seconds']:.1f} | "
                     f"{'never' if seconds is None else f'{seconds:.1f}'} | {step or '-'} | {ratio} | {ratio_muon} |")
    machine = (f"{cpu_name()} ({platform.machine()}), {args.threads} torch thread(s), torch {torch.__version__}, "
               f"load {load_start} at start / {machine_load()} at end, {time.time() - started:.0f} s wall, "
               f"revision {git_revision()}")
    print("\n" + machine + "\n" + "\n".join(lines))
    args.json.write_text(json.dumps({"machine": machine, "args": {k: str(v) for k, v in vars(args).items()},
                                     "target": target, "results": results}, indent=1))
    if args.svg and target is not None:
        args.svg.parent.mkdir(parents=True, exist_ok=True)
        series = [(r["name"], [(s, v) for _, v, s in r["val"]]) for r in results]
        args.svg.write_text(line_chart(series, f"validation loss vs training time ({args.preset}, {args.steps} steps)",
                                       "training seconds (evaluation excluded)", "validation loss",
                                       hline=(f"target {target:.3f}", target),
                                       y_range=(min(v for _, s in series for _, v in s), target + 1.0)))


if __name__ == "__main__":
    main()
