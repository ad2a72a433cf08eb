"""`dataengine dedup report TABLE`."""

from __future__ import annotations

import typer
from rich.table import Table

from dataengine.core.errors import DataEngineError

dedup_app = typer.Typer(no_args_is_help=True, help="Deduplication reports.")


@dedup_app.command("report")
def report(
    table: str,
    top: int = typer.Option(5, help="largest clusters to show"),
    html: str = typer.Option(None, "--html", help="also write cluster-size charts as an HTML report"),
):
    """Duplicate rate, cluster size histogram and largest clusters with example URLs."""
    from dataengine.cli.common import _open, _out
    from dataengine.filters.dedup_report import dedup_report

    reports = dedup_report(_open(), table, top=top)
    if not reports:
        raise DataEngineError(f"table {table!r} has no dedup columns (run exact_dedup, url_dedup or fuzzy_dedup)")
    for r in reports:
        _out(f"[bold]{r['prefix']}[/bold]: {r['duplicates']:,} of {r['docs']:,} documents flagged, duplicate rate {r['rate']:.1%}")
        if r.get("histogram"):
            t = Table(title=f"{r['prefix']} cluster sizes")
            for c in ("size", "clusters", "docs"):
                t.add_column(c, justify="right")
            for h in r["histogram"]:
                t.add_row(h["size"], f"{h['clusters']:,}", f"{h['docs']:,}")
            _out(t)
        if r.get("largest"):
            t = Table(title=f"{r['prefix']} largest clusters")
            for c in ("cluster", "size", "examples"):
                t.add_column(c)
            for c in r["largest"]:
                t.add_row(str(c["cluster"])[:24], f"{c['size']:,}", "\n".join(map(str, c["examples"])))
            _out(t)
    if html:
        from dataengine.reports.svg import bar_chart, table_html, write_report

        sections = []
        for r in reports:
            hist = r.get("histogram") or []
            sections.append((f"{r['prefix']}: duplicate rate {r['rate']:.1%}",
                             bar_chart("documents by cluster size", [h["size"] for h in hist], [float(h["docs"]) for h in hist])
                             + table_html(r.get("largest") or [])))
        _out(f"report written to {write_report(html, f'duplicates in {table}', sections)}")
