"""`dataengine translate`: SQL rows -> CultureGuard steps per language -> ONE snapshot.

The same driver shape as `dataengine generate` (:mod:`dataengine.api.generation`): the
query's rows are copied once to ``<runs>/translate-<id>/source.parquet``; each batch of
source rows is expanded into one row per (source row, target language) and goes through
the steps in order -- ``cultural_segregation``, ``cultural_adaptation`` (with ``adapt``),
``translate``, ``translation_quality`` -- all on ONE loaded backend and one request cache;
the rows stream into a Parquet file that is committed with the run record in one
transaction. A killed or failed run is resumed by running it again: the request cache
answers everything that had come back, and only the rest is sent.

The output table is keyed by (``source_id``, ``language``); every source column other
than the id and the text/messages is copied unchanged (labels survive by construction).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import traceback
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from dataengine.api.generation import generation_progress, materialize_source, source_query
from dataengine.core.errors import DataEngineError
from dataengine.core.languages import language as language_entry
from dataengine.core.llm_stage import ACCOUNTING_COLUMNS, LLMStage
from dataengine.core.schema import META_SCHEMA
from dataengine.core.stage import StageStats
from dataengine.filters.translation_quality import SIGNAL_COLUMNS
from dataengine.generators.conversations import MESSAGES_TYPE, as_turns, joined_contents
from dataengine.warehouse.lake import Warehouse

#: The output columns the job makes, in table order; the source's other columns follow them.
OUTPUT_COLUMNS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "source_id": pa.string(),
    "language": pa.string(),
    "language_name": pa.string(),
    "source_text": pa.string(),
    "source_messages": MESSAGES_TYPE,
    "culture_specific": pa.bool_(),
    "culture_reason": pa.string(),
    "adaptation": pa.string(),
    "adapted_text": pa.string(),
    "adapted_messages": MESSAGES_TYPE,
    "text": pa.string(),
    "messages": MESSAGES_TYPE,
    # the quality signals, typed once by the stage that computes them
    **{name: kind for name, kind in SIGNAL_COLUMNS.items() if name.startswith("translation_")},
    "model": pa.string(),
    "backend": pa.string(),
    "steps": pa.string(),
    "sampling": pa.string(),
    "seed": pa.int64(),
    "segregation_prompt": pa.string(),
    "adaptation_prompt": pa.string(),
    "translation_prompt": pa.string(),
    "backtranslation_prompt": pa.string(),
    "judge_prompt": pa.string(),
    **ACCOUNTING_COLUMNS,
}


@dataclass
class LanguageSummary:
    rows: int = 0
    kept: int = 0
    errors: int = 0
    culture_specific: int = 0
    adapted: int = 0
    lang_ok: int = 0
    backsim_sum: float = 0.0
    backsim_n: int = 0
    judge_sum: float = 0.0
    judge_n: int = 0

    def as_dict(self) -> dict:
        return {
            "rows": self.rows, "kept": self.kept, "errors": self.errors, "culture_specific": self.culture_specific,
            "adapted": self.adapted, "lang_ok": self.lang_ok,
            "mean_backsim": round(self.backsim_sum / self.backsim_n, 4) if self.backsim_n else None,
            "mean_judge": round(self.judge_sum / self.judge_n, 3) if self.judge_n else None,
        }


@dataclass
class TranslateResult:
    run_id: str
    output_table: str
    snapshot_id: int
    source_rows: int
    languages: list[str]
    rows: int
    kept: int
    errors: int
    skipped: int  # rows with no text to translate
    requests: int
    sent: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    per_language: dict[str, dict] = field(default_factory=dict)
    stage_errors: dict[str, dict] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0

    def summary_table(self) -> pa.Table:
        """One row per language: rows, kept, errors, adapted, language ok, mean back-similarity and judge."""
        rows = [{"language": lang, **stats} for lang, stats in self.per_language.items()]
        return pa.Table.from_pylist(rows)


@dataclass
class TranslationSource:
    """Which source columns hold what."""

    id_column: str = "id"
    text_column: str = "text"
    messages_column: str | None = None


def run_translate(
    wh: Warehouse,
    stages: list[LLMStage],
    query: str,
    table: str,
    languages: list[str],
    source: TranslationSource,
    mode: str = "overwrite",
    batch_rows: int = 16,
    progress: bool = True,
) -> TranslateResult:
    """Run the steps over the rows of ``query`` for each language and commit ONE snapshot of ``table``."""
    if mode not in ("append", "overwrite"):
        raise DataEngineError(f"unknown mode {mode!r}: use append or overwrite")
    for code in languages:
        language_entry(code)
    started = time.time()
    query = source_query(query)
    config = {"translate": [s.fingerprint() for s in stages], "languages": languages, "source": source.__dict__}
    source_file, snapshot, run_id = materialize_source(wh, query, config, table, batch_rows, kind="translate")
    run_dir = os.path.dirname(source_file)
    source_schema = pq.read_schema(source_file)
    _check_source(source_file, source_schema, source)
    schema = output_schema(source_schema, source)
    for stage in stages:
        stage.ensure_setup()
    stats = {stage.name: StageStats() for stage in stages}
    sent_before = sum(s.generator.sent for s in stages if s.generator is not None)
    source_rows = pq.ParquetFile(source_file).metadata.num_rows
    counters = _Counters(languages)
    steps = " > ".join(f"{s.name}@{s.version}" for s in stages)
    sampling = json.dumps({s.name: s.params.sampling.model_dump(mode="json") for s in stages}, sort_keys=True)
    out_file = os.path.join(run_dir, f"translations-{int(time.time() * 1000)}.parquet")
    tmp_file = out_file + ".tmp"
    writer = pq.ParquetWriter(tmp_file, schema, compression="zstd")
    try:
        with generation_progress(progress, source_rows * len(languages), f"translate {','.join(languages)}") as bar:
            for stage in stages:
                stage.on_result = lambda _i, res: bar.result(res)
            for batch in pq.ParquetFile(source_file).iter_batches(batch_size=batch_rows):
                rows = expand(pa.Table.from_batches([batch]), languages, source)
                for stage in stages:
                    rows = run_step(stage, rows, stats[stage.name])
                rows = finish_rows(rows, schema, steps, sampling, stages[0].params.seed)
                writer.write_table(rows)
                counters.add(rows)
                bar.rows(rows.num_rows)
    finally:
        writer.close()
        for stage in stages:
            stage.on_result = None
    os.replace(tmp_file, out_file)
    sent = sum(s.generator.sent for s in stages if s.generator is not None) - sent_before
    stage_stats = {name: st.to_dict() for name, st in stats.items()}
    run_stats = counters.as_dict() | {"sent": sent, "source_rows": source_rows, "source_snapshot": snapshot,
                                      "stages": stage_stats}
    model = next((s.model_id for s in stages if s.model_id), None)
    record = {
        "run_id": run_id,
        "pipeline": "translate",
        "output_table": table,
        "mode": mode,
        "executor": f"translate:{stages[0].params.backend}",
        "source": query,
        "rows_out": counters.rows,
        "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc),
        "finished_at": dt.datetime.now(dt.timezone.utc),
        "config": json.dumps({"stages": [s.fingerprint() for s in stages], "languages": languages, "query": query,
                              "model": model}),
        "stats": json.dumps(run_stats),
    }
    snapshot_id = wh.commit_files(
        table, [out_file] if counters.rows else [], schema, mode=mode,
        message=f"translate ({model}) into {','.join(languages)}: {counters.rows} rows from {source_rows} source rows",
        meta_rows=[(f"{META_SCHEMA}.runs", record)],
    )
    if not counters.rows:
        os.remove(out_file)
    return TranslateResult(
        run_id, table, snapshot_id, source_rows, languages, counters.rows, counters.kept, counters.errors,
        counters.skipped, counters.requests, sent, counters.prompt_tokens, counters.completion_tokens,
        time.time() - started, {k: v.as_dict() for k, v in counters.per_language.items()},
        {name: st for name, st in stage_stats.items() if st["errors"]},
    )


def run_step(stage: LLMStage, rows: pa.Table, stats: StageStats) -> pa.Table:
    """Run one step on a batch; if it raises, again row by row, so only the bad rows fail.

    A failing row keeps its data, gets the step's outputs as nulls, and records the
    exception as its ``error`` (later steps skip it; the run's stats count it).
    """
    start = time.perf_counter()
    stats.rows_in += rows.num_rows
    try:
        out = stage(rows)
    except Exception:  # noqa: BLE001 - isolate the bad rows below
        pieces = []
        for i in range(rows.num_rows):
            row = rows.slice(i, 1)
            try:
                pieces.append(stage(row))
            except Exception as exc:  # noqa: BLE001 - one bad sample costs one row, recorded
                stats.errors += 1
                if len(stats.error_samples) < 5:
                    last = traceback.extract_tb(exc.__traceback__)[-1]
                    stats.error_samples.append(f"{type(exc).__name__}: {exc} ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})")
                pieces.append(_failed_row(stage, row, f"{stage.name}: {type(exc).__name__}: {exc}"))
        out = pa.concat_tables(pieces, promote_options="permissive")
    stats.rows_out += out.num_rows
    stats.seconds += time.perf_counter() - start
    return out


def _failed_row(stage: LLMStage, row: pa.Table, error: str) -> pa.Table:
    for name, dtype in stage.output_columns().items():
        if name in ACCOUNTING_COLUMNS and name in row.column_names and name != "error":
            continue  # what earlier steps spent stays counted
        value = pa.array([error], pa.string()) if name == "error" else pa.nulls(1, dtype)
        if name == "error" and row.column_names.count("error") and row.column("error")[0].is_valid:
            value = row.column("error")
        if name in row.column_names:
            row = row.set_column(row.column_names.index(name), name, value)
        else:
            row = row.append_column(name, value)
    return row


def _check_source(path: str, schema: pa.Schema, source: TranslationSource) -> None:
    needed = [source.id_column, source.messages_column or source.text_column]
    missing = [c for c in needed if c not in schema.names]
    if missing:
        raise DataEngineError(f"translate needs column(s) {', '.join(missing)}; the query gives {', '.join(schema.names)}")
    ids = pq.read_table(path, columns=[source.id_column]).column(0)
    if ids.null_count:
        raise DataEngineError(f"{ids.null_count} source row(s) have no {source.id_column}: the output is keyed by it")
    duplicates = len(ids) - pc.count_distinct(ids).as_py()
    if duplicates:
        raise DataEngineError(f"{duplicates} duplicate {source.id_column} value(s) in the source: the output is keyed "
                              f"by ({source.id_column}, language), so each source row needs its own id")


def passthrough_columns(schema: pa.Schema, source: TranslationSource) -> list[pa.Field]:
    """The source's own columns copied to every output row (labels, categories, metadata)."""
    own = {source.id_column, source.text_column, source.messages_column}
    keep = [f for f in schema if f.name not in own]
    clash = [f.name for f in keep if f.name in OUTPUT_COLUMNS]
    if clash:
        raise DataEngineError(f"source column(s) {', '.join(clash)} clash with translate's output columns: "
                              "rename them in the --from query")
    return keep


def output_schema(source_schema: pa.Schema, source: TranslationSource) -> pa.Schema:
    return pa.schema([*(pa.field(n, t) for n, t in OUTPUT_COLUMNS.items()), *passthrough_columns(source_schema, source)])


def expand(batch: pa.Table, languages: list[str], source: TranslationSource) -> pa.Table:
    """One row per (source row, language): ``source_id``, ``language``, the sample, the passthrough columns."""
    n, k = batch.num_rows, len(languages)
    take = pa.array([i for i in range(n) for _ in range(k)], pa.int64())
    ids = [None if v is None else str(v) for v in batch.column(source.id_column).to_pylist()]
    if source.messages_column:
        turns = [as_turns(v) for v in batch.column(source.messages_column).to_pylist()]
        texts = [joined_contents(t) for t in turns]
    else:
        turns = [None] * n
        texts = batch.column(source.text_column).to_pylist()
    columns = {
        "source_id": pa.array([ids[i] for i in range(n) for _ in range(k)], pa.string()),
        "language": pa.array(languages * n, pa.string()),
        "language_name": pa.array([language_entry(c).name for c in languages] * n, pa.string()),
        "source_text": pa.array([texts[i] for i in range(n) for _ in range(k)], pa.string()),
        "source_messages": pa.array([turns[i] for i in range(n) for _ in range(k)], MESSAGES_TYPE),
    }
    out = pa.table(columns)
    for f in passthrough_columns(batch.schema, source):
        out = out.append_column(f, batch.column(f.name).take(take))
    return out


def row_id(source_id: str, language: str) -> str:
    """The output key (source_id, language) as one stable id."""
    return xxhash.xxh3_128_hexdigest(json.dumps([source_id, language]).encode())


def finish_rows(rows: pa.Table, schema: pa.Schema, steps: str, sampling: str, seed: int) -> pa.Table:
    """The steps' rows in the output schema, with the key and the job's provenance."""
    n = rows.num_rows
    values = {
        "id": pa.array([row_id(s, lang) for s, lang in zip(rows.column("source_id").to_pylist(),
                                                           rows.column("language").to_pylist())], pa.string()),
        "steps": pa.array([steps] * n, pa.string()),
        "sampling": pa.array([sampling] * n, pa.string()),
        "seed": pa.array([seed] * n, pa.int64()),
    }
    columns = []
    for f in schema:
        if f.name in values:
            columns.append(values[f.name])
        elif f.name in rows.column_names:
            columns.append(rows.column(f.name).cast(f.type))
        else:  # a step that did not run (no adaptation): its columns are null
            columns.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


class _Counters:
    def __init__(self, languages: list[str]):
        self.rows = self.kept = self.errors = self.skipped = self.requests = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.per_language = {code: LanguageSummary() for code in languages}

    def add(self, rows: pa.Table) -> None:
        data = rows.select(["language", "source_text", "translation_keep", "error", "llm_requests", "prompt_tokens",
                            "completion_tokens", "culture_specific", "adaptation", "translation_lang_ok",
                            "translation_backsim", "translation_judge"]).to_pylist()
        for r in data:
            self.rows += 1
            self.kept += bool(r["translation_keep"])
            self.errors += r["error"] is not None
            self.skipped += r["source_text"] is None or not r["source_text"].strip()
            self.requests += r["llm_requests"] or 0
            self.prompt_tokens += r["prompt_tokens"] or 0
            self.completion_tokens += r["completion_tokens"] or 0
            lang = self.per_language[r["language"]]
            lang.rows += 1
            lang.kept += bool(r["translation_keep"])
            lang.errors += r["error"] is not None
            lang.culture_specific += r["culture_specific"] is True
            lang.adapted += r["adaptation"] == "adapted"
            lang.lang_ok += r["translation_lang_ok"] is True
            if r["translation_backsim"] is not None:
                lang.backsim_sum += r["translation_backsim"]
                lang.backsim_n += 1
            if r["translation_judge"] is not None:
                lang.judge_sum += r["translation_judge"]
                lang.judge_n += 1

    def as_dict(self) -> dict:
        return {
            "rows": self.rows, "kept": self.kept, "errors": self.errors, "skipped": self.skipped,
            "requests": self.requests, "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "per_language": {k: v.as_dict() for k, v in self.per_language.items()},
        }
