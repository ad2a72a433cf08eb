"""The UI's own pages (overview, SQL box); reports come from :mod:`dataengine.api.reports`."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from dataengine import api
from dataengine.api.reports import escape, html_document, html_table, read_only_query


def nav(wh) -> str:
    return ('<a href="/">dataengine</a><a href="/#tables">tables</a><a href="/#blends">blends</a>'
            '<a href="/#runs">runs</a><a href="/#training">training runs</a><a href="/sql">SQL</a>'
            f'<span class="note">{escape(wh.config.root)} (read-only)</span>')


def page(wh, title: str, body: str) -> str:
    return html_document(title, body, nav(wh))


def overview(wh) -> str:
    """Tables, blends and their versions, pipeline runs and training runs, each linking to its report."""
    parts = ["<h1>Warehouse</h1>", f'<p class="subtitle">{escape(wh.config.root)}, snapshot {wh.current_snapshot()}</p>']
    tables = wh.tables()
    parts.append('<h2 id="tables">Tables</h2>')
    parts.append(html_table(tables, {"table": lambda t, row: f"/table/{quote(t)}"}))
    parts.append('<h2 id="blends">Blends</h2>')
    versions = api.list_blend_versions(wh).to_pylist()
    for v in versions:
        v["ref"] = f"{v['blend']}@{v['version']}"
        v["created_at"] = str(v.get("created_at"))[:19]
    parts.append(html_table([{"ref": v["ref"], **{k: v[k] for k in v if k not in ("ref", "blend", "version")}}
                             for v in versions], {"ref": lambda r, row: f"/blend/{quote(r)}"})
                 if versions else '<p class="note">no frozen blend versions</p>')
    parts.append('<h2 id="runs">Pipeline runs</h2>')
    runs = api.list_runs(wh).to_pylist()
    for r in runs:
        r["finished_at"] = str(r.get("finished_at"))[:19]
    parts.append(html_table(runs, {"run_id": lambda r, row: f"/run/{quote(r)}",
                                   "output_table": lambda t, row: f"/table/{quote(t)}@{row['snapshot_id']}"}))
    parts.append('<h2 id="training">Training runs</h2>')
    training = api.training_runs(wh).to_pylist()
    rows = [{"run_id": t["run_id"], "blend": t.get("blend_ref"), "optimizer": t.get("optimizer"),
             "steps": t.get("steps"), "final val loss": t.get("final_val_loss"), "tokens/s": t.get("tokens_per_s"),
             "finished": str(t.get("finished_at"))[:19]} for t in training]
    parts.append(html_table(rows, {"run_id": lambda r, row: f"/run/{quote(r)}",
                                   "blend": lambda b, row: f"/blend/{quote(b)}"}))
    return page(wh, "dataengine", "".join(parts))


EXAMPLE = "SELECT table_name, estimated_size FROM duckdb_tables() ORDER BY 1"


def sql_page(wh, query: str | None, page_number: int = 0, page_size: int = 50) -> str:
    """The SQL box: a form, then one page of rows (or why the query was refused)."""
    text = query if query is not None else EXAMPLE
    form = (f'<form method="get" action="/sql" id="sql-form"><textarea name="q" id="sql" spellcheck="false">'
            f"{escape(text)}</textarea>"
            '<p><button type="submit" id="run">Run</button> <span class="note">read-only: one SELECT; '
            "<code>table@N</code> reads a table at snapshot N; add ORDER BY for stable pages</span></p></form>")
    parts = ["<h1>SQL</h1>", form]
    if query:
        try:
            result = read_only_query(wh, query, page_number, page_size)
        except api.DataEngineError as exc:
            parts.append(f'<p class="error" id="sql-error" role="alert">{escape(exc)}</p>')
        else:
            rows = [{k: _cell(v) for k, v in r.items()} for r in result.rows.to_pylist()]
            first, last = result.offset + 1, result.offset + result.rows.num_rows
            shown = f"rows {first:,}-{last:,}" if rows else "no rows"
            links = []
            if page_number > 0:
                links.append(_page_link(query, page_number - 1, page_size, "previous"))
            if result.has_more:
                links.append(_page_link(query, page_number + 1, page_size, "next"))
            parts.append(f'<p id="sql-status">{shown}{" &middot; " if links else ""}{" ".join(links)}</p>')
            if rows:
                parts.append(f'<div id="sql-result">{html_table(rows)}</div>')
            else:
                cols = ", ".join(result.rows.column_names)
                parts.append(f'<p class="note" id="sql-result">columns: {escape(cols)}</p>')
    return page(wh, "SQL", "".join(parts))


def _page_link(query: str, number: int, size: int, label: str) -> str:
    return f'<a href="/sql?{escape(urlencode({"q": query, "page": number, "size": size}))}" id="{label}">{label}</a>'


def _cell(value):
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    text = str(value)
    return text if len(text) <= 300 else text[:297] + "..."


def report(wh, target, title_prefix: str = "") -> str:
    title, body = api.report_html(wh, target, ui=True)
    return page(wh, title, body)


def message(wh, title: str, text: str) -> str:
    return page(wh, title, f'<h1>{escape(title)}</h1><p class="error" role="alert">{escape(text)}</p>')
