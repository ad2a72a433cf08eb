"""Deduplication: the stages run as any pipeline; this is the report over their columns."""

from __future__ import annotations

from dataengine.core.errors import DataEngineError
from dataengine.reports.dedup import dedup_report as _dedup_sections
from dataengine.api.warehouse import as_warehouse


def dedup_report(wh, table: str, top: int = 5) -> list[dict]:
    """Per dedup family (dup, url_dup, fuzzy_dup): rate, cluster-size histogram, largest clusters."""
    reports = _dedup_sections(as_warehouse(wh), table, top=top)
    if not reports:
        raise DataEngineError(f"table {table!r} has no dedup columns (run exact_dedup, url_dedup or fuzzy_dedup)")
    return reports
