"""The HTML report of a post-training run: one inline-SVG chart per group of metrics, resets marked.

Self-contained like the pretraining report (no scripts, opens offline). GRPO's reference
resets are drawn as dashed vertical lines on every chart and listed in a table.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

WIDTH, HEIGHT, PAD = 720, 260, 48
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")

#: (chart title, metric keys drawn on it); a chart appears when any of its keys was logged.
CHARTS = (
    ("loss", ("loss", "val_loss")),
    ("reward", ("reward", "reward_kept", "val_reward")),
    ("accuracy", ("accuracy", "val_accuracy")),
    ("reward margin (chosen - rejected)", ("margin", "val_margin")),
    ("KL to the reference and its share of the loss", ("kl", "kl_share")),
    ("entropy and clipped-token fraction", ("entropy", "clip_frac")),
    ("dynamic sampling: groups dropped per step", ("groups_dropped",)),
    ("rollout share of step time", ("rollout_share",)),
)


def line_chart(title: str, series: dict[str, list[tuple[float, float]]], markers: list[float]) -> str:
    points = [p for s in series.values() for p in s]
    if not points:
        return ""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x0, x1 = min(xs + markers), max(xs + markers)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    sx = (WIDTH - 2 * PAD) / max(x1 - x0, 1e-9)
    sy = (HEIGHT - 2 * PAD) / (y1 - y0)

    def px(x: float) -> float:
        return PAD + (x - x0) * sx

    def py(y: float) -> float:
        return HEIGHT - PAD - (y - y0) * sy

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'aria-label="{html.escape(title)}" style="font:12px sans-serif">',
             f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" fill="#fafafa" stroke="#ccc"/>']
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        parts.append(f'<text x="{PAD - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
        x = x0 + (x1 - x0) * i / 4
        parts.append(f'<text x="{px(x):.1f}" y="{HEIGHT - PAD + 16}" text-anchor="middle">{x:.0f}</text>')
    for m in markers:
        parts.append(f'<line class="reset" x1="{px(m):.1f}" x2="{px(m):.1f}" y1="{PAD}" y2="{HEIGHT - PAD}" '
                     f'stroke="#999" stroke-dasharray="4,3"><title>reference reset at step {m:.0f}</title></line>')
    for k, (name, pts) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}">'
                     f'<title>{html.escape(name)}</title></polyline>')
        if len(pts) <= 40:
            parts.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}"/>' for x, y in pts)
        parts.append(f'<text x="{PAD + 120 * k}" y="{PAD - 12}" fill="{color}">{html.escape(name)}</text>')
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle">step</text></svg>')
    return f"<h2>{html.escape(title)}</h2>" + "".join(parts)


def write_post_report(path: Path, metrics: list[dict], summary: dict, config: dict) -> Path:
    resets = [m for m in metrics if m.get("event") == "reference_reset"]
    markers = [float(m["step"]) for m in resets]
    charts = []
    for title, keys in CHARTS:
        series = {k: [(m["step"], m[k]) for m in metrics if isinstance(m.get(k), (int, float))] for k in keys}
        series = {k: v for k, v in series.items() if v}
        if series:
            charts.append(line_chart(title, series, markers))
    reset_rows = "".join(
        f"<tr><td>{m['step']}</td><td>{html.escape(str(m.get('reason')))}</td><td>{_fmt(m.get('kl'))}</td>"
        f"<td>{_fmt(m.get('kl_share'))}</td></tr>" for m in resets)
    reset_table = (f"<h2>Reference resets ({len(resets)})</h2><table><tr><th>step</th><th>reason</th><th>KL</th>"
                   f"<th>KL share</th></tr>{reset_rows}</table>") if summary.get("stage") == "grpo" else ""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in summary.items())
    title = f"{summary.get('stage', '').upper()} on {summary.get('blend_ref', '')} from {summary.get('init_model', '')}"
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font:14px sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
th,td{{text-align:left;padding:2px 10px;border-bottom:1px solid #eee}}pre{{background:#f6f6f6;padding:1em}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
{''.join(charts)}
{reset_table}
<h2>Summary</h2><table>{rows}</table>
<h2>Config</h2><pre>{html.escape(json.dumps(config, indent=1))}</pre>
</body></html>
"""
    path.write_text(body)
    return path


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return json.dumps(v, default=str)
    return str(v)
