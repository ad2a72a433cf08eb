"""Reading a blend component: the rows its SQL selects at a pinned snapshot.

Shared by blend versions (hashing, counting) and exports (tokenizing), which run in worker
processes that need only this, not the blend catalog.
"""

from __future__ import annotations

from typing import Iterator

import duckdb
import pyarrow as pa

from dataengine.core.errors import DataEngineError, one_line
from dataengine.core.sql_guard import UnsafeSQL, check_sql


class BlendError(DataEngineError):
    pass


def component_query(sql: str, extra: str = "") -> str:
    return f"SELECT id, text FROM ({sql.rstrip().rstrip(';')}) AS component {extra}"


def iter_component(
    warehouse, sql: str, snapshot: int, batch_size: int = 10_000, part: int = 0, parts: int = 1
) -> Iterator[pa.Table]:
    """Rows (id, text) of a component at ``snapshot``, ordered by id (one partition of them)."""
    try:
        check_sql(sql, write=False)  # a component is user SQL: reads only, whoever stored it
    except UnsafeSQL as exc:
        raise BlendError(str(exc)) from None
    where = f"WHERE hash(id) % {int(parts)} = {int(part)}" if parts > 1 else ""
    query = component_query(sql, f"{where} ORDER BY id")
    with warehouse.connect(snapshot=snapshot) as con:
        try:
            reader = con.execute(query).to_arrow_reader(batch_size)
        except duckdb.Error as exc:
            raise BlendError(one_line(exc)) from None
        for batch in reader:
            if batch.num_rows:
                yield pa.Table.from_batches([batch])
