"""Reports a person looks at: one HTML file per table, blend version or run, with plots.

    de.write_report(wh, "raw", "raw.html")          # a table (now); "raw@7": at snapshot 7
    de.write_report(wh, "web@2", "web2.html")       # a blend version
    de.write_report(wh, RUN_ID, "run.html")         # a pipeline run or a training run

Every number is a DuckDB aggregate (no document text reaches Python); charts are Vega-Lite
rendered to inline SVG, so a report is one file that opens offline (docs/decisions.md).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from dataengine.core.errors import DataEngineError
from dataengine.reports.blend import blend_page
from dataengine.reports.dedup import dedup_page
from dataengine.reports.links import Links, UiLinks
from dataengine.reports.page import Page, document, page_body, table_html, write_page
from dataengine.reports.quality import quality_page
from dataengine.reports.runs import list_runs as _list_runs, pipeline_run, run_page
from dataengine.reports.table import table_report
from dataengine.reports.training import read_metrics, run_folder, training_page, training_run
from dataengine.warehouse import rewrite_time_travel
from dataengine.api.blends import blend_version, blends
from dataengine.api.dedup import dedup_report
from dataengine.api.quality import quality_report
from dataengine.api.warehouse import as_warehouse

_REF = re.compile(r"^(?:(table|blend|run):)?([A-Za-z0-9_.\-]+?)(?:@v?(\d+))?$")


@dataclass(frozen=True)
class ReportTarget:
    """What a report is about: ``kind`` is table, blend, run or training; ``version`` a snapshot or blend version."""

    kind: str
    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name + (f"@{self.version}" if self.version is not None else "")


def resolve_target(wh, target: str) -> ReportTarget:
    """``TABLE[@N]``, ``BLEND@V`` or a run id (pipeline or training); ``table:``/``blend:``/``run:`` say which."""
    wh = as_warehouse(wh)
    m = _REF.match(target.strip())
    if not m:
        raise DataEngineError(f"cannot read {target!r}: give TABLE[@SNAPSHOT], BLEND@VERSION or a run id")
    kind, name, number = m.group(1), m.group(2), m.group(3)
    version = int(number) if number is not None else None
    is_table = kind in (None, "table") and wh.table_exists(name)
    is_blend = kind in (None, "blend") and any(b["name"] == name for b in blends(wh).list())
    if kind is None and is_table and is_blend and version is not None:
        raise DataEngineError(f"{target!r} is both a table and a blend: write table:{target} or blend:{target}")
    if is_table:
        return ReportTarget("table", name, version)
    if is_blend:
        if version is None:
            version = blends(wh).latest_version(name)
            if version is None:
                raise DataEngineError(f"blend {name!r} has no frozen version yet: `dataengine blend freeze {name}`")
        return ReportTarget("blend", name, version)
    if kind in (None, "run") and version is None:
        if pipeline_run(wh, name) is not None:
            return ReportTarget("run", name)
        if training_run(wh, name) is not None:
            return ReportTarget("training", name)
    wanted = {"table": "table", "blend": "blend", "run": "run"}.get(kind or "", "table, blend or run")
    raise DataEngineError(f"no {wanted} named {target!r} in the warehouse "
                          "(`dataengine tables`, `dataengine blend list` and `dataengine runs` list them)")


def report_page(wh, target: str | ReportTarget, links: Links | None = None) -> Page:
    """The report of ``target`` (see :func:`resolve_target`) as a page object."""
    wh = as_warehouse(wh)
    t = target if isinstance(target, ReportTarget) else resolve_target(wh, target)
    links = links or Links()
    if t.kind == "table":
        return table_report(wh, t.name, t.version, links)
    if t.kind == "blend":
        return blend_page(wh, blend_version(wh, f"{t.name}@{t.version}"), links)
    if t.kind == "run":
        return run_page(pipeline_run(wh, t.name), links)
    run = training_run(wh, t.name)
    return training_page(run, read_metrics(run_folder(run)), run.get("config"), links)


def write_report(wh, target: str, path: str | Path) -> Path:
    """Write the report of a table (``TABLE[@N]``), blend version (``BLEND@V``) or run id to ``path``."""
    return write_page(report_page(wh, target), path)


def report_html(wh, target: str | ReportTarget, ui: bool = False) -> tuple[str, str]:
    """(title, body HTML) of a report; ``ui``: links point at the pages of ``dataengine ui``."""
    page = report_page(wh, target, UiLinks() if ui else Links())
    return page.title, page_body(page)


def table_report_file(wh, table: str, path: str | Path, version: int | None = None) -> Path:
    """Write the report of ``table`` (at snapshot ``version``) to ``path``."""
    return write_page(table_report(as_warehouse(wh), table, version), path)


def blend_report(wh, ref: str, path: str | Path) -> Path:
    """Write a blend version's report (composition, source snapshots, diff, training runs) to ``path``."""
    wh = as_warehouse(wh)
    return write_page(blend_page(wh, blend_version(wh, ref)), path)


def dedup_report_file(wh, table: str, path: str | Path, top: int = 5) -> Path:
    """Write a table's duplicate-cluster report (plots and largest clusters) to ``path``."""
    return write_page(dedup_page(dedup_report(wh, table, top=top), table), path)


def quality_report_file(wh, table: str, path: str | Path, weight: str | None = None) -> Path:
    """Write the quality report (levels, buckets, heuristic pass rates per language, with plots) to ``path``."""
    return write_page(quality_page(quality_report(wh, table, weight), table), path)


def training_report_file(summary: dict, folder: str | Path, config: dict | None = None) -> Path:
    """Write a finished training run's ``report.html`` (loss and throughput curves) into its folder."""
    folder = Path(folder)
    return write_page(training_page(summary, read_metrics(folder), config), folder / "report.html")


def list_runs(wh) -> pa.Table:
    """Every committed pipeline run, newest first."""
    return _list_runs(as_warehouse(wh))


# -- read-only queries (the UI's SQL box) ------------------------------------------------

READ_ONLY_STATEMENTS = ("SELECT",)


@dataclass
class QueryPage:
    """One page of a read-only query's rows."""

    rows: pa.Table
    offset: int
    has_more: bool


def read_only_query(wh, query: str, page: int = 0, page_size: int = 50) -> QueryPage:
    """Rows ``page * page_size ..`` of a single SELECT (``table@N`` time travel allowed).

    Anything but one SELECT statement is refused with a message that says why, before it
    runs; the query then runs on the lake attached READ_ONLY, so nothing can change it.
    """
    wh = as_warehouse(wh)
    text = rewrite_time_travel(query.strip().rstrip(";").strip())
    if not text:
        raise DataEngineError("no SQL given")
    import duckdb

    parser = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        statements = parser.extract_statements(text)
    except duckdb.Error as exc:
        raise DataEngineError(f"SQL error: {str(exc).splitlines()[0]}") from None
    finally:
        parser.close()
    if len(statements) != 1:
        raise DataEngineError(f"refused: give exactly one SELECT statement (got {len(statements)})")
    kind = statements[0].type.name
    if kind not in READ_ONLY_STATEMENTS:
        raise DataEngineError(
            f"refused: {kind.replace('_', ' ')} statements change the warehouse or its session; "
            "this SQL box runs read-only queries (SELECT) only")
    page, page_size = max(0, int(page)), max(1, min(int(page_size), 1000))
    offset = page * page_size
    rows = wh.sql(f"SELECT * FROM (\n{text}\n) AS q LIMIT {page_size + 1} OFFSET {offset}")  # \n: a trailing -- comment
    return QueryPage(rows.slice(0, page_size), offset, rows.num_rows > page_size)


def html_table(rows: list[dict], links: dict | None = None) -> str:
    """Rows as the reports' HTML table (for pages of the UI)."""
    return table_html(rows, links)


def html_document(title: str, body: str, nav: str = "") -> str:
    """A complete page in the reports' style (light and dark themes), around ``body``."""
    return document(title, body, nav)


def escape(text) -> str:
    return html.escape(str(text))


def prepare_charts() -> None:
    """Start the chart renderer now (its first chart costs a few seconds), e.g. while a server starts."""
    from dataengine.reports.charts import bar

    bar("warm-up", [{"x": "a", "y": 1}], "x", "y")
