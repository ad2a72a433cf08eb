"""A pipeline run's report: per-stage rows in and out, errors, seconds, and throughput over time.

Everything comes from the run's row in ``dataengine.runs`` (written in the same transaction
as the snapshot it produced): the per-stage counters, the skipped input records, and the
shard timeline (when each shard finished) for runs recorded since the timeline was added.
"""

from __future__ import annotations

import json

from dataengine.core.schema import META_SCHEMA
from dataengine.reports import charts
from dataengine.reports.links import Links
from dataengine.reports.page import Page, Section, table_html

TABLE = f"{META_SCHEMA}.runs"
SOURCE_KEY, SHARDS_KEY = "(source)", "(shards)"  # dataengine.engine.base writes these keys


def pipeline_run(wh, run_id: str) -> dict | None:
    """The committed run with this id (its snapshot too), or None."""
    if not wh.table_exists(TABLE):
        return None
    rows = wh.sql(f"SELECT *, snapshot_id FROM {TABLE} WHERE run_id = ? ORDER BY snapshot_id DESC LIMIT 1",
                  [run_id]).to_pylist()
    return rows[0] if rows else None


def list_runs(wh):
    """Every committed pipeline run, newest first (Arrow)."""
    if not wh.table_exists(TABLE):
        import pyarrow as pa

        return pa.table({"run_id": pa.array([], pa.string())})
    return wh.sql(f"""SELECT run_id, pipeline, output_table, snapshot_id, mode, executor, rows_out,
                             round(epoch(finished_at) - epoch(started_at), 2) AS seconds, finished_at
                      FROM {TABLE} ORDER BY snapshot_id DESC""")


def run_page(run: dict, links: Links | None = None) -> Page:
    """The report of one pipeline run (a row of ``dataengine.runs``)."""
    links = links or Links()
    stats = json.loads(run.get("stats") or "{}")
    stages = [{"stage": name, **st} for name, st in stats.items() if isinstance(st, dict) and "rows_in" in st]
    figs = []
    if stages:
        flow = [{"stage": s["stage"], "rows": s["rows_in"], "": "in"} for s in stages]
        flow += [{"stage": s["stage"], "rows": s["rows_out"], "": "out"} for s in stages]
        figs.append(charts.bar("rows in and out per stage", flow, "stage", "rows", color="", sort=None,
                               value_title="rows"))
        figs.append(charts.bar("seconds per stage (summed over workers)",
                               [{"stage": s["stage"], "seconds": s["seconds"]} for s in stages], "stage", "seconds",
                               sort=None))
        figs.append(charts.bar("rows that raised an error, per stage",
                               [{"stage": s["stage"], "errors": s["errors"]} for s in stages], "stage", "errors",
                               sort=None))
    timeline = stats.get(SHARDS_KEY)
    timeline_note = "shard timeline not recorded for this run"
    if timeline and timeline.get("finished_s"):
        points, total = [], 0
        for t, n in zip(timeline["finished_s"], timeline["rows"]):
            total += n
            points.append({"seconds": t, "rows": total})
        figs.append(charts.lines("rows written over time (each point: a shard finished)", points, "seconds", "rows",
                                 x_title="seconds since the run started", y_title="rows out (cumulative)",
                                 points=True))
        span = max(timeline["finished_s"]) - min(0.0, min(timeline["finished_s"]))
        timeline_note = (f"{len(points)} shards; {total:,} rows in {span:.1f} s: "
                         f"{total / span if span > 0 else 0:,.0f} rows/s overall")
    table = [{"stage": s["stage"], "rows in": s["rows_in"], "rows out": s["rows_out"], "errors": s["errors"],
              "seconds": s["seconds"], "rows/s": s["rows_in"] / s["seconds"] if s["seconds"] else None,
              "where": s.get("where") or ""} for s in stages]
    sections = [Section("Stages", figs, blocks=[table_html(table)], note=timeline_note)]
    samples = [{"stage": s["stage"], "error": e} for s in stages for e in s.get("error_samples") or []]
    if samples:
        sections.append(Section("Error samples", blocks=[table_html(samples)]))
    skipped = (stats.get(SOURCE_KEY) or {}).get("skipped") or {}
    if skipped:
        sections.append(Section("Skipped input records", [charts.bar(
            "skipped input records by reason", [{"reason": k, "records": v} for k, v in skipped.items()],
            "reason", "records")]))
    try:
        config = json.dumps(json.loads(run.get("config") or "{}"), indent=1)
    except json.JSONDecodeError:
        config = run.get("config") or ""
    import html

    sections.append(Section("Pipeline", blocks=[f"<pre>{html.escape(config)}</pre>"]))
    seconds = (run["finished_at"] - run["started_at"]).total_seconds() if run.get("started_at") else None
    out_link = links.table(run["output_table"], run.get("snapshot_id"))
    subtitle = f"{run['pipeline']}: {run['source']} -> {run['output_table']} ({run['mode']}, {run['executor']})"
    facts = [("rows out", run["rows_out"]), ("snapshot", run.get("snapshot_id")), ("seconds", seconds),
             ("stages", len(stages)), ("row errors", sum(s["errors"] for s in stages))]
    page = Page(f"run {run['run_id']}", subtitle=subtitle, facts=facts, sections=sections)
    if out_link:
        page.sections.insert(0, Section("Output", blocks=[
            f'<p><a href="{html.escape(out_link)}">{html.escape(run["output_table"])}@{run.get("snapshot_id")}</a></p>']))
    return page
