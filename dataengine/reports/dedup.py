"""Duplicate statistics of an annotated table, computed in DuckDB (no rows in Python)."""

from __future__ import annotations

PREFIXES = ("dup", "url_dup", "fuzzy_dup")


def dedup_report(warehouse, table: str, top: int = 5) -> list[dict]:
    """Per dedup annotation found on ``table``: duplicate rate, cluster-size histogram, largest clusters."""
    columns = set(warehouse.schema(table).names)
    reports = []
    for prefix in PREFIXES:
        keep, cluster = f"{prefix}_keep", f"{prefix}_cluster"
        if keep not in columns:
            continue
        totals = warehouse.sql(
            f"SELECT count(*) AS docs, count(*) FILTER (WHERE NOT {keep}) AS duplicates FROM {table}"
        ).to_pylist()[0]
        report = {"prefix": prefix, **totals,
                  "rate": totals["duplicates"] / totals["docs"] if totals["docs"] else 0.0}
        if cluster in columns:
            report["histogram"] = warehouse.sql(
                f"""SELECT CASE WHEN n = 1 THEN '1' WHEN n = 2 THEN '2' WHEN n <= 5 THEN '3-5'
                                WHEN n <= 10 THEN '6-10' WHEN n <= 100 THEN '11-100' ELSE '>100' END AS size,
                           count(*) AS clusters, sum(n) AS docs
                    FROM (SELECT {cluster}, count(*) AS n FROM {table} GROUP BY 1)
                    GROUP BY 1 ORDER BY min(n)"""
            ).to_pylist()
            url = "url" if "url" in columns else "id"
            report["largest"] = warehouse.sql(
                f"""SELECT {cluster} AS cluster, count(*) AS size, list({url} ORDER BY {url})[1:3] AS examples
                    FROM {table} WHERE {cluster} IS NOT NULL GROUP BY 1 HAVING count(*) > 1
                    ORDER BY size DESC, cluster LIMIT {int(top)}"""
            ).to_pylist()
        reports.append(report)
    return reports


def dedup_report_html(reports: list[dict], table: str, path) -> "Path":
    """Cluster-size charts and the largest clusters of every dedup family, as one HTML file."""
    from dataengine.reports.svg import bar_chart, table_html, write_report

    sections = []
    for r in reports:
        hist = r.get("histogram") or []
        sections.append((f"{r['prefix']}: duplicate rate {r['rate']:.1%}",
                         bar_chart("documents by cluster size", [h["size"] for h in hist], [float(h["docs"]) for h in hist])
                         + table_html(r.get("largest") or [])))
    return write_report(path, f"duplicates in {table}", sections)
