"""The report of one table (at a snapshot): what is in it, at a glance.

Every number is a DuckDB aggregate over the lake (no document text reaches Python), so a
report of a million-row table costs a few column scans. Each section declares the columns
it needs and is drawn only when they exist: an annotation that lands later (diversity,
translation signals) gets its section by adding one entry to :data:`SECTIONS`, and any
numeric column no section claims still shows up in the summary of other annotations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from dataengine.core.errors import DataEngineError
from dataengine.filters.quality import N_BUCKETS
from dataengine.reports import charts
from dataengine.reports.dedup import PREFIXES as DEDUP_PREFIXES, cluster_histogram
from dataengine.reports.links import Links
from dataengine.reports.page import Page, Section, table_html

TOP_LANGUAGES = 15


@dataclass
class TableContext:
    """What every section sees: the warehouse, the table's SQL source and its columns."""

    wh: object
    table: str
    source: str  # SQL relation: the lake table, at a snapshot when asked
    columns: dict[str, str]  # name -> DuckDB type
    rows: int
    claimed: set[str] = field(default_factory=set)  # columns a section has shown

    def sql(self, query: str) -> list[dict]:
        return self.wh.sql(query.replace("{src}", self.source)).to_pylist()

    def has(self, *names: str) -> bool:
        return all(n in self.columns for n in names)

    def numeric(self, name: str) -> bool:
        t = self.columns.get(name, "")
        return any(k in t for k in ("INT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")) and "[]" not in t


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


# -- sections --------------------------------------------------------------------------

def languages(ctx: TableContext) -> Section | None:
    if not ctx.has("language"):
        return None
    ctx.claimed.update({"language", "language_score"})
    weight = "text_words" if ctx.has("text_words") else None
    words = f", sum({weight}) AS words" if weight else ""
    rows = ctx.sql(f"""
        WITH g AS (SELECT coalesce(language, '(none)') AS language, count(*) AS docs{words} FROM {{src}} GROUP BY 1),
             r AS (SELECT *, row_number() OVER (ORDER BY docs DESC, language) AS rank FROM g)
        SELECT CASE WHEN rank <= {TOP_LANGUAGES} THEN language ELSE '(other)' END AS language,
               sum(docs)::BIGINT AS docs{', sum(words)::BIGINT AS words' if weight else ''}
        FROM r GROUP BY 1 ORDER BY docs DESC""")
    figs = [charts.bar("documents per language", rows, "language", "docs", value_title="documents")]
    if weight:
        total = sum(r["words"] or 0 for r in rows) or 1
        share = [{"language": r["language"], "share": 100.0 * (r["words"] or 0) / total} for r in rows]
        figs.append(charts.bar("share of words per language (%)", share, "language", "share", percent=True,
                               value_title="% of words"))
    if ctx.has("language_score"):
        ctx.claimed.add("language_score")
        hist = ctx.sql("""
            SELECT floor(language_score * 20) / 20 AS start, floor(language_score * 20) / 20 + 0.05 AS "end",
                   count(*) AS docs FROM {src} WHERE language_score IS NOT NULL GROUP BY 1 ORDER BY 1""")
        figs.append(charts.histogram("language id confidence", hist, "start", "end", "docs",
                                     x_title="language_score"))
    return Section("Language mix", figs)


def text_length(ctx: TableContext) -> Section | None:
    if ctx.has("text_words"):
        expr, unit = "text_words", "words"
    elif ctx.has("text"):
        expr, unit = "strlen(text)", "bytes"
    else:
        return None
    ctx.claimed.add("text_words")
    rows = ctx.sql(f"""
        SELECT b, count(*) AS docs FROM (
            SELECT CASE WHEN {expr} IS NULL THEN NULL ELSE floor(log2(greatest({expr}, 1)))::INT END AS b FROM {{src}})
        WHERE b IS NOT NULL GROUP BY 1 ORDER BY 1""")
    hist = [{"start": 2 ** r["b"], "end": 2 ** (r["b"] + 1), "docs": r["docs"],
             "range": f"{2 ** r['b']:,}-{2 ** (r['b'] + 1) - 1:,}"} for r in rows]
    stats = ctx.sql(f"""SELECT quantile_cont({expr}, 0.1) AS p10, median({expr}) AS median,
                               quantile_cont({expr}, 0.9) AS p90, sum({expr})::BIGINT AS total FROM {{src}}""")[0]
    fig = charts.histogram(f"{unit} per document (log scale)", hist, "start", "end", "docs", x_title=unit,
                           log_x=True, label="range")
    note = (f"median {stats['median'] or 0:,.0f} {unit}; 10% of documents under {stats['p10'] or 0:,.0f}, "
            f"10% over {stats['p90'] or 0:,.0f}; {stats['total'] or 0:,} {unit} in all")
    return Section("Text length", [fig], note=note)


def heuristics(ctx: TableContext) -> Section | None:
    passes = [c for c in ctx.columns if c.endswith("_pass") and ctx.columns[c] == "BOOLEAN"]
    if not passes:
        return None
    ctx.claimed.update(passes)
    rates = ", ".join(f"100.0 * avg({q(c)}::INT) AS {q(c)}" for c in passes)
    row = ctx.sql(f"SELECT {rates} FROM {{src}}")[0]
    data = [{"family": family_name(c), "pass_rate": row[c]} for c in passes if row[c] is not None]
    fig = charts.bar("documents passing each heuristic family (%)", data, "family", "pass_rate", percent=True,
                     value_title="% of documents passing", category_title="family")
    return Section("Heuristic filters", [fig], note="Annotate, don't delete: failing documents are still in the table.")


def family_name(column: str) -> str:
    """``heuristics_gopher_pass`` -> ``gopher preset``; ``c4_pass`` -> ``c4``."""
    base = column[: -len("_pass")]
    if base.startswith("heuristics_"):
        return base[len("heuristics_"):] + " preset"
    return base


def quality(ctx: TableContext) -> Section | None:
    figs = []
    weight = "text_words" if ctx.has("text_words") else "1"
    if ctx.has("quality_bucket"):
        ctx.claimed.add("quality_bucket")
        rows = ctx.sql(f"""SELECT quality_bucket AS bucket, count(*) AS docs, sum({weight})::BIGINT AS w
                           FROM {{src}} WHERE quality_bucket IS NOT NULL GROUP BY 1 ORDER BY 1""")
        by_bucket = {r["bucket"]: r for r in rows}
        data = [{"bucket": str(b), "docs": by_bucket.get(b, {}).get("docs", 0)} for b in range(N_BUCKETS)]
        figs.append(charts.bar("documents per ensemble quality bucket (0-19)", data, "bucket", "docs",
                               horizontal=False, sort=None, value_title="documents"))
    if ctx.has("quality_level"):
        ctx.claimed.add("quality_level")
        order = "min(quality_bucket) DESC NULLS LAST" if ctx.has("quality_bucket") else "1"
        rows = ctx.sql(f"""SELECT coalesce(quality_level, '(none)') AS level, count(*) AS docs
                           FROM {{src}} GROUP BY 1 ORDER BY {order}""")
        figs.append(charts.bar("documents per quality level", rows, "level", "docs", sort=None,
                               value_title="documents"))
    for c in ctx.columns:  # one classifier's own percentile buckets
        if c.endswith("_bucket") and c != "quality_bucket" and f"{c[:-len('_bucket')]}_score" in ctx.columns:
            ctx.claimed.update({c, c[: -len("_bucket")] + "_score"})
    if not figs:
        return None
    return Section("Quality", figs)


def duplicates(ctx: TableContext) -> Section | None:
    figs, facts = [], []
    for prefix in DEDUP_PREFIXES:
        keep, cluster = f"{prefix}_keep", f"{prefix}_cluster"
        if not ctx.has(keep):
            continue
        ctx.claimed.update({keep, cluster, f"{prefix}_cluster_size"})
        dups = ctx.sql(f"SELECT count(*) FILTER (WHERE NOT {q(keep)}) AS n FROM {{src}}")[0]["n"]
        facts.append(f"{prefix}: {dups:,} of {ctx.rows:,} documents are duplicates ({dups / max(ctx.rows, 1):.1%})")
        if ctx.has(cluster):
            hist = cluster_histogram(ctx.wh, ctx.source, cluster)
            figs.append(charts.bar(f"{prefix}: documents by cluster size", hist, "size", "docs", sort=None,
                                   category_title="cluster size", value_title="documents"))
    if not facts:
        return None
    return Section("Duplicates", figs, note="; ".join(facts))


def extraction(ctx: TableContext) -> Section | None:
    if not ctx.has("extract_status"):
        return None
    ctx.claimed.add("extract_status")
    rows = ctx.sql("""SELECT coalesce(extract_status, '(not extracted)') AS status, count(*) AS docs
                      FROM {src} GROUP BY 1 ORDER BY docs DESC""")
    return Section("Extraction", [charts.bar("documents per extraction status", rows, "status", "docs",
                                             value_title="documents")])


def math(ctx: TableContext) -> Section | None:
    if not ctx.has("math_equations"):
        return None
    ctx.claimed.update({"math_equations", "math_has_math", "math_score"})
    rows = ctx.sql("""
        SELECT CASE WHEN math_equations = 0 THEN '0' WHEN math_equations = 1 THEN '1'
                    WHEN math_equations <= 3 THEN '2-3' WHEN math_equations <= 10 THEN '4-10'
                    WHEN math_equations <= 100 THEN '11-100' ELSE '>100' END AS equations,
               count(*) AS docs, sum(math_equations)::BIGINT AS total
        FROM {src} WHERE math_equations IS NOT NULL GROUP BY 1 ORDER BY min(math_equations)""")
    total = sum(r["total"] or 0 for r in rows)
    with_math = sum(r["docs"] for r in rows if r["equations"] != "0")
    return Section("Math", [charts.bar("documents by number of equations", rows, "equations", "docs", sort=None,
                                       category_title="equations", value_title="documents")],
                   note=f"{total:,} equations (kept as LaTeX) in {with_math:,} documents")


def diversity(ctx: TableContext) -> Section | None:
    cols = [c for c in ctx.columns if c.startswith(("g_vendi", "diversity")) and ctx.numeric(c)]
    if not cols:
        return None
    ctx.claimed.update(cols)
    figs = [value_histogram(ctx, c, f"{c}: distribution over documents") for c in cols]
    return Section("Diversity", [f for f in figs if f is not None])


def value_histogram(ctx: TableContext, column: str, title: str, bins: int = 20):
    """Equal-width histogram of a numeric column, binned in DuckDB (``equi_width_bins`` + ``histogram``)."""
    c = q(column)
    lo_hi = ctx.sql(f"SELECT min({c})::DOUBLE AS lo, max({c})::DOUBLE AS hi FROM {{src}}")[0]
    if lo_hi["lo"] is None:
        return None
    lo, hi = lo_hi["lo"], lo_hi["hi"]
    if hi <= lo:
        hi = lo + 1.0
    rows = ctx.sql(f"""
        SELECT unnest(map_keys(h)) AS upper, unnest(map_values(h)) AS docs
        FROM (SELECT histogram({c}::DOUBLE, equi_width_bins({lo!r}, {hi!r}, {bins}, true)) AS h FROM {{src}})""")
    # equi_width_bins gives each bin's upper bound; a bin starts where the previous one ends
    uppers = [r["upper"] for r in rows]
    width = uppers[1] - uppers[0] if len(uppers) > 1 else hi - lo
    data = [{"start": (uppers[i - 1] if i else uppers[0] - width), "end": r["upper"], "docs": r["docs"]}
            for i, r in enumerate(rows) if r["docs"]]
    return charts.histogram(title, data, "start", "end", "docs", x_title=column)


def other_annotations(ctx: TableContext) -> Section | None:
    cols = [c for c in ctx.columns if c not in ctx.claimed and c not in ("id",)
            and (ctx.numeric(c) or ctx.columns[c] == "BOOLEAN")]
    if not cols:
        return None
    parts = []
    for c in cols:
        x = f"{q(c)}::DOUBLE" if ctx.columns[c] != "BOOLEAN" else f"{q(c)}::INT::DOUBLE"
        parts.append(f"count({q(c)}) AS {q(c + ':n')}, min({x}) AS {q(c + ':min')}, avg({x}) AS {q(c + ':mean')}, "
                     f"approx_quantile({x}, 0.5) AS {q(c + ':median')}, max({x}) AS {q(c + ':max')}")
    row = ctx.sql(f"SELECT {', '.join(parts)} FROM {{src}}")[0]
    rows = [{"column": c, "type": ctx.columns[c], "non-null %": 100.0 * row[c + ":n"] / max(ctx.rows, 1),
             "min": row[c + ":min"], "median": row[c + ":median"], "mean": row[c + ":mean"], "max": row[c + ":max"]}
            for c in cols]
    return Section("Other annotations", blocks=[table_html(rows)],
                   note="Numeric and boolean columns no section above draws (booleans as 0/1).")


#: Sections in page order: each returns None when its columns are absent.
SECTIONS: list[Callable[[TableContext], Section | None]] = [
    languages, text_length, extraction, heuristics, quality, duplicates, math, diversity, other_annotations,
]


def table_report(wh, table: str, version: int | None = None, links: Links | None = None) -> Page:
    """The report of ``table`` (at snapshot ``version``, default: now) as a :class:`Page`."""
    links = links or Links()
    if not wh.table_exists(table):
        raise DataEngineError(f"table {table!r} does not exist in the warehouse (`dataengine tables` lists them)")
    history = wh.history(table).to_pylist()
    if version is not None:
        if not any(h["snapshot_id"] <= version for h in history):
            raise DataEngineError(f"table {table!r} did not exist at snapshot {version}: "
                                  f"its snapshots are {', '.join(str(h['snapshot_id']) for h in history)}")
        source = f"{wh.qualify(table)} AT (VERSION => {int(version)})"
    else:
        source = wh.qualify(table)
    described = wh.sql(f"DESCRIBE SELECT * FROM {source}").to_pylist()
    columns = {r["column_name"]: r["column_type"] for r in described}
    rows = wh.sql(f"SELECT count(*) AS n FROM {source}").to_pylist()[0]["n"]
    snap = version if version is not None else wh.current_snapshot()
    changed = [h for h in history if h["snapshot_id"] <= snap]
    last = changed[-1] if changed else None
    ctx = TableContext(wh, table, source, columns, rows)
    sections = [s for s in (build(ctx) for build in SECTIONS) if s is not None]
    snapshots = [{"snapshot": h["snapshot_id"], "time": str(h["snapshot_time"])[:19],
                  "commit message": h["commit_message"] or ""} for h in changed[-10:]]
    sections.append(Section("Snapshots", blocks=[table_html(snapshots, {"snapshot": lambda s, row: links.table(table, s)})],
                            note=f"{len(changed)} snapshot(s) changed this table"
                                 + ("; the last 10 are shown" if len(changed) > 10 else "")))
    sections.append(Section("Schema", blocks=[table_html([{"column": k, "type": v} for k, v in columns.items()])]))
    at = f"@{version}" if version is not None else ""
    facts = [("documents", rows), ("columns", len(columns)), ("snapshot", last["snapshot_id"] if last else snap)]
    if last:
        facts.append(("last changed", str(last["snapshot_time"])[:19]))
    return Page(f"table {table}{at}", subtitle=(last or {}).get("commit_message") or "", facts=facts,
                sections=sections)
