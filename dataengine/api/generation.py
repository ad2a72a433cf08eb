"""`dataengine generate`: SQL rows -> a recipe -> a synthetic table, as ONE snapshot.

Why a driver loop and not the pipeline executor (docs/decisions.md): a generation job
wants ONE model fed with the whole job (vLLM's continuous batching, one HTTP connection
pool with one global concurrency limit), not one model copy per worker process over
CPU-sized shards; and its resumability comes from the request cache (only missing
requests are sent again), which is finer-grained than shard done-markers. The recipes
are still ordinary Stages, so `dataengine run --stage nemotron_cc:...` works too.

Steps: the query's rows are copied once to ``<runs>/generate-<id>/source.parquet`` (a
stable input for a resumed job, read back in batches so memory stays bounded); each
batch goes through the recipe; its rows stream into a new Parquet file; at the end the
file is registered with :meth:`Warehouse.commit_files` together with the run record in
``dataengine.runs``, in one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from dataengine.core.errors import DataEngineError
from dataengine.core.pipeline import fingerprint
from dataengine.generators.backends.base import GenerationResult
from dataengine.generators.cache import cache_path_for
from dataengine.generators.recipes.base import Recipe
from dataengine.core.schema import META_SCHEMA
from dataengine.warehouse.lake import Warehouse, rewrite_time_travel

_IDENTIFIER = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)?(@\d+)?$")


@dataclass
class GenerateResult:
    run_id: str
    output_table: str
    snapshot_id: int
    source_rows: int
    rows: int
    kept: int
    errors: int
    requests: int
    sent: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0


def source_query(spec: str) -> str:
    """``--from``: SQL, or a bare table name (``docs`` / ``docs@3``) meaning all its rows."""
    from dataengine.core.sql_guard import check_sql

    spec = spec.strip()
    query = f"SELECT * FROM {spec}" if _IDENTIFIER.match(spec) else spec
    check_sql(rewrite_time_travel(query), write=False)  # user SQL: a plain read, nothing else
    return query


def default_cache_path(wh: Warehouse) -> str:
    return str(cache_path_for(wh.config.root))


def run_generate(
    wh: Warehouse,
    recipe: Recipe,
    query: str,
    table: str,
    mode: str = "overwrite",
    batch_rows: int = 64,
    progress: bool = True,
) -> GenerateResult:
    """Run ``recipe`` over the rows of ``query`` and commit the synthetic rows to ``table``."""
    if mode not in ("append", "overwrite"):
        raise DataEngineError(f"unknown mode {mode!r}: use append or overwrite")
    started = time.time()
    query = source_query(query)
    source_file, snapshot, run_id = materialize_source(wh, query, {"recipe": recipe.fingerprint()}, table, batch_rows)
    run_dir = os.path.dirname(source_file)
    missing = [c for c in recipe.required_columns() if c not in pq.read_schema(source_file).names]
    if missing:
        raise DataEngineError(f"recipe {recipe.name!r} needs column(s) {', '.join(missing)}; the query gives {', '.join(pq.read_schema(source_file).names)}")
    recipe.ensure_setup()
    counters = _Counters()
    source_rows = pq.ParquetFile(source_file).metadata.num_rows
    out_file = os.path.join(run_dir, f"synthetic-{int(time.time() * 1000)}.parquet")
    tmp_file = out_file + ".tmp"
    schema = recipe.output_schema()
    writer = pq.ParquetWriter(tmp_file, schema, compression="zstd")
    sent_before = recipe.generator.sent
    try:
        with generation_progress(progress, source_rows, f"generate {recipe.name}") as bar:
            recipe.on_result = lambda _i, res: bar.result(res)
            for batch in pq.ParquetFile(source_file).iter_batches(batch_size=batch_rows):
                rows = recipe.process(pa.Table.from_batches([batch]))
                writer.write_table(rows)
                counters.add(rows)
                bar.rows(batch.num_rows)
    finally:
        writer.close()
        recipe.on_result = None
    os.replace(tmp_file, out_file)
    sent = recipe.generator.sent - sent_before
    stats = counters.as_dict() | {"sent": sent, "source_rows": source_rows, "source_snapshot": snapshot}
    now = dt.datetime.now(dt.timezone.utc)
    record = {
        "run_id": run_id,
        "pipeline": f"generate:{recipe.name}",
        "output_table": table,
        "mode": mode,
        "executor": f"generate:{recipe.params.backend}",
        "source": query,
        "rows_out": counters.rows,
        "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc),
        "finished_at": now,
        "config": json.dumps({"recipe": recipe.fingerprint(), "query": query, "model": recipe.generator.model_id}),
        "stats": json.dumps(stats),
    }
    snapshot_id = wh.commit_files(
        table,
        [out_file] if counters.rows else [],
        schema,
        mode=mode,
        message=f"generate {recipe.name} ({recipe.generator.model_id}): {counters.rows} rows from {source_rows} source rows",
        meta_rows=[(f"{META_SCHEMA}.runs", record)],
    )
    if not counters.rows:
        os.remove(out_file)
    return GenerateResult(
        run_id, table, snapshot_id, source_rows, counters.rows, counters.kept, counters.errors,
        counters.requests, sent, counters.prompt_tokens, counters.completion_tokens, time.time() - started,
    )


def materialize_source(wh: Warehouse, query: str, config: dict, table: str, batch_rows: int,
                       kind: str = "generate") -> tuple[str, int, str]:
    """Copy the query's rows once (a resumed job reads the same rows back).

    The run id is a fingerprint of (query, snapshot, ``config``, table): the same job on
    the same data finds its copy again. One warehouse connection gives both the snapshot
    and the rows. Returns (source file, snapshot id, run id).
    """
    with wh.connect(read_only=True) as con:
        snapshot = con.execute("SELECT id FROM lake.current_snapshot()").fetchone()[0]
        run_id = f"{kind}-" + fingerprint({"query": query, "snapshot": snapshot, **config, "table": table})
        run_dir = os.path.join(wh.config.runs_path, run_id)
        os.makedirs(run_dir, exist_ok=True)
        path = os.path.join(run_dir, "source.parquet")
        if os.path.exists(path):
            return path, snapshot, run_id
        tmp = path + f".tmp-{os.getpid()}"
        try:
            reader = con.execute(rewrite_time_travel(query)).to_arrow_reader(max(batch_rows, 1024))
        except Exception as exc:  # duckdb.Error: bad SQL is a user error
            raise DataEngineError(f"--from query failed: {str(exc).splitlines()[0]}") from None
        writer = None
        try:
            for batch in reader:
                if writer is None:
                    writer = pq.ParquetWriter(tmp, batch.schema)
                writer.write_batch(batch)
            if writer is None:
                pq.write_table(reader.schema.empty_table(), tmp)
        finally:
            if writer is not None:
                writer.close()
    os.replace(tmp, path)
    return path, snapshot, run_id


class _Counters:
    def __init__(self):
        self.rows = self.kept = self.errors = self.requests = 0
        self.prompt_tokens = self.completion_tokens = 0

    def add(self, rows: pa.Table) -> None:
        data = rows.select(["keep", "error", "segment_ids", "prompt_tokens", "completion_tokens"]).to_pydict()
        self.rows += rows.num_rows
        self.kept += sum(1 for k in data["keep"] if k)
        self.errors += sum(1 for e in data["error"] if e)
        self.requests += sum(len(s) for s in data["segment_ids"])
        self.prompt_tokens += sum(data["prompt_tokens"])
        self.completion_tokens += sum(data["completion_tokens"])

    def as_dict(self) -> dict:
        return {
            "rows": self.rows, "kept": self.kept, "errors": self.errors, "requests": self.requests,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
        }


class GenerationBar:
    """Source rows done, requests finished, and generated tokens per second (fresh ones only)."""

    def __init__(self, progress, task):
        self.progress, self.task = progress, task
        self.start = time.perf_counter()
        self.done_requests = self.cached = self.fresh_tokens = 0

    def result(self, res: GenerationResult) -> None:
        self.done_requests += 1
        if res.from_cache:
            self.cached += 1
        else:
            self.fresh_tokens += res.completion_tokens
        self._refresh(0)

    def rows(self, n: int) -> None:
        self._refresh(n)

    def _refresh(self, advance: int) -> None:
        if self.progress is None:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.progress.update(
            self.task,
            advance=advance,
            info=f"{self.done_requests:,} requests ({self.cached:,} cached), {self.fresh_tokens / elapsed:,.1f} tok/s",
        )


class generation_progress:
    """A rich progress bar for an LLM job (disabled: a bar that counts but shows nothing)."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.enabled, self.total, self.label = enabled, total, label

    def __enter__(self) -> GenerationBar:
        if not self.enabled:
            self._progress = None
            return GenerationBar(None, None)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from dataengine.core.progress import console

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
        )
        self._progress.__enter__()
        task = self._progress.add_task(self.label, total=self.total, info="")
        return GenerationBar(self._progress, task)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False
