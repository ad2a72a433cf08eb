"""Reading a blend component: the rows its SQL selects at a pinned snapshot.

Shared by blend versions (hashing, counting) and exports (tokenizing, row exports), which
run in worker processes that need only this, not the blend catalog.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import duckdb
import pyarrow as pa

from dataengine.core.errors import DataEngineError, one_line
from dataengine.core.sql_guard import UnsafeSQL, check_sql


class BlendError(DataEngineError):
    pass


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def component_query(sql: str, extra: str = "", columns: Sequence[str] = ("id", "text")) -> str:
    cols = ", ".join(_quote(c) for c in columns)
    return f"SELECT {cols} FROM ({sql.rstrip().rstrip(';')}) AS component {extra}"


def component_columns(con, sql: str) -> list[str]:
    """The column names a component's SQL returns (DuckDB's error as a BlendError)."""
    try:
        return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM ({sql.rstrip().rstrip(';')})").fetchall()]
    except duckdb.Error as exc:
        raise BlendError(one_line(exc)) from None


def iter_component(
    warehouse, sql: str, snapshot: int, batch_size: int = 10_000, part: int = 0, parts: int = 1,
    columns: Sequence[str] = ("id", "text"),
) -> Iterator[pa.Table]:
    """Rows (``columns``; default id, text) of a component at ``snapshot``, ordered by id
    (one partition of them)."""
    try:
        check_sql(sql, write=False)  # a component is user SQL: reads only, whoever stored it
    except UnsafeSQL as exc:
        raise BlendError(str(exc)) from None
    where = f"WHERE hash(id) % {int(parts)} = {int(part)}" if parts > 1 else ""
    query = component_query(sql, f"{where} ORDER BY id", columns)
    with warehouse.connect(snapshot=snapshot) as con:
        try:
            reader = con.execute(query).to_arrow_reader(batch_size)
        except duckdb.Error as exc:
            raise BlendError(one_line(exc)) from None
        for batch in reader:
            if batch.num_rows:
                yield pa.Table.from_batches([batch])
