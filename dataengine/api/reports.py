"""HTML reports a person looks at: blend composition, duplicate clusters."""

from __future__ import annotations

from pathlib import Path

from dataengine.reports.blend import blend_report as _blend_report
from dataengine.reports.dedup import dedup_report_html
from dataengine.api.blends import blend_version
from dataengine.api.dedup import dedup_report


def blend_report(wh, ref: str, path: str | Path) -> Path:
    """Write a blend version's composition (weights, tokens, rows per component) to ``path``."""
    return _blend_report(blend_version(wh, ref), path)


def dedup_report_file(wh, table: str, path: str | Path, top: int = 5) -> Path:
    """Write a table's duplicate-cluster report to ``path``."""
    return dedup_report_html(dedup_report(wh, table, top=top), table, path)
