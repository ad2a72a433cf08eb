"""Shared by the trainer benchmarks: the benchmark blend, running our trainer on a grid of
configs in parallel worker processes, and a small SVG line chart for RESULTS.md.

Runs in a grid are independent processes with one torch thread each, so several can share a
machine without changing any loss (our runs are deterministic); only times depend on load,
which is why the time race (bench_time_to_loss.py) runs its contenders one after the other.
"""

from __future__ import annotations

import html
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def machine_load() -> str:
    """The 1/5/15-minute load averages, for the record of a benchmark run."""
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def add_shape_args(ap, steps: int, steps_help: str | None = None) -> None:
    """The options every trainer benchmark shares: model preset, window length, batch, steps."""
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=steps, help=steps_help)


def prepare_blend(folder: Path) -> tuple[Path, Path]:
    """The benchmark blend version (demo corpus = tinyshakespeare, 512-token BPE): manifest and tokenizer files."""
    from bench_trainer import build_blend

    manifest, tok = build_blend(folder / "wh")
    manifest_path, tok_path = folder / "manifest.json", folder / "tokenizer.json"
    manifest_path.write_text(json.dumps(manifest))
    tok.tokenizer.save(str(tok_path))
    return manifest_path, tok_path


def train_one(job: dict) -> dict:
    """Train one config (``job["overrides"]``: dotted keys) and return its summary and metrics."""
    import torch
    from tokenizers import Tokenizer

    from dataengine.trainer.config import load_config
    from dataengine.trainer.loop import train

    torch.set_num_threads(1)
    if job.get("ablation"):  # lr_sweep.py --ablate: patch this worker's parametrization before training
        from lr_sweep import apply_ablation

        apply_ablation(job["ablation"])
    manifest = json.loads(Path(job["manifest"]).read_text())
    tokenizer = Tokenizer.from_file(job["tokenizer"])
    cfg = load_config(None, {"progress": False, "checkpoint_every": 10**9, "keep_checkpoints": 1, **job["overrides"]})
    out = Path(job["output"])
    summary = train(manifest, cfg, out, tokenizer, resume=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"name": job["name"], "overrides": job["overrides"], "summary": summary,
            "val": [(r["step"], r["val_loss"], r["elapsed_s"]) for r in rows if "val_loss" in r],
            "train": [(r["step"], r["loss"], r["elapsed_s"]) for r in rows if "loss" in r]}


def _worker(job: dict) -> dict:
    try:
        return train_one(job)
    except Exception as exc:  # a diverging config must not end the grid
        return {"name": job["name"], "overrides": job["overrides"], "error": f"{type(exc).__name__}: {exc}"}


def run_grid(jobs: list[dict], parallel: int, on_result=None) -> list[dict]:
    """Run ``jobs`` in ``parallel`` fresh processes (spawned: no state shared with the parent)."""
    ctx = multiprocessing.get_context("spawn")
    results = []
    with ctx.Pool(parallel, maxtasksperchild=1) as pool:
        for result in pool.imap_unordered(_worker, jobs):
            results.append(result)
            if on_result:
                on_result(result)
    order = {j["name"]: i for i, j in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r["name"]])


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]


def line_chart(series: list[tuple[str, list[tuple[float, float]]]], title: str, x_label: str, y_label: str,
               log_x: bool = False, hline: tuple[str, float] | None = None, width: int = 720, height: int = 360,
               y_range: tuple[float, float] | None = None) -> str:
    """A standalone SVG of named (x, y) series, with an optional dashed horizontal reference line."""
    import math

    pad_l, pad_r, pad_t, pad_b = 56, 190, 36, 44
    fx = (lambda x: math.log10(x)) if log_x else (lambda x: x)
    pts = [(fx(x), y) for _, s in series for x, y in s if y == y]
    if not pts:
        return ""
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    ys = [p[1] for p in pts] + ([hline[1]] if hline else [])
    y0, y1 = y_range or (min(ys), max(ys))
    y0, y1 = y0 - 0.03 * (y1 - y0 or 1), y1 + 0.03 * (y1 - y0 or 1)
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    px = lambda x: pad_l + (fx(x) - x0) / max(x1 - x0, 1e-12) * pw  # noqa: E731
    py = lambda y: pad_t + ph - (min(max(y, y0), y1) - y0) / max(y1 - y0, 1e-12) * ph  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'style="font:12px sans-serif;background:#fff">',
           f'<text x="{pad_l}" y="20" font-weight="bold">{html.escape(title)}</text>',
           f'<rect x="{pad_l}" y="{pad_t}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        out.append(f'<line x1="{pad_l}" x2="{pad_l + pw}" y1="{py(yv):.1f}" y2="{py(yv):.1f}" stroke="#eee"/>'
                   f'<text x="{pad_l - 6}" y="{py(yv) + 4:.1f}" text-anchor="end">{yv:.2f}</text>')
    xs = sorted({x for _, s in series for x, _ in s})
    ticks = xs if log_x and len(xs) <= 12 else [10 ** (x0 + (x1 - x0) * i / 4) if log_x else x0 + (x1 - x0) * i / 4
                                               for i in range(5)]
    for xv in ticks:
        label = f"{xv:.3g}" if log_x else f"{xv:.0f}"
        out.append(f'<text x="{px(xv):.1f}" y="{pad_t + ph + 16}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{pad_l + pw / 2}" y="{height - 8}" text-anchor="middle">{html.escape(x_label)}</text>'
               f'<text x="14" y="{pad_t + ph / 2}" transform="rotate(-90 14 {pad_t + ph / 2})" '
               f'text-anchor="middle">{html.escape(y_label)}</text>')
    if hline:
        out.append(f'<line x1="{pad_l}" x2="{pad_l + pw}" y1="{py(hline[1]):.1f}" y2="{py(hline[1]):.1f}" '
                   f'stroke="#555" stroke-dasharray="5,4"/>'
                   f'<text x="{pad_l + pw - 4}" y="{py(hline[1]) - 4:.1f}" text-anchor="end" fill="#555">'
                   f'{html.escape(hline[0])}</text>')
    for i, (name, s) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        dash = ' stroke-dasharray="6,3"' if name.endswith("(standard)") else ""
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s if y == y)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8"{dash} points="{coords}">'
                   f'<title>{html.escape(name)}</title></polyline>')
        if len(s) <= 12:
            out.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}"/>' for x, y in s if y == y)
        ly = pad_t + 14 + 16 * i
        out.append(f'<line x1="{pad_l + pw + 12}" x2="{pad_l + pw + 32}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="2"{dash}/>'
                   f'<text x="{pad_l + pw + 36}" y="{ly}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)
