"""A blend version's composition as an HTML report: weights, tokens and rows per component."""

from __future__ import annotations

from pathlib import Path

from dataengine.reports.svg import bar_chart, table_html, write_report

COLUMNS = ("component", "phase", "weight", "max_epochs", "rows", "tokens", "effective_epochs")


def blend_report(version: dict, path: str | Path) -> Path:
    """Write the report of one blend version (as returned by ``Blends.version``) to ``path``."""
    comps = version["components"]
    names = [c["component"] for c in comps]
    total_w = sum(c["weight"] for c in comps) or 1.0
    sections = [
        ("Weights (share of sampled tokens)", bar_chart("weight share", names, [100 * c["weight"] / total_w for c in comps], "%")),
        ("Tokens available", bar_chart("tokens", names, [float(c["tokens"]) for c in comps])),
        ("Documents", bar_chart("rows", names, [float(c["rows"]) for c in comps])),
        ("Components", table_html([{k: c[k] for k in COLUMNS} for c in comps])),
    ]
    title = f"{version['blend']}@{version['version']} (snapshot {version['snapshot_id']}, content {version['content_hash']})"
    return write_report(path, title, sections)
