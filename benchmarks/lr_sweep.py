"""Learning-rate sweeps of our trainer: how the defaults were chosen, and whether lr transfers across sizes.

``defaults``: the race setting of bench_time_to_loss.py (small preset, seq 256, batch 8, 300
steps, precision auto) over a grid of Muon lr x AdamW lr x schedule; the table is what the
defaults in trainer/config.py were read from.

    python benchmarks/lr_sweep.py defaults --muon-lr 0.01 0.02 0.04 --lr 0.003 0.01 --schedule wsd cosine
    python benchmarks/lr_sweep.py defaults --muon-lr 0.04 --schedule cosine --muon-momentum 0.8 0.9 0.95 --target 3.2532

``transfer``: the same lr grid (one multiplier on both the Muon and the AdamW lr) on two widths
and two depths (by default 64 and 256 wide at 2 layers, 2 and 8 layers at width 64; the
``w128-L2 w512-L2 w128-L8`` shapes are the same test one width step up), head dim 32, seq
128, batch 8, under ``model.parametrization: standard`` and ``completep``, for one or more
``--seeds`` (the table shows the mean). Under a parametrization that transfers, the best
multiplier is the same for every shape.

    python benchmarks/lr_sweep.py transfer --multipliers 0.25 0.5 1 2 4 --svg benchmarks/results/lr_transfer.svg
    python benchmarks/lr_sweep.py transfer --shapes w128-L2 w512-L2 w128-L8 --seeds 0 1
    python benchmarks/lr_sweep.py transfer --shapes w128-L2 w512-L2 --muon-adjust-lr match_rms_adamw
    python benchmarks/lr_sweep.py transfer --shapes w128-L2 w512-L2 --scale muon   # the Muon lr alone
    python benchmarks/lr_sweep.py transfer --shapes w128-L2 w512-L2 --scale muon --parametrization completep \
        --ablate spectral_init   # CompleteP with one of its pieces taken out
    python benchmarks/lr_sweep.py transfer --shapes w128-L2 w512-L2 --scale muon --batch 32   # 4x the tokens per step
    python benchmarks/lr_sweep.py transfer --shapes w64-L2 w128-L2 w128-L8 --multipliers 1 \
        --parametrization completep --muon-momentum 0.6 0.7 0.8 0.95   # momentum away from the race's shape

Runs go ``--parallel`` at a time (one torch thread each; losses do not depend on load).
Results: one JSON line per run in ``--out``, then a table on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import tempfile
import time
from pathlib import Path

from trainer_common import cpu_name, git_revision, line_chart, machine_load, prepare_blend, run_grid

import numpy as np  # noqa: E402

SHAPES = {  # name: (hidden, layers); head dim 32, MLP 3x hidden, as the presets
    "w64-L2": (64, 2),
    "w256-L2": (256, 2),
    "w64-L8": (64, 8),
    "w128-L2": (128, 2),  # the wider pair: 4 and 16 heads instead of 2 and 8
    "w512-L2": (512, 2),
    "w128-L8": (128, 8),
    "w128-L16": (128, 16),  # a depth ratio of 8 (2 -> 16) at width 128, where 2 -> 8 moved neither
    "w128-L4": (128, 4),  # the base depth: CompleteP's depth rules are all 1 there
    "w512-L4": (512, 4),
    "w1024-L2": (1024, 2),  # widths 256 -> 1024: the same ratio as 128 -> 512, one step wider
    "w256-L4": (256, 4),  # `small`'s width and depth (the base shape), to set against `tiny`'s w64-L2
}
FIRST_SHAPES = ["w64-L2", "w256-L2", "w64-L8"]


def defaults_jobs(args, manifest: Path, tok: Path, work: Path) -> list[dict]:
    jobs = []
    for muon_lr, lr, schedule, momentum in itertools.product(args.muon_lr, args.lr, args.schedule, args.muon_momentum):
        name = f"muon_lr={muon_lr} lr={lr} {schedule} momentum={momentum}"
        overrides = {"steps": args.steps, "model.preset": "small", "model.seq_len": 256, "data.micro_batch_size": 8,
                     "data.val_samples": 64, "eval_every": args.eval_every, "optimizer.name": args.optimizer,
                     "optimizer.muon_lr": muon_lr, "optimizer.lr": lr, "schedule.kind": schedule,
                     "schedule.warmup_steps": args.warmup, "optimizer.muon_momentum": momentum}
        jobs.append({"name": name, "overrides": overrides, "manifest": str(manifest), "tokenizer": str(tok),
                     "output": str(work / f"run{len(jobs)}")})
    return jobs


def transfer_jobs(args, manifest: Path, tok: Path, work: Path) -> list[dict]:
    from dataengine.trainer.config import OptimizerConfig

    base = OptimizerConfig(name=args.optimizer)
    jobs = []
    for shape, param, mult, seed, momentum in itertools.product(args.shapes, args.parametrization, args.multipliers,
                                                                args.seeds, args.muon_momentum):
        hidden, layers = SHAPES[shape]
        overrides = {
            "steps": args.steps, "model.preset": "tiny", "model.seq_len": 128, "data.micro_batch_size": args.batch,
            "model.overrides": {"hidden_size": hidden, "intermediate_size": 3 * hidden, "num_hidden_layers": layers,
                                "num_attention_heads": hidden // 32, "num_key_value_heads": hidden // 32},
            "model.parametrization": param, "runtime.precision": "fp32", "data.val_samples": 64,
            "eval_every": args.steps, "optimizer.name": args.optimizer,
            "optimizer.muon_lr": base.muon_lr * (mult if args.scale in ("both", "muon") else 1),
            "optimizer.lr": base.lr * (mult if args.scale in ("both", "adamw") or args.optimizer == "adamw" else 1),
        }
        if args.muon_adjust_lr == "match_rms_adamw":  # Moonlight's form: Muon's update RMS matched to AdamW's,
            overrides.update({"optimizer.muon_adjust_lr": "match_rms_adamw",  # so Muon takes AdamW's lr
                              "optimizer.muon_lr": base.lr * mult})
        if seed:  # a replicate: other initial weights and another sampling order (same validation set)
            overrides.update({"runtime.init_seed": seed, "data.seed": 1000 + seed})
        if momentum is not None:
            overrides["optimizer.muon_momentum"] = momentum
        jobs.append({"name": _run_name(shape, _label(param, args), mult, seed, momentum), "shape": shape,
                     "parametrization": param, "multiplier": mult, "seed": seed,
                     "ablation": args.ablate if param == "completep" else None,
                     "overrides": overrides, "manifest": str(manifest), "tokenizer": str(tok),
                     "output": str(work / f"run{len(jobs)}")})
    return jobs


def apply_ablation(name: str) -> None:
    """Take one piece out of CompleteP for this process (the grid's workers call it before training),
    to find which piece moves the Muon lr optimum with width. ``spectral_init``: Muon-trained hidden
    matrices keep transformers' init at every width (no 1/sqrt(width)); ``logit_multiplier``: the
    final norm gain keeps init, lr and epsilon 1 (no 1/width on the logits); ``width_rules``: both
    (for Muon-trained matrices this leaves only CompleteP's depth rules)."""
    from dataengine.trainer import parametrization as p

    full = p.completep

    def ablated(role, optimizer, width, depth, muon_adjust_lr="original"):
        m = full(role, optimizer, width, depth, muon_adjust_lr)
        if name in ("spectral_init", "width_rules") and optimizer == "muon" and role in ("block_input", "block_output"):
            return dataclasses.replace(m, init=m.init * math.sqrt(width))
        if name in ("logit_multiplier", "width_rules") and role == "final_norm":
            return p.Multipliers()
        return m

    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}: choose one of {', '.join(ABLATIONS)}")
    p.completep = ablated


ABLATIONS = ("spectral_init", "logit_multiplier", "width_rules")


def _label(param: str, args) -> str:
    """The parametrization's name in run names and tables, with the ablation when one applies."""
    ablation = getattr(args, "ablate", None)
    return f"{param} without {ablation}" if ablation and param == "completep" else param


def _run_name(shape: str, param: str, mult: float, seed: int, momentum: float | None) -> str:
    return f"{shape} {param} x{mult}" + (f" seed{seed}" if seed else "") + (f" m{momentum}" if momentum is not None else "")


def _final(result: dict) -> float:
    return result["summary"]["final_val_loss"] if "summary" in result else float("nan")


def fitted_optimum(multipliers: list[float], losses: list[float]) -> float | None:
    """Vertex of the parabola in log2(multiplier) through the best grid point and its two
    neighbours (the best grid point itself when it sits at the grid's edge)."""
    finite = [(v, i) for i, v in enumerate(losses) if v == v]
    if not finite:
        return None
    i = min(finite)[1]
    if i == 0 or i == len(losses) - 1 or losses[i - 1] != losses[i - 1] or losses[i + 1] != losses[i + 1]:
        return multipliers[i]
    x = [math.log2(m) for m in multipliers[i - 1:i + 2]]
    y = losses[i - 1:i + 2]
    a, b, _ = np.polyfit(x, y, 2)
    return 2 ** (-b / (2 * a)) if a > 0 else multipliers[i]


def transfer_table(results: list[dict], jobs: list[dict], args) -> tuple[str, str]:
    """A markdown table (val loss per multiplier, the mean over seeds, best in bold; the fitted
    optimum) and the SVG plot."""
    by_name = {r["name"]: r for r in results}
    lines = ["| shape | parametrization | " + " | ".join(f"x{m}" for m in args.multipliers) + " | best | fitted optimum |",
             "|---|---|" + "---|" * (len(args.multipliers) + 2)]
    series = []
    for shape, param, momentum in itertools.product(args.shapes, args.parametrization, args.muon_momentum):
        vals = []
        for m in args.multipliers:
            runs = [_final(by_name[_run_name(shape, _label(param, args), m, s, momentum)]) for s in args.seeds]
            vals.append(float(np.mean(runs)) if all(v == v for v in runs) else float("nan"))
        finite = [(v, m) for v, m in zip(vals, args.multipliers) if v == v]
        best = min(finite)[1] if finite else None
        fit = fitted_optimum(args.multipliers, vals)
        cells = [("**%.3f**" if m == best else "%.3f") % v if v == v else "diverged" for v, m in zip(vals, args.multipliers)]
        label = _label(param, args) + ("" if momentum is None else f", momentum {momentum}")
        lines.append(f"| {shape} | {label} | " + " | ".join(cells) + f" | x{best} | "
                     + (f"x{fit:.2f}" if fit else "-") + " |")
        series.append((f"{shape} ({label})", [(m, v) for v, m in zip(vals, args.multipliers)]))
    finite = [y for _, s in series for _, y in s if y == y]
    seeds = f", mean of {len(args.seeds)} seeds" if len(args.seeds) > 1 else ""
    svg = line_chart(series, f"lr transfer ({args.optimizer}): final validation loss after {args.steps} steps{seeds}",
                     {"both": "lr multiplier (x the default Muon and AdamW lr)",
                      "muon": "Muon lr multiplier (AdamW lr at its default)",
                      "adamw": "AdamW lr multiplier (Muon lr at its default)"}[getattr(args, "scale", "both")],
                     "validation loss", log_x=True,
                     y_range=(min(finite), min(max(finite), min(finite) + 1.5)) if finite else None)
    return "\n".join(lines), svg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="grid", required=True)
    d = sub.add_parser("defaults")
    d.add_argument("--muon-lr", type=float, nargs="+", default=[0.01, 0.02, 0.04])
    d.add_argument("--lr", type=float, nargs="+", default=[3e-3])
    d.add_argument("--schedule", nargs="+", default=["wsd"])
    d.add_argument("--muon-momentum", type=float, nargs="+", default=[0.95])
    d.add_argument("--warmup", type=int, default=20)
    d.add_argument("--target", type=float, help="a validation loss; the table adds the first step that reaches it")
    d.add_argument("--steps", type=int, default=300)
    d.add_argument("--eval-every", type=int, default=25)
    t = sub.add_parser("transfer")
    t.add_argument("--multipliers", type=float, nargs="+", default=[0.25, 0.5, 1, 2, 4])
    t.add_argument("--shapes", nargs="+", default=FIRST_SHAPES, choices=list(SHAPES))
    t.add_argument("--seeds", type=int, nargs="+", default=[0], help="init/sampling seeds; the table shows the mean")
    t.add_argument("--parametrization", nargs="+", default=["standard", "completep"])
    t.add_argument("--steps", type=int, default=200)
    t.add_argument("--batch", type=int, default=8, help="windows of 128 tokens per step")
    t.add_argument("--muon-momentum", type=float, nargs="+", default=[None],
                   help="Muon momenta to cross with the grid (default: the config's)")
    t.add_argument("--muon-adjust-lr", default="original", choices=["original", "match_rms_adamw"],
                   help="match_rms_adamw: Muon's update scaled to AdamW's RMS and run at AdamW's lr")
    t.add_argument("--scale", default="both", choices=["both", "muon", "adamw"],
                   help="which learning rate the multiplier scales (with Muon: the hidden matrices' Muon lr, "
                        "the AdamW lr of embeddings, head and norms, or both); the other stays at its default")
    t.add_argument("--ablate", choices=ABLATIONS,
                   help="take this piece out of completep (see apply_ablation); standard runs are unchanged")
    t.add_argument("--svg", type=Path)
    for p in (d, t):
        p.add_argument("--optimizer", default="muon", choices=["muon", "adamw"])
        p.add_argument("--parallel", type=int, default=2)
        p.add_argument("--out", type=Path, default=Path("lr_sweep.jsonl"))
    args = ap.parse_args()
    started, load = time.time(), machine_load()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest, tok = prepare_blend(tmp)
        jobs = (defaults_jobs if args.grid == "defaults" else transfer_jobs)(args, manifest, tok, tmp)

        def report(r):
            with open(args.out, "a") as fh:
                fh.write(json.dumps({k: v for k, v in r.items() if k != "train"}) + "\n")
            print(f"{r['name']}: " + (f"val {_final(r):.4f}" if "summary" in r else r["error"]), flush=True)

        results = run_grid(jobs, args.parallel, report)
    print(f"\n{cpu_name()}, {args.parallel} runs at a time, load {load} at start, {time.time() - started:.0f} s, "
          f"revision {git_revision()}")
    if args.grid == "defaults":
        target = [] if args.target is None else [f"step to {args.target}"]
        print("| config | " + " | ".join([f"val@{s}" for s, _, _ in results[0].get("val", [])] + target) + " |")
        for r in results:
            cells = [f"{v:.3f}" for _, v, _ in r.get("val", [])]
            if target:
                cells.append(str(next((s for s, v, _ in r.get("val", []) if v <= args.target), "never")))
            print(f"| {r['name']} | " + " | ".join(cells) + " |")
    else:
        table, svg = transfer_table(results, jobs, args)
        print(table)
        if args.svg:
            args.svg.parent.mkdir(parents=True, exist_ok=True)
            args.svg.write_text(svg)


if __name__ == "__main__":
    main()
