"""The frame of every global stage's reduce: output layout, done marker, and the apply reader.

The stage types live in :mod:`dataengine.core.global_stage`; this module is the engine's
part (see the docstring there): the output schema, the partition writer every engine
shares, the temporary folder + done marker + atomic rename around a reduce, and the reader
that attaches the reduce output back onto each shard. Where the reduce's steps run is
:mod:`dataengine.engine.reduce_plan` (DuckDB on the driver) and
:mod:`dataengine.engine.shuffle_plan` (Dask/Spark shuffles).
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
from dataengine.core.global_stage import ROW_COL, SHARD_COL, GlobalStage

REDUCE_DONE = "_SUCCESS"


# -- reading the mapped rows and writing the reduce output --------------------------------

def shard_key_of(path: str) -> str:
    return os.path.basename(path)[: -len(".parquet")]


def reduce_output_schema(stage: GlobalStage) -> pa.Schema:
    fields = [(SHARD_COL, pa.string()), (ROW_COL, pa.int64())]
    return pa.schema(fields + list(stage.reduce_output_columns().items()))


def write_reduce_partition(result: pa.Table, out_dir: str, part_name: str) -> int:
    """Write ``result`` as ``<out_dir>/_shard=<key>/<part_name>.parquet``, one file per shard.

    Deterministic names: a retried task overwrites its own files, never adds new ones.
    """
    if result.num_rows == 0:
        return 0
    result = result.sort_by(SHARD_COL)
    counts = pc.value_counts(result.column(SHARD_COL)).to_pylist()  # in order of appearance
    offset = 0
    for entry in counts:
        key, n = entry["values"], entry["counts"]
        part = result.slice(offset, n).drop_columns([SHARD_COL])
        offset += n
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
    over the mapped files that exist (it returns its stats: ``rows`` reduced, steps, rounds,
    shuffle bytes), then the done marker with the stats and an atomic rename to ``out_dir``.
    ``where`` names the engine in the stats."""
    start = time.perf_counter()
    tmp = fresh_tmp_dir(out_dir)
    files = [f for f in mapped_files if os.path.exists(f)]
    extra = reduce_files(files, tmp) if files else {"rows": 0}
    stats = {"where": where, **extra, "seconds": round(time.perf_counter() - start, 4)}
    finish_reduce(tmp, out_dir, stats)
    return stats


# -- the apply step: each shard read back with its reduce output ------------------------

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
