"""The reduce step of global stages: read mapped shards, run the stage's SQL, write the result.

The stage types live in :mod:`dataengine.core.global_stage`; this module is the engine's
part (see the docstring there): the driver's DuckDB reduce, the partition writer every
engine shares, and the reader that attaches the reduce output back onto each shard.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time
from collections import Counter
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataengine.core.errors import DataEngineError
from dataengine.core.global_stage import ROW_COL, SHARD_COL, GlobalStage, quote_ident

REDUCE_DONE = "_SUCCESS"


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


# -- reading the mapped rows and writing the reduce output --------------------------------

def shard_key_of(path: str) -> str:
    return os.path.basename(path)[: -len(".parquet")]


def read_reduce_inputs(stage: GlobalStage, path: str) -> pa.Table:
    """The reduce's input rows of one mapped shard file: ``_shard``, ``_row`` and the needed columns."""
    table = pq.read_table(path, columns=stage.reduce_columns())
    n = table.num_rows
    table = table.add_column(0, ROW_COL, pa.array(range(n), pa.int64()))
    return table.add_column(0, SHARD_COL, pa.array([shard_key_of(path)] * n, pa.string()))


def reduce_arrow(stage: GlobalStage, rows: pa.Table) -> pa.Table:
    """Run the reduce SQL in an in-process DuckDB over ``rows`` (one partition of complete groups)."""
    from dataengine.core.duck import new_connection

    con = new_connection()
    try:
        con.register("rows", rows)
        return conform_reduce_output(stage, con.execute(stage.reduce_duckdb(con, "rows")).fetch_arrow_table())
    finally:
        con.close()


def conform_reduce_output(stage: GlobalStage, table: pa.Table) -> pa.Table:
    schema = reduce_output_schema(stage)
    return table.select(schema.names).cast(schema)


def reduce_output_schema(stage: GlobalStage) -> pa.Schema:
    fields = [(SHARD_COL, pa.string()), (ROW_COL, pa.int64())]
    return pa.schema(fields + list(stage.reduce_output_columns().items()))


def write_reduce_partition(result: pa.Table, out_dir: str, part_name: str) -> int:
    """Write ``result`` as ``<out_dir>/_shard=<key>/<part_name>.parquet``, one file per shard.

    Deterministic names: a retried task overwrites its own files, never adds new ones.
    """
    if result.num_rows == 0:
        return 0
    for key in pc.unique(result.column(SHARD_COL)).to_pylist():
        part = result.filter(pc.equal(result.column(SHARD_COL), key)).drop_columns([SHARD_COL])
        folder = os.path.join(out_dir, f"{SHARD_COL}={key}")
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, f"{part_name}.parquet")
        pq.write_table(part, target + ".tmp")
        os.replace(target + ".tmp", target)
    return result.num_rows


def finish_reduce(tmp_dir: str, out_dir: str, stats: dict) -> None:
    """Make a reduce output visible atomically (rename) with its stats marker."""
    os.makedirs(tmp_dir, exist_ok=True)
    with open(os.path.join(tmp_dir, REDUCE_DONE), "w") as fh:
        json.dump(stats, fh)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)


def reduce_done(out_dir: str) -> dict | None:
    marker = os.path.join(out_dir, REDUCE_DONE)
    if not os.path.exists(marker):
        return None
    with open(marker) as fh:
        return json.load(fh)


def fresh_tmp_dir(out_dir: str) -> str:
    tmp = out_dir + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)  # a crashed earlier attempt
    os.makedirs(tmp)
    return tmp


def run_reduce(where: str, mapped_files: list[str], out_dir: str, reduce_files) -> dict:
    """The frame every reduce shares: a fresh temporary folder, ``reduce_files(files, tmp)``
    over the mapped files that exist (it returns the rows reduced), then the done marker with
    the stats and an atomic rename to ``out_dir``. ``where`` names the engine in the stats."""
    start = time.perf_counter()
    tmp = fresh_tmp_dir(out_dir)
    files = [f for f in mapped_files if os.path.exists(f)]
    rows = reduce_files(files, tmp) if files else 0
    stats = {"where": where, "rows": rows, "seconds": round(time.perf_counter() - start, 4)}
    finish_reduce(tmp, out_dir, stats)
    return stats


# -- the embedded default: the reduce in DuckDB on the driver ----------------------------

def reduce_on_driver(stage: GlobalStage, mapped_files: list[str], out_dir: str) -> dict:
    """Run the reduce over every mapped file in one DuckDB query (out of core) on this machine."""
    return run_reduce("driver (duckdb)", mapped_files, out_dir, lambda files, tmp: _reduce_in_duckdb(stage, files, tmp))


def _reduce_in_duckdb(stage: GlobalStage, files: list[str], tmp: str) -> int:
    from dataengine.core.duck import new_connection

    con = new_connection()
    try:
        con.execute(f"SET temp_directory = '{_sql_str(os.path.join(tmp, '.spill'))}'")
        cols = ", ".join(quote_ident(c) for c in stage.reduce_columns())
        file_list = "[" + ", ".join(f"'{_sql_str(f)}'" for f in files) + "]"
        con.execute(
            f"""CREATE TEMP VIEW rows AS
                SELECT regexp_extract(filename, '([^/]+)\\.parquet$', 1) AS {SHARD_COL},
                       CAST(file_row_number AS BIGINT) AS {ROW_COL}, {cols}
                FROM read_parquet({file_list}, filename = true, file_row_number = true)"""
        )
        rows_in = con.execute("SELECT count(*) FROM rows").fetchone()[0]
        names = ", ".join(quote_ident(c) for c in reduce_output_schema(stage).names)
        con.execute(
            f"COPY (SELECT {names} FROM ({stage.reduce_duckdb(con, 'rows')})) TO '{_sql_str(tmp)}' "
            f"(FORMAT parquet, PARTITION_BY ({SHARD_COL}), OVERWRITE_OR_IGNORE)"
        )
    finally:
        con.close()
    shutil.rmtree(os.path.join(tmp, ".spill"), ignore_errors=True)
    return rows_in


class ReducedShardReader:
    """Reads a mapped shard file back with the reduce's columns attached by row position.

    Quacks like a :class:`dataengine.core.reader.Reader` so :func:`process_shard` can run the
    stages after the global stage on it, on any executor.
    """

    format = "_reduced"

    def __init__(self, stage: GlobalStage, reduce_dir: str):
        self.stage = stage
        self.reduce_dir = reduce_dir
        self.skipped: Counter[str] = Counter()

    def __getstate__(self):
        return {"stage": self.stage, "reduce_dir": self.reduce_dir}

    def __setstate__(self, state):
        self.__init__(state["stage"], state["reduce_dir"])

    def _reduced(self, key: str, n_rows: int) -> pa.Table:
        files = sorted(glob.glob(os.path.join(self.reduce_dir, f"{SHARD_COL}={key}", "*.parquet")))
        schema = reduce_output_schema(self.stage).remove(0)
        parts = [pq.read_table(f, schema=schema) for f in files]
        table = pa.concat_tables(parts) if parts else schema.empty_table()
        table = table.sort_by(ROW_COL)
        if table.num_rows != n_rows or (n_rows and table.column(ROW_COL).to_pylist() != list(range(n_rows))):
            raise DataEngineError(
                f"global stage {self.stage.name!r}: reduce output for shard {key} has {table.num_rows} "
                f"rows for {n_rows} input rows (the reduce must return every row exactly once)"
            )
        return table.drop_columns([ROW_COL])

    def read(self, path: str, batch_size: int) -> Iterator[pa.Table]:
        if not os.path.exists(path):  # the shard had no rows left before the global stage
            return
        parquet = pq.ParquetFile(path)
        reduced = self._reduced(shard_key_of(path), parquet.metadata.num_rows)
        replaced = set(reduced.column_names) | set(self.stage.private_columns())
        offset = 0
        for record_batch in parquet.iter_batches(batch_size=batch_size):
            batch = pa.Table.from_batches([record_batch])
            batch = batch.drop_columns([c for c in batch.column_names if c in replaced])
            extra = reduced.slice(offset, batch.num_rows)
            for name in extra.column_names:
                batch = batch.append_column(name, extra.column(name))
            offset += batch.num_rows
            yield batch
