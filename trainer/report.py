"""A self-contained HTML report of a training run: loss curves as inline SVG, no scripts.

Inline SVG keeps the file small, opens offline in any browser, and needs no plotting package.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

WIDTH, HEIGHT, PAD = 720, 320, 48


def _polyline(points: list[tuple[float, float]], x_range, y_range, color: str, label: str) -> str:
    (x0, x1), (y0, y1) = x_range, y_range
    sx = (WIDTH - 2 * PAD) / max(x1 - x0, 1e-9)
    sy = (HEIGHT - 2 * PAD) / max(y1 - y0, 1e-9)
    coords = " ".join(f"{PAD + (x - x0) * sx:.1f},{HEIGHT - PAD - (y - y0) * sy:.1f}" for x, y in points)
    dots = ""
    if len(points) <= 60:  # mark sparse series (validation) point by point
        dots = "".join(
            f'<circle cx="{PAD + (x - x0) * sx:.1f}" cy="{HEIGHT - PAD - (y - y0) * sy:.1f}" r="3" fill="{color}"/>'
            for x, y in points
        )
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"><title>{label}</title></polyline>{dots}'


def loss_svg(train: list[tuple[int, float]], val: list[tuple[int, float]], baseline: float | None) -> str:
    """Train and validation loss against step, with the unigram baseline as a dashed line."""
    series = train + val
    if not series:
        return "<p>no metrics recorded</p>"
    xs = [x for x, _ in series]
    ys = [y for _, y in series] + ([baseline] if baseline else [])
    x_range, y_range = (min(xs), max(xs)), (min(ys) * 0.95, max(ys) * 1.02)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'aria-label="loss curve" style="font:12px sans-serif">',
             f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" fill="#fafafa" stroke="#ccc"/>']
    for i in range(5):  # y grid and labels
        y = y_range[0] + (y_range[1] - y_range[0]) * i / 4
        py = HEIGHT - PAD - (HEIGHT - 2 * PAD) * i / 4
        parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{py:.1f}" y2="{py:.1f}" stroke="#eee"/>'
                     f'<text x="{PAD - 6}" y="{py + 4:.1f}" text-anchor="end">{y:.2f}</text>')
    for i in range(5):  # x labels
        x = x_range[0] + (x_range[1] - x_range[0]) * i / 4
        px = PAD + (WIDTH - 2 * PAD) * i / 4
        parts.append(f'<text x="{px:.1f}" y="{HEIGHT - PAD + 16}" text-anchor="middle">{x:.0f}</text>')
    if baseline:
        py = HEIGHT - PAD - (baseline - y_range[0]) * (HEIGHT - 2 * PAD) / max(y_range[1] - y_range[0], 1e-9)
        parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{py:.1f}" y2="{py:.1f}" stroke="#999" '
                     f'stroke-dasharray="5,4"><title>unigram baseline {baseline:.3f}</title></line>')
    if train:
        parts.append(_polyline(train, x_range, y_range, "#1f77b4", "train loss"))
    if val:
        parts.append(_polyline(val, x_range, y_range, "#d62728", "validation loss"))
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle">step</text>')
    parts.append(f'<text x="{PAD}" y="{PAD - 12}" fill="#1f77b4">train loss</text>'
                 f'<text x="{PAD + 90}" y="{PAD - 12}" fill="#d62728">validation loss</text>'
                 f'<text x="{PAD + 210}" y="{PAD - 12}" fill="#999">unigram baseline (dashed)</text></svg>')
    return "".join(parts)


def read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_report(path: Path, metrics: list[dict], summary: dict, config: dict) -> Path:
    """Write the HTML report; returns its path."""
    train = [(m["step"], m["loss"]) for m in metrics if "loss" in m]
    val = [(m["step"], m["val_loss"]) for m in metrics if "val_loss" in m]
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in summary.items())
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>training run {html.escape(str(summary.get('run_id', '')))}</title>
<style>body{{font:14px sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
th,td{{text-align:left;padding:2px 10px;border-bottom:1px solid #eee}}pre{{background:#f6f6f6;padding:1em}}</style>
</head><body>
<h1>Training run on {html.escape(str(summary.get('blend_ref', '')))}</h1>
{loss_svg(train, val, summary.get('unigram_val_loss'))}
<h2>Summary</h2><table>{rows}</table>
<h2>Config</h2><pre>{html.escape(json.dumps(config, indent=1))}</pre>
</body></html>
"""
    path.write_text(body)
    return path


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
