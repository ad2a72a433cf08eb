"""Outside files -> a warehouse table, each as one ordinary pipeline run.

Every function only builds a pipeline (source files + reader options + stages) and runs it,
so ingest resumes per file, is idempotent (same files, same ids: an already-committed run is
skipped) and its counts are stored with the run like any other.

With ``html_table`` web ingest runs in two steps: WARC -> raw HTML table, then that table ->
extract -> langid -> ``table``. Re-extracting later with other settings reads the HTML table
instead of the WARCs: ``run(wh, pipeline("html", ["extract:extractor=resiliparse", "langid"], to="docs2"))``.
"""

from __future__ import annotations

import glob
import os
from typing import Iterable

from dataengine.core.errors import DataEngineError
from dataengine.core.pipeline import pipeline_from_dict
from dataengine.engine import run_pipeline
from dataengine.engine.base import RunResult
from dataengine.api.warehouse import as_warehouse

EXTRACTORS = ("trafilatura", "resiliparse", "none")
FAVOUR = ("balanced", "precision", "recall")


def web_stages(extractor: str = "trafilatura", favour: str = "recall", langid: bool = True,
               keep_html: bool = False) -> list[dict]:
    """The stages that turn raw HTML rows into text documents."""
    if extractor not in EXTRACTORS:
        raise DataEngineError(f"unknown extractor {extractor!r}: use {', '.join(EXTRACTORS)}")
    if favour not in FAVOUR:
        raise DataEngineError(f"favour must be one of {', '.join(FAVOUR)}, not {favour!r}")
    stages: list[dict] = []
    if extractor != "none":
        stages.append({"name": "extract", "params": {"extractor": extractor, "favour": favour, "keep_html": keep_html}})
        if langid:
            stages.append({"name": "langid", "params": {}})
    return stages


def _web_pipelines(name: str, files: list[str], table: str, reader_options: dict, stages: list[dict],
                   html_table: str | None, workers: int | None, mode: str | None) -> list[dict]:
    """One pipeline (files -> table), or two with a raw HTML table in between."""
    executor = {"workers": workers} if workers else {}
    output = {"table": html_table or table}
    if mode:
        output["mode"] = mode
    first = {
        "name": name,
        "source": {"files": files, "format": "warc", "options": reader_options},
        "stages": [] if html_table else stages,
        "output": output,
        "executor": executor,
    }
    if not html_table:
        return [first]
    second = {
        "name": f"{name}:extract",
        "source": {"table": html_table},  # version filled in after the first run commits
        "stages": stages,
        "output": {"table": table, **({"mode": mode} if mode else {})},
        "executor": executor,
    }
    return [first, second]


def _run_in_order(wh, raws: list[dict], progress: bool) -> list[RunResult]:
    """Run pipelines in order; a table source without a version reads the previous run's snapshot."""
    results: list[RunResult] = []
    for raw in raws:
        if "table" in raw["source"] and results and raw["source"].get("version") is None:
            raw = {**raw, "source": {**raw["source"], "version": results[-1].snapshot_id}}
        results.append(run_pipeline(pipeline_from_dict(raw, origin=raw["name"]), wh, progress=progress))
    return results


def _local(paths: Iterable[str]) -> list[str]:
    return [os.path.abspath(p) if "://" not in p and os.path.exists(p) else p for p in map(str, paths)]


def ingest_warc(
    wh,
    paths: Iterable[str],
    table: str = "raw",
    extractor: str = "trafilatura",
    favour: str = "recall",
    langid: bool = True,
    html_table: str | None = None,
    keep_html: bool = False,
    all_content_types: bool = False,
    crawl: str | None = None,
    mode: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> list[RunResult]:
    """WARC/ARC files (paths, globs, file:// or fsspec URLs) -> ``table``: HTML responses, extracted."""
    options: dict = {}
    if crawl:
        options["crawl"] = crawl
    if all_content_types:
        options["content_types"] = None
    stages = web_stages(extractor, favour, langid, keep_html)
    raws = _web_pipelines(f"ingest-warc:{table}", _local(paths), table, options, stages, html_table, workers, mode)
    return _run_in_order(as_warehouse(wh), raws, progress)


def ingest_cc(
    wh,
    listing: str,
    mirror: str | None = None,
    limit: int | None = None,
    skip: int = 0,
    table: str = "cc",
    extractor: str = "trafilatura",
    favour: str = "recall",
    langid: bool = True,
    html_table: str | None = None,
    mode: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> list[RunResult]:
    """A Common Crawl ``warc.paths.gz`` listing (or crawl name) -> ``table``, one shard per WARC file."""
    from dataengine.connectors.commoncrawl import warc_urls

    if limit is not None and limit < 1:
        raise DataEngineError("limit must be at least 1")
    urls, crawl = warc_urls(listing, mirror=mirror, limit=limit, skip=skip)
    options = {"crawl": crawl, "source": "commoncrawl"} if crawl else {"source": "commoncrawl"}
    stages = web_stages(extractor, favour, langid)
    raws = _web_pipelines(f"ingest-cc:{table}", urls, table, options, stages, html_table, workers, mode)
    return _run_in_order(as_warehouse(wh), raws, progress)


def _ingest_files(wh, fmt: str, paths, table, text_field, id_field, langid, mode, workers, progress) -> RunResult:
    raw = {
        "name": f"ingest-{fmt}:{table}",
        "source": {"files": _local(paths), "format": fmt, "options": {"text_field": text_field, "id_field": id_field}},
        "stages": ["langid"] if langid else [],
        "output": {"table": table, **({"mode": mode} if mode else {})},
        "executor": {"workers": workers} if workers else {},
    }
    return _run_in_order(as_warehouse(wh), [raw], progress)[0]


def ingest_jsonl(wh, paths: Iterable[str], table: str = "raw", text_field: str = "text", id_field: str | None = "id",
                 langid: bool = False, mode: str | None = None, workers: int | None = None,
                 progress: bool = True) -> RunResult:
    """JSONL files (optionally .gz/.zst, globs or URLs) -> ``table``; top-level fields become columns."""
    return _ingest_files(wh, "jsonl", paths, table, text_field, id_field, langid, mode, workers, progress)


def ingest_parquet(wh, paths: Iterable[str], table: str = "raw", text_field: str = "text", id_field: str | None = "id",
                   langid: bool = False, mode: str | None = None, workers: int | None = None,
                   progress: bool = True) -> RunResult:
    """Parquet files -> ``table`` (other columns pass through)."""
    return _ingest_files(wh, "parquet", paths, table, text_field, id_field, langid, mode, workers, progress)


def extraction_counts(wh, result: RunResult) -> dict[str, int]:
    """``extract_status`` counts of the rows a run wrote (from its staged files); empty if none."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    wh = as_warehouse(wh)
    if result.already_committed:
        return {}
    files = sorted(glob.glob(os.path.join(wh.config.runs_path, result.run_id, "*.parquet")))
    files = [f for f in files if "extract_status" in pq.read_schema(f).names]
    if not files:
        return {}
    statuses = pq.read_table(files, columns=["extract_status"]).column(0)
    return {c["values"]: c["counts"] for c in pc.value_counts(statuses).to_pylist()}
