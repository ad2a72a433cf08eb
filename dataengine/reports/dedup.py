"""Duplicate statistics of an annotated table, computed in DuckDB (no rows in Python), and their report."""

from __future__ import annotations

from pathlib import Path

PREFIXES = ("dup", "url_dup", "fuzzy_dup")


def cluster_histogram(warehouse, source: str, cluster: str) -> list[dict]:
    """Clusters and documents by cluster size (1, 2, 3-5, ...) of ``cluster`` over the relation ``source``."""
    return warehouse.sql(
        f"""SELECT CASE WHEN n = 1 THEN '1' WHEN n = 2 THEN '2' WHEN n <= 5 THEN '3-5'
                        WHEN n <= 10 THEN '6-10' WHEN n <= 100 THEN '11-100' ELSE '>100' END AS size,
                   count(*) AS clusters, sum(n)::BIGINT AS docs
            FROM (SELECT "{cluster}", count(*) AS n FROM {source} GROUP BY 1)
            GROUP BY 1 ORDER BY min(n)"""
    ).to_pylist()


def dedup_report(warehouse, table: str, top: int = 5) -> list[dict]:
    """Per dedup annotation found on ``table``: duplicate rate, cluster-size histogram, largest clusters."""
    columns = set(warehouse.schema(table).names)
    source = warehouse.qualify(table)
    reports = []
    for prefix in PREFIXES:
        keep, cluster = f"{prefix}_keep", f"{prefix}_cluster"
        if keep not in columns:
            continue
        totals = warehouse.sql(
            f"SELECT count(*) AS docs, count(*) FILTER (WHERE NOT {keep}) AS duplicates FROM {source}"
        ).to_pylist()[0]
        report = {"prefix": prefix, **totals,
                  "rate": totals["duplicates"] / totals["docs"] if totals["docs"] else 0.0}
        if cluster in columns:
            report["histogram"] = cluster_histogram(warehouse, source, cluster)
            url = "url" if "url" in columns else "id"
            report["largest"] = warehouse.sql(
                f"""SELECT {cluster} AS cluster, count(*) AS size, list({url} ORDER BY {url})[1:3] AS examples
                    FROM {source} WHERE {cluster} IS NOT NULL GROUP BY 1 HAVING count(*) > 1
                    ORDER BY size DESC, cluster LIMIT {int(top)}"""
            ).to_pylist()
        reports.append(report)
    return reports


def dedup_page(reports: list[dict], table: str):
    """Cluster-size charts and the largest clusters of every dedup family, as a report page."""
    from dataengine.reports import charts
    from dataengine.reports.page import Page, Section, table_html

    sections = []
    for r in reports:
        hist = r.get("histogram") or []
        figs = []
        if hist:
            figs = [charts.bar(f"{r['prefix']}: documents by cluster size", hist, "size", "docs", sort=None,
                               category_title="cluster size", value_title="documents"),
                    charts.bar(f"{r['prefix']}: clusters by size", hist, "size", "clusters", sort=None,
                               category_title="cluster size", value_title="clusters")]
        largest = [{**c, "examples": ", ".join(map(str, c["examples"]))} for c in r.get("largest") or []]
        sections.append(Section(f"{r['prefix']}: duplicate rate {r['rate']:.1%}", figs,
                                blocks=[table_html(largest)] if largest else [],
                                note=f"{r['duplicates']:,} of {r['docs']:,} documents are duplicates of a kept one"))
    facts = [(f"{r['prefix']} duplicates", f"{r['rate']:.1%}") for r in reports]
    return Page(f"duplicates in {table}", facts=facts, sections=sections)


def dedup_report_html(reports: list[dict], table: str, path) -> Path:
    """Write :func:`dedup_page` to ``path``."""
    from dataengine.reports.page import write_page

    return write_page(dedup_page(reports, table), path)
