"""SQL conveniences over an annotated table: a view with readable names, and a quality report.

The view ``<table>_quality`` renames the main signals (``gopher_rep_dup_line_frac`` ->
``duplicate_line_fraction``, ``quality_level`` stays, ...) so that selecting data in SQL
reads like the question being asked. It is rebuilt from the columns the table has, so it
exists for any mix of heuristic and classifier stages.
"""

from __future__ import annotations

import pyarrow as pa

from dataengine.core.errors import DataEngineError
from dataengine.filters.quality import DEFAULT_WEIGHT

#: column -> readable name, for the signals a user selects on most
READABLE = {
    "id": "id",
    "url": "url",
    "language": "language",
    "text_words": "words",
    "gopher_word_count": "word_count",
    "gopher_mean_word_length": "mean_word_length",
    "gopher_stop_words": "stop_words",
    "gopher_alpha_words_ratio": "alphabetic_words_ratio",
    "gopher_rep_dup_line_frac": "duplicate_line_fraction",
    "gopher_rep_dup_para_frac": "duplicate_paragraph_fraction",
    "gopher_rep_top_2gram_frac": "top_bigram_char_fraction",
    "gopher_rep_dup_5gram_frac": "duplicate_5gram_char_fraction",
    "c4_sentences": "sentences",
    "c4_kept_lines_ratio": "c4_kept_lines_ratio",
    "fineweb_line_punct_ratio": "lines_ending_in_punctuation",
    "fineweb_short_line_ratio": "short_lines_ratio",
    "rules_urls_ratio": "url_char_ratio",
    "rules_non_alnum_ratio": "non_alphanumeric_ratio",
    "rules_symbol_word_ratio": "symbols_per_word",
    "rules_bullet_lines_ratio": "bullet_lines_ratio",
    "rules_ellipsis_lines_ratio": "ellipsis_lines_ratio",
    "rules_max_word_length": "longest_word",
    "gopher_pass": "passes_gopher_quality",
    "gopher_rep_pass": "passes_gopher_repetition",
    "c4_pass": "passes_c4",
    "fineweb_pass": "passes_fineweb_quality",
    "fineweb_c4_pass": "passes_fineweb_c4",
    "rules_pass": "passes_common_rules",
    "quality_bucket": "ensemble_bucket",
    "quality_level": "quality_level",
}


def view_name(table: str) -> str:
    return f"{table}_quality"


def view_columns(columns: list[str]) -> list[tuple[str, str]]:
    """(source column, readable name) for every signal present in ``columns``."""
    out = [(c, READABLE[c]) for c in READABLE if c in columns]
    for c in columns:
        if c.startswith("heuristics_") and c.endswith("_pass"):
            out.append((c, "passes_" + c[len("heuristics_") : -len("_pass")] + "_preset"))
        elif c.endswith("_score") and c != "language_score":
            base = c[: -len("_score")]
            out.append((c, f"{base}_classifier_score"))
            if f"{base}_bucket" in columns:
                out.append((f"{base}_bucket", f"{base}_percentile_bucket"))
    if "text" in columns:
        out.append(("text", "text"))
    return out


def create_quality_view(wh, table: str) -> str:
    """(Re)create ``<table>_quality``; returns its name."""
    if not wh.table_exists(table):
        raise DataEngineError(f"table {table!r} does not exist in the warehouse")
    cols = view_columns(wh.schema(table).names)
    select = ",\n       ".join(f'"{src}" AS "{dst}"' for src, dst in cols)
    name = view_name(table)
    wh.execute(f'CREATE OR REPLACE VIEW "{name}" AS\nSELECT {select}\nFROM "{table}"')
    return name


def quality_report(wh, table: str, weight: str | None = None) -> dict[str, pa.Table]:
    """Distribution of buckets and levels per language, and each heuristic's pass rate."""
    if not wh.table_exists(table):
        raise DataEngineError(f"table {table!r} does not exist in the warehouse")
    columns = wh.schema(table).names
    weight = weight or ("text_tokens" if "text_tokens" in columns else DEFAULT_WEIGHT)
    lang = "coalesce(language, '(none)')" if "language" in columns else "'(all)'"
    out: dict[str, pa.Table] = {}
    for key, group in (("levels", "quality_level"), ("buckets", "quality_bucket")):
        if group not in columns:
            continue
        order = "min_bucket DESC NULLS LAST" if key == "levels" else "quality_bucket DESC NULLS LAST"
        out[key] = wh.sql(
            f"""WITH g AS (
                    SELECT {lang} AS language, {group}, min(quality_bucket) AS min_bucket,
                           count(*) AS docs, sum({weight}) AS w
                    FROM "{table}" GROUP BY 1, 2)
                SELECT language, {group}, docs, round(w) AS tokens,
                       round(100.0 * w / sum(w) OVER (PARTITION BY language), 1) AS pct_tokens
                FROM g ORDER BY language, {order}"""
        )
    passes = [c for c in columns if c.endswith("_pass")]
    if passes:
        rates = ", ".join(f'round(100.0 * avg(CAST("{c}" AS INTEGER)), 1) AS "{c}"' for c in passes)
        wide = wh.sql(f'SELECT {lang} AS language, count(*) AS docs, {rates} FROM "{table}" GROUP BY ALL ORDER BY 1')
        out["heuristics"] = _long_pass_rates(wide, passes)
    if not out:
        raise DataEngineError(
            f"table {table!r} has no quality columns yet: run the heuristics / classifiers / quality_ensemble stages"
        )
    return out


def _long_pass_rates(wide: pa.Table, passes: list[str]) -> pa.Table:
    """One row per heuristic: pass rate (%) per language as columns."""
    rows = wide.to_pylist()
    records = []
    for col in passes:
        rec = {"heuristic": col}
        for r in rows:
            rec[f"{r['language']} (n={r['docs']})"] = r[col]
        records.append(rec)
    return pa.Table.from_pylist(records)


def quality_page(report: dict[str, pa.Table], table: str):
    """Plots of :func:`quality_report`: levels and buckets per language, heuristic pass rates."""
    from dataengine.reports import charts
    from dataengine.reports.page import Page, Section, table_html

    sections = []
    if "levels" in report:
        rows = [r for r in report["levels"].to_pylist()]
        data = [{"language": r["language"], "level": r["quality_level"] or "(none)", "pct": r["pct_tokens"] or 0.0}
                for r in rows]
        sections.append(Section("Quality levels", [charts.bar(
            "share of tokens per quality level, per language (%)", data, "language", "pct", color="level",
            stack=True, value_title="% of tokens", sort=None)], blocks=[table_html(rows)]))
    if "buckets" in report:
        rows = report["buckets"].to_pylist()
        data = [{"bucket": r["quality_bucket"], "language": r["language"], "docs": r["docs"]}
                for r in rows if r["quality_bucket"] is not None]
        sections.append(Section("Ensemble buckets", [charts.bar(
            "documents per ensemble bucket (0-19)", data, "bucket", "docs", color="language", stack=True,
            horizontal=False, sort=None, value_title="documents")]))
    if "heuristics" in report:
        rows = report["heuristics"].to_pylist()
        data = [{"heuristic": r["heuristic"], "language": k, "pass_rate": v}
                for r in rows for k, v in r.items() if k != "heuristic" and v is not None]
        by_lang = Section("Heuristic pass rates", blocks=[table_html(rows)])
        by_lang.figures.append(charts.bar(
            "documents passing each heuristic, per language (%)", data, "heuristic", "pass_rate", color="language",
            percent=True, sort=None, value_title="% of documents passing"))
        sections.append(by_lang)
    return Page(f"quality of {table}", sections=sections)
