"""Read a table snapshot from Dask or Spark exactly as DuckDB sees it.

Globbing the data folder is wrong for a DuckLake table: merged-away files stay on disk
until cleanup, small writes are inlined into the catalog, and deletes live in delete
files. So every Dask/Spark partition asks DuckDB instead: it attaches the lake READ_ONLY
and reads ``SELECT * FROM t AT (VERSION => v) WHERE hash(id) % parts = i``, which applies
inlined rows, delete files and merges exactly as ``SELECT ... AT (VERSION => v)`` does.

* :func:`dask_snapshot` -> ``dask.dataframe`` (``from_map`` over the partitions);
* :func:`spark_snapshot` -> Spark DataFrame through the Python Data Source ``ducklake``
  (``spark.read.format("ducklake").option("table", ...).load()``).

The catalog must be reachable from the workers (SQLite/DuckDB file on a shared disk, or
PostgreSQL), and so must the data path.
"""

from __future__ import annotations

import math
from typing import Iterator

import pyarrow as pa

from dataengine.warehouse.lake import Warehouse, WarehouseConfig, qualify

try:  # pyspark is optional: the Spark classes below only work when it is installed
    from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
except ImportError:  # pragma: no cover - exercised only without pyspark
    DataSource = DataSourceReader = object
    InputPartition = None

ROWS_PER_PARTITION = 100_000


def resolve_snapshot(warehouse: Warehouse, table: str, version: int | None, partitions: int | None) -> tuple[int, int, pa.Schema]:
    """Pin the snapshot and the partition count on the driver, so every worker reads the same version."""
    version = warehouse.current_snapshot() if version is None else int(version)
    schema = warehouse.schema(table, version)
    if "id" not in schema.names:
        raise ValueError(f"table {table!r} has no `id` column to partition by")
    if partitions is None:
        rows = warehouse.sql(f"SELECT count(*) FROM {qualify(table)} AT (VERSION => {version})").column(0)[0].as_py()
        partitions = max(1, math.ceil(rows / ROWS_PER_PARTITION))
    return version, int(partitions), schema


def partition_query(table: str, version: int, part: int, parts: int, columns: list[str] | None = None) -> str:
    cols = ", ".join('"' + c.replace('"', '""') + '"' for c in columns) if columns else "*"
    return (
        f"SELECT {cols} FROM {qualify(table)} AT (VERSION => {int(version)}) "
        f"WHERE hash(id) % {int(parts)} = {int(part)}"
    )


def read_partition_batches(
    config: WarehouseConfig, table: str, version: int, part: int, parts: int,
    columns: list[str] | None = None, batch_size: int = 65_536,
) -> Iterator[pa.RecordBatch]:
    """Arrow batches of partition ``part`` of ``parts`` of ``table`` at ``version``, read through DuckDB."""
    with Warehouse(config).connect(read_only=True) as con:
        reader = con.execute(partition_query(table, version, part, parts, columns)).to_arrow_reader(batch_size)
        for batch in reader:
            if batch.num_rows:
                yield batch


def read_partition(config: WarehouseConfig, table: str, version: int, part: int, parts: int, columns=None) -> pa.Table:
    with Warehouse(config).connect(read_only=True) as con:
        return con.execute(partition_query(table, version, part, parts, columns)).fetch_arrow_table()


# -- Dask ---------------------------------------------------------------------------------

def _dask_partition(part: int, config: WarehouseConfig, table: str, version: int, parts: int, columns):
    return read_partition(config, table, version, part, parts, columns).to_pandas()


def dask_snapshot(
    warehouse: Warehouse, table: str, version: int | None = None,
    partitions: int | None = None, columns: list[str] | None = None,
):
    """``table`` at snapshot ``version`` (default: current) as a dask DataFrame of ``partitions`` parts."""
    import dask.dataframe as dd

    version, parts, schema = resolve_snapshot(warehouse, table, version, partitions)
    if columns:
        schema = pa.schema([schema.field(c) for c in columns])
    meta = schema.empty_table().to_pandas()
    return dd.from_map(
        _dask_partition, range(parts), config=warehouse.config, table=table, version=version,
        parts=parts, columns=columns, meta=meta, enforce_metadata=False,
        label=f"ducklake-{table}-v{version}",
    )


# -- Spark --------------------------------------------------------------------------------

class DuckLakeDataSource(DataSource):
    """Spark Python Data Source ``ducklake``: one Spark partition per DuckDB partition read.

    Options: ``root``, ``catalog``, ``data_path`` (the WarehouseConfig), ``table``,
    ``version`` and ``partitions`` (pinned by :func:`spark_snapshot`).
    """

    @classmethod
    def name(cls) -> str:
        return "ducklake"

    def _config(self) -> WarehouseConfig:
        o = self.options
        return WarehouseConfig(o["root"], o["catalog"], o["data_path"])

    def schema(self):
        from pyspark.sql.pandas.types import from_arrow_schema

        o = self.options
        arrow = Warehouse(self._config()).schema(o["table"], int(o["version"]))
        return from_arrow_schema(arrow)

    def reader(self, schema):
        o = self.options
        return DuckLakeSnapshotReader(self._config(), o["table"], int(o["version"]), int(o["partitions"]), schema.fieldNames())


class DuckLakeSnapshotReader(DataSourceReader):
    def __init__(self, config: WarehouseConfig, table: str, version: int, parts: int, columns: list[str]):
        self.config, self.table, self.version, self.parts, self.columns = config, table, version, parts, columns

    def partitions(self):
        return [InputPartition(i) for i in range(self.parts)]

    def read(self, partition):
        # Spark's session time zone is applied by Spark; hand it UTC instants.
        for batch in read_partition_batches(self.config, self.table, self.version, partition.value, self.parts, self.columns):
            yield _utc_timestamps(batch)


def _utc_timestamps(batch: pa.RecordBatch) -> pa.RecordBatch:
    if not any(pa.types.is_timestamp(f.type) and f.type.tz for f in batch.schema):
        return batch
    arrays = [
        a.cast(pa.timestamp(a.type.unit, tz="UTC")) if pa.types.is_timestamp(a.type) and a.type.tz else a
        for a in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def spark_snapshot(spark, warehouse: Warehouse, table: str, version: int | None = None, partitions: int | None = None):
    """``table`` at snapshot ``version`` (default: current) as a Spark DataFrame of ``partitions`` parts."""
    if InputPartition is None:
        raise ImportError("spark_snapshot needs pyspark >= 4.0 (pip install 'dataengine[spark]')")
    version, parts, _ = resolve_snapshot(warehouse, table, version, partitions)
    spark.dataSource.register(DuckLakeDataSource)
    cfg = warehouse.config
    return (
        spark.read.format("ducklake")
        .option("root", cfg.root).option("catalog", cfg.catalog).option("data_path", cfg.data_path)
        .option("table", table).option("version", str(version)).option("partitions", str(parts))
        .load()
    )
