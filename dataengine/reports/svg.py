"""Self-contained HTML reports with inline SVG charts (no JavaScript, no network).

Things a person would rather look at than read (blend composition, cluster sizes, score
distributions) are written as one HTML file that opens anywhere, offline.
"""

from __future__ import annotations

import html
from pathlib import Path

_PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]


def bar_chart(title: str, labels: list[str], values: list[float], unit: str = "", width: int = 640) -> str:
    """Horizontal bar chart as an SVG string."""
    row, left, pad = 26, 180, 10
    height = pad * 2 + row * max(1, len(labels)) + 24
    top = max(values) if values and max(values) > 0 else 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">']
    parts.append(f'<text x="{pad}" y="16" font-size="14" font-weight="bold">{html.escape(title)}</text>')
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 24 + pad + i * row
        w = (width - left - 90) * (value / top)
        parts.append(f'<text x="{left - 6}" y="{y + 16}" font-size="12" text-anchor="end">{html.escape(str(label))}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{_PALETTE[i % len(_PALETTE)]}"/>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 16}" font-size="12">{_fmt(value)}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, series: dict[str, list[tuple[float, float]]], x_label: str = "", y_label: str = "",
               width: int = 640, height: int = 320) -> str:
    """Line chart of one or more (x, y) series as an SVG string."""
    pad_l, pad_r, pad_t, pad_b = 56, 16, 28, 36
    points = [p for s in series.values() for p in s]
    if not points:
        return f"<p>{html.escape(title)}: no data</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def sx(x):
        return pad_l + (x - x0) / (x1 - x0) * (width - pad_l - pad_r)

    def sy(y):
        return height - pad_b - (y - y0) / (y1 - y0) * (height - pad_t - pad_b)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">']
    parts.append(f'<text x="{pad_l}" y="16" font-size="14" font-weight="bold">{html.escape(title)}</text>')
    parts.append(f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" stroke="#888"/>')
    parts.append(f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{height - pad_b}" stroke="#888"/>')
    for v in (y0, (y0 + y1) / 2, y1):
        parts.append(f'<text x="{pad_l - 4}" y="{sy(v) + 4:.1f}" font-size="11" text-anchor="end">{_fmt(v)}</text>')
    for v in (x0, x1):
        parts.append(f'<text x="{sx(v):.1f}" y="{height - pad_b + 14}" font-size="11" text-anchor="middle">{_fmt(v)}</text>')
    parts.append(f'<text x="{(width + pad_l) / 2}" y="{height - 6}" font-size="12" text-anchor="middle">{html.escape(x_label)}</text>')
    parts.append(f'<text x="12" y="{(height) / 2}" font-size="12" transform="rotate(-90 12 {height / 2})" text-anchor="middle">{html.escape(y_label)}</text>')
    for i, (name, pts) in enumerate(series.items()):
        color = _PALETTE[i % len(_PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{path}"/>')
        parts.append(f'<text x="{width - pad_r - 4}" y="{pad_t + 14 * (i + 1)}" font-size="12" fill="{color}" text-anchor="end">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def table_html(rows: list[dict]) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(path: str | Path, title: str, sections: list[tuple[str, str]]) -> Path:
    """Write ``sections`` ([(heading, html)]) as one self-contained HTML file."""
    body = "".join(f"<section><h2>{html.escape(h)}</h2>{content}</section>" for h, content in sections)
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:960px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#f3f3f3}section{margin-bottom:2em}"
        f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else str(v)
