"""What every executor shares: planning shards, running stages on one shard, committing.

An executor only decides *where* :func:`process_shard` runs (a process pool, Dask, Spark).
Each shard writes ``<run_dir>/<key>.parquet`` and then ``<key>.done.json``; a shard is done
only when its marker exists, so a killed run re-run resumes with the missing shards. When
all shards are done the driver registers every file in ONE DuckLake transaction together
with the run record, so readers see the whole result or nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataengine.core.errors import DataEngineError, PipelineConfigError, RunAlreadyCommitted, one_line
from dataengine.core.pipeline import (
    PipelineConfig,
    build_stages,
    check_columns,
    check_text_column,
    expand_files,
    fingerprint,
    validate_reader,
)
from dataengine.core.stage import Stage, StageStats, run_stage_safely
from dataengine.core.schema import META_SCHEMA
from dataengine.warehouse.lake import Warehouse, WarehouseConfig, qualify

SOURCE_STATS_KEY = "(source)"
MAX_FILE_ERRORS_KEPT = 50  # per run record; the count of skipped files is always complete
#: run stats key of the shard timeline: when each shard finished (seconds after the run
#: started; negative for shards done by an earlier, interrupted attempt) and its rows out
SHARDS_STATS_KEY = "(shards)"


@dataclass(frozen=True)
class Shard:
    """One unit of work: a file, or partition ``part`` of ``parts`` of a table snapshot."""

    key: str
    path: str | None = None
    table: str | None = None
    version: int | None = None
    part: int = 0
    parts: int = 1


@dataclass
class Plan:
    run_id: str
    run_dir: str
    pipeline: PipelineConfig
    stages: list[Stage]
    shards: list[Shard]
    source_desc: str
    reader: object | None = None
    #: Tables this run replaces, with the snapshot it saw them at (None: absent). The commit
    #: fails with CommitConflict if another writer changed one of them meanwhile.
    expect: dict = field(default_factory=dict)

    @property
    def output_table(self) -> str:
        return self.pipeline.output.table


@dataclass
class RunResult:
    run_id: str
    output_table: str
    snapshot_id: int | None
    rows_out: int
    shards: int
    shards_resumed: int
    stats: dict[str, dict]
    source_skipped: dict[str, int] = field(default_factory=dict)
    already_committed: bool = False
    seconds: float = 0.0
    #: One line per input file that could not be read at all ("path: cause").
    file_errors: list[str] = field(default_factory=list)
    #: Set when a concurrent copy of this run committed first (already_committed is then True).
    committed_by_other: bool = False

    @property
    def row_errors(self) -> int:
        return sum(st.get("errors", 0) for st in self.stats.values())


    @property
    def failed_inputs(self) -> int:
        """Input records, files and rows that went wrong (not those skipped by design)."""
        return sum(n for reason, n in self.source_skipped.items() if reason in FAILURE_REASONS) + self.row_errors


def plan_run(pipeline: PipelineConfig, warehouse: Warehouse) -> Plan:
    """Validate everything and decide the shards. No data is read or written."""
    stages = build_stages(pipeline)
    for stage in stages:
        # stages naming warehouse objects (models, fitted thresholds) resolve them now, before any work
        bind = getattr(stage, "bind_warehouse", None)
        if bind is not None:
            bind(warehouse)
    src = pipeline.source
    reader = None
    version = None
    if src.table:
        if not warehouse.table_exists(src.table):
            raise PipelineConfigError(f"source table {src.table!r} does not exist in the warehouse")
        version = src.version if src.version is not None else warehouse.current_snapshot()
        schema = warehouse.schema(src.table, version)
        if "id" not in schema.names:
            raise PipelineConfigError(f"source table {src.table!r} has no `id` column to partition by")
        rows = warehouse.sql(f"SELECT count(*) AS n FROM {src.table}@{version}").column(0)[0].as_py()
        parts = pipeline.executor.shards or max(1, math.ceil(rows / pipeline.executor.rows_per_shard))
        shards = [Shard(key=f"part-{i:05d}", table=src.table, version=version, part=i, parts=parts) for i in range(parts)]
        columns = schema.names
        source_desc = f"{src.table}@{version}"
        identity = {"table": src.table, "version": version, "parts": parts}
    else:
        reader = validate_reader(pipeline)
        files = expand_files(src.files)
        columns = _plan_reader(reader, files)
        shards = [Shard(key=f"file-{i:05d}", path=p) for i, p in enumerate(files)]
        source_desc = f"{len(files)} {src.format} file(s)"
        identity = {
            "files": [(p, _file_signature(p)) for p in files],
            "format": src.format,
            "options": reader.options.model_dump(mode="json"),
        }
    check_columns(stages, columns)
    if reader is not None and getattr(reader.options, "text_field", None):
        check_text_column(stages, columns)
    run_id = fingerprint(
        {
            "source": identity,
            "stages": [s.fingerprint() for s in stages],
            "output": pipeline.output.table,
            "mode": pipeline.write_mode,
            "batch_size": pipeline.executor.batch_size,
        }
    )
    run_dir = os.path.join(warehouse.config.runs_path, run_id)
    return Plan(run_id, run_dir, pipeline, stages, shards, source_desc, reader,
                expect=replaced_tables(pipeline, warehouse, version))


def replaced_tables(pipeline: PipelineConfig, warehouse: Warehouse, source_version: int | None) -> dict:
    """{table: snapshot} for the table an overwrite replaces, at the version the run works from.

    Annotating in place replaces the snapshot it read; overwriting from files replaces the table
    as it is now (None when it does not exist yet). The commit checks that neither changed.
    """
    if pipeline.write_mode != "overwrite":
        return {}
    out = pipeline.output.table
    if pipeline.source.table == out:
        return {out: source_version}
    if not warehouse.table_exists(out):
        return {out: None}
    return {out: warehouse.current_snapshot()}


def _plan_reader(reader, files: list[str]) -> list[str]:
    """``reader.plan(files)``, with an unreadable input named in one line instead of a traceback."""
    try:
        return reader.plan(files)
    except (OSError, ValueError, EOFError, pa.ArrowException) as exc:
        raise PipelineConfigError(f"cannot plan the run over {len(files)} input file(s): {one_line(exc)}") from None


def _file_signature(path: str) -> str:
    if "://" in path:
        return ""
    st = os.stat(path)
    return f"{st.st_size}:{int(st.st_mtime)}"


def committed_snapshot(warehouse: Warehouse, run_id: str) -> int | None:
    """Snapshot id of a run that was already committed, else None.

    Read through a writable connection: the run is about to commit through one, and with
    a shared DuckDB instance per process (see ``Warehouse.connect``) the driver then
    loads the DuckLake extensions once instead of twice.
    """
    literal = "'" + run_id.replace("'", "''") + "'"  # no bound parameter: it would import pandas (~0.2 s)
    with warehouse.connect() as con:
        row = con.execute(f"SELECT snapshot_id FROM {META_SCHEMA}.runs WHERE run_id = {literal}").fetchone()
    return row[0] if row else None


# -- worker side ---------------------------------------------------------------------

def read_shard(shard: Shard, reader, warehouse_config: WarehouseConfig, batch_size: int):
    """Yield Arrow tables for one shard.

    A file the reader cannot go on with (a corrupt Parquet page, an I/O error) ends that
    file, not the run: the batches read so far are kept and the file is reported with its
    cause (``reader.file_errors``). Reading a table snapshot fails loudly instead: that is
    the warehouse itself.
    """
    if shard.path is not None:
        try:
            yield from reader.read(shard.path, batch_size)
        except (OSError, ValueError, EOFError, UnicodeError, pa.ArrowException) as exc:
            if not hasattr(reader, "fail_file"):  # an intermediate segment's own file: not user input
                raise
            reader.fail_file(shard.path, one_line(exc))
        return
    wh = Warehouse(warehouse_config)
    with wh.connect(read_only=True) as con:
        query = (
            f"SELECT * FROM {qualify(shard.table)} AT (VERSION => {int(shard.version)}) "
            f"WHERE hash(id) % {int(shard.parts)} = {int(shard.part)}"
        )
        result = con.execute(query).to_arrow_reader(batch_size)
        for batch in result:
            if batch.num_rows:
                yield pa.Table.from_batches([batch])


def _fix_null_columns(table: pa.Table) -> pa.Table:
    """Columns of Arrow type null (all-null JSON fields) become strings; DuckLake has no NULL type."""
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.string()))
    return table


def process_shard(
    shard: Shard,
    stages: list[Stage],
    reader,
    run_dir: str,
    warehouse_config: WarehouseConfig,
    batch_size: int,
) -> dict:
    """Run all stages over one shard and stage its output. Safe to re-run (idempotent)."""
    done_path = os.path.join(run_dir, f"{shard.key}.done.json")
    if os.path.exists(done_path):
        return json.loads(Path(done_path).read_text())
    out_path = os.path.join(run_dir, f"{shard.key}.parquet")
    tmp_path = out_path + f".tmp-{os.getpid()}"
    stats = {s.name + (f"#{i}" if _dup_name(stages, s) else ""): StageStats() for i, s in enumerate(stages)}
    names = list(stats)
    start = time.perf_counter()
    writer = None
    schema = None
    rows = 0
    if reader is not None:
        reader.skipped.clear()
        getattr(reader, "file_errors", []).clear()  # readers of intermediate segments have none
    for stage in stages:  # a stage that cannot set up (no model, no GPU) fails the shard, not every row
        stage.ensure_setup()
    try:
        for batch in read_shard(shard, reader, warehouse_config, batch_size):
            for stage, name in zip(stages, names):
                if batch.num_rows == 0:
                    break
                batch = run_stage_safely(stage, batch, stats[name])
            if batch.num_rows == 0:
                continue
            batch = _fix_null_columns(batch)
            if writer is None:
                schema = batch.schema
                writer = pq.ParquetWriter(tmp_path, schema, compression="zstd")
            elif batch.schema != schema:
                batch = batch.select(schema.names).cast(schema) if set(batch.column_names) == set(schema.names) else batch
            writer.write_table(batch)
            rows += batch.num_rows
    except BaseException:
        if writer is not None:
            writer.close()
            writer = None
        with contextlib.suppress(OSError):
            os.remove(tmp_path)  # never leave a partial file behind (a re-run writes it again)
        raise
    finally:
        if writer is not None:
            writer.close()
    files = []
    if rows:
        os.replace(tmp_path, out_path)
        files.append(out_path)
    record = {
        "shard": shard.key,
        "files": files,
        "rows": rows,
        "seconds": round(time.perf_counter() - start, 4),
        "finished_at": round(time.time(), 3),
        "stats": {k: v.to_dict() for k, v in stats.items()},
        "source_skipped": dict(reader.skipped) if reader is not None else {},
        "file_errors": list(getattr(reader, "file_errors", [])),
        "stage_order": names,
    }
    tmp_done = done_path + f".tmp-{os.getpid()}"
    Path(tmp_done).write_text(json.dumps(record))
    os.replace(tmp_done, done_path)
    return record


def _dup_name(stages: list[Stage], stage: Stage) -> bool:
    return sum(1 for s in stages if s.name == stage.name) > 1


# -- driver side ----------------------------------------------------------------------

@contextlib.contextmanager
def run_lock(run_dir: str, run_id: str):
    """Hold ``<run_dir>/.lock`` for the whole run: a second copy of the same run (same run id)
    stops at once with a clear message instead of redoing the work beside it. The kernel
    drops the lock when the process dies, so a killed run is resumed by the next attempt."""
    import fcntl

    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, ".lock")
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise DataEngineError(
            f"run {run_id} is already running ({holder}); wait for it to finish, or stop it and "
            "re-run this command to resume"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
    fh.flush()
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def remove_partial_files(run_dir: str) -> int:
    """Delete what killed attempts left: ``*.tmp-PID`` files beside staged shard files.

    Called under :func:`run_lock`, before any worker of this attempt starts, so every such
    file belongs to a process that is gone. Returns how many were removed."""
    import glob

    removed = 0
    for folder in [run_dir, *glob.glob(os.path.join(run_dir, "segment-*"))]:
        for path in glob.glob(os.path.join(folder, "*.tmp-*")):
            with contextlib.suppress(OSError):
                os.remove(path)
                removed += 1
    return removed


def prepare_run_dir(plan: Plan) -> list[Shard]:
    """Create the run folder, write the plan, return the shards that still need work."""
    os.makedirs(plan.run_dir, exist_ok=True)
    remove_partial_files(plan.run_dir)
    plan_file = os.path.join(plan.run_dir, "plan.json")
    if not os.path.exists(plan_file):
        Path(plan_file).write_text(
            json.dumps(
                {
                    "run_id": plan.run_id,
                    "pipeline": plan.pipeline.model_dump(mode="json"),
                    "shards": [asdict(s) for s in plan.shards],
                },
                indent=1,
            )
        )
    return [s for s in plan.shards if not os.path.exists(os.path.join(plan.run_dir, f"{s.key}.done.json"))]


def commit_run(plan: Plan, warehouse: Warehouse, records: list[dict], executor: str, started: float) -> RunResult:
    """Register every staged file as ONE snapshot, with the run record in the same transaction."""
    by_key = {r["shard"]: r for r in records}
    missing = [s.key for s in plan.shards if s.key not in by_key]
    if missing:
        raise DataEngineError(f"run {plan.run_id}: {len(missing)} shard(s) not done, nothing committed")
    verify_staged(plan, by_key)
    files = [f for s in plan.shards for f in by_key[s.key]["files"]]
    order = records[0]["stage_order"] if records else [s.name for s in plan.stages]
    totals = {name: StageStats() for name in order}
    skipped: dict[str, int] = {}
    file_errors: list[str] = []
    rows = 0
    for rec in records:
        rows += rec["rows"]
        file_errors.extend(rec.get("file_errors", []))
        for name, raw in rec["stats"].items():
            totals.setdefault(name, StageStats()).merge(StageStats.from_dict(raw))
        for reason, n in rec.get("source_skipped", {}).items():
            skipped[reason] = skipped.get(reason, 0) + n
    refuse_failed_run(plan, totals, skipped, file_errors, rows)
    schema = _unified_schema(files)
    stats = {name: st.to_dict() for name, st in totals.items()}
    if skipped or file_errors:
        stats[SOURCE_STATS_KEY] = {"skipped": skipped, "file_errors": file_errors[:MAX_FILE_ERRORS_KEPT]}
    timeline = sorted((r["finished_at"], r["rows"]) for r in records if "finished_at" in r)
    if timeline:  # throughput over time in the run report
        stats[SHARDS_STATS_KEY] = {"finished_s": [round(t - started, 3) for t, _ in timeline],
                                   "rows": [n for _, n in timeline]}
    now = dt.datetime.now(dt.timezone.utc)
    run_record = {
        "run_id": plan.run_id,
        "pipeline": plan.pipeline.name,
        "output_table": plan.output_table,
        "mode": plan.pipeline.write_mode,
        "executor": executor,
        "source": plan.source_desc,
        "rows_out": rows,
        "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc),
        "finished_at": now,
        "config": json.dumps(plan.pipeline.model_dump(mode="json")),
        "stats": json.dumps(stats),
    }
    try:
        snapshot = warehouse.commit_files(
            plan.output_table,
            files,
            schema,
            mode=plan.pipeline.write_mode,
            message=f"run {plan.run_id} ({plan.pipeline.name}): {rows} rows from {plan.source_desc}",
            meta_rows=[(f"{META_SCHEMA}.runs", run_record)],
            expect=plan.expect,
        )
    except OSError as exc:  # the commit's scratch files: a full disk, a read-only data folder
        raise DataEngineError(f"commit to {plan.output_table!r} failed, nothing was committed: {exc}; "
                              "re-run the same command to retry the commit (the shards are kept)") from None
    except RunAlreadyCommitted as exc:
        # Another copy of this very run (another machine, same run id) committed first: the
        # table has these rows exactly once, from that commit.
        n = len(plan.shards)
        return RunResult(plan.run_id, plan.output_table, exc.snapshot_id, 0, n, n, {}, already_committed=True,
                         committed_by_other=True, seconds=time.time() - started)
    # The run row is inserted in the commit's own transaction, so DuckLake's virtual
    # `snapshot_id` column of dataengine.runs tells which snapshot each run produced.
    Path(os.path.join(plan.run_dir, "COMMITTED")).write_text(str(snapshot))
    return RunResult(
        plan.run_id, plan.output_table, snapshot, rows, len(plan.shards), 0, stats, skipped,
        seconds=time.time() - started, file_errors=file_errors,
    )


class RunFailed(DataEngineError):
    """Every input of a run failed: nothing was committed (the message says what failed)."""


#: Reader skip reasons that are failures (bad input), as opposed to records skipped by design
#: (not HTML, a revisit, too large for the configured limit, truncated by the crawler).
FAILURE_REASONS = frozenset(
    {"bad_json", "not_an_object", "missing_text", "bad_value", "bad_row_group", "bad_record",
     "bad_content_encoding", "unsupported_content_encoding", "unreadable_rest_of_file", "unreadable_file",
     "empty_file", "too_long_line"}
)


def refuse_failed_run(plan: Plan, totals: dict, skipped: dict[str, int], file_errors: list[str], rows: int) -> None:
    """A run whose rows all failed is not committed: it produced no row because its inputs
    failed, or a stage failed on every row it saw (the rows would carry nothing but nulls).

    Committing it would record the run as done (a re-run would do nothing) and, for an
    overwrite, replace a table with nothing. Its done markers are removed, so a re-run after
    fixing the cause does the work again. A run that produced no row because a filter
    dropped every row, or every record was skipped by design, commits as usual.
    """
    failed_records = {k: v for k, v in skipped.items() if k in FAILURE_REASONS}
    row_errors = {name: st for name, st in totals.items() if st.errors}
    every_row_failed = [name for name, st in totals.items() if st.rows_in and st.errors >= st.rows_in]
    if not every_row_failed and (rows or not (failed_records or row_errors or file_errors)):
        return
    parts = []
    if file_errors:
        parts.append(f"{len(file_errors)} unreadable input file(s), first: {file_errors[0]}")
    if failed_records:
        parts.append("bad input records: " + ", ".join(f"{k} {v:,}" for k, v in sorted(failed_records.items())))
    for name, st in row_errors.items():
        sample = f" (e.g. {st.error_samples[0]})" if st.error_samples else ""
        parts.append(f"stage {name}: {st.errors:,} of {st.rows_in:,} rows failed{sample}")
    import shutil

    run_dir = Path(plan.run_dir)
    for marker in [*run_dir.glob("*.done.json"), *run_dir.glob("segment-*/*.done.json")]:
        with contextlib.suppress(OSError):
            marker.unlink()
    for reduced in run_dir.glob("reduce-*"):
        shutil.rmtree(reduced, ignore_errors=True)
    what = "every input failed" if not rows else f"stage {every_row_failed[0]} failed on every row"
    raise RunFailed(
        f"run {plan.run_id}: {what}, nothing was committed; " + "; ".join(parts)
        + ". Fix the cause and re-run the same command"
    )


def verify_staged(plan: Plan, by_key: dict[str, dict]) -> None:
    """Check every staged file before it is registered: a readable Parquet footer and the row
    count its done marker promised. A damaged file (a disk error, someone's editor) is removed
    with its marker, and the run stops with the shard names: a re-run redoes only those."""
    bad = []
    for shard in plan.shards:
        record = by_key[shard.key]
        for path in record["files"]:
            try:
                rows = pq.ParquetFile(path).metadata.num_rows
                problem = None if rows == record["rows"] else f"{rows} rows, its done marker says {record['rows']}"
            except (OSError, pa.ArrowException) as exc:
                problem = one_line(exc)
            if problem:
                bad.append(f"{path}: {problem}")
                for stale in (path, os.path.join(plan.run_dir, f"{shard.key}.done.json")):
                    with contextlib.suppress(OSError):
                        os.remove(stale)
    if bad:
        raise DataEngineError(
            f"run {plan.run_id}: {len(bad)} staged file(s) are damaged, nothing was committed; they were removed, "
            f"re-run the same command to redo those shards: " + "; ".join(bad[:5])
        )


def _unified_schema(files: list[str]) -> pa.Schema:
    if not files:
        return pa.schema([("id", pa.string()), ("text", pa.string())])
    schemas = [pq.read_schema(f) for f in files]
    return pa.unify_schemas(schemas, promote_options="permissive")
