"""One Dask cluster and one Spark session per test session, plus shared test data builders.

The cluster and the session are process-wide singletons (not pytest fixtures defined
here): a session-scoped fixture imported into two test modules would be instantiated
once per module, and each start costs seconds (Dask ~3.5 s, Spark ~15 s). Test modules
wrap these getters in their own fixtures.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import random
import sys

import pyarrow as pa

from conftest import demo_records

_dask_client = None
_spark = None


def dask_client():
    """A real LocalCluster (2 worker processes x 1 thread, 127.0.0.1) shared by every test."""
    global _dask_client
    if _dask_client is None:
        from contextlib import ExitStack

        from dataengine.engine.dask_executor import dask_client as start
        from dataengine.core.pipeline import ExecutorConfig

        stack = ExitStack()
        _dask_client = stack.enter_context(start(ExecutorConfig(kind="dask", workers=2, threads=1)))
        atexit.register(stack.close)
    return _dask_client


def spark_session():
    """A real Spark local[2] session (task retries on) shared by every test."""
    global _spark
    if _spark is None:
        from dataengine.engine.spark_executor import spark_session as start

        _spark = start(workers=2, retries=3)
        atexit.register(_spark.stop)
    assert sys.executable  # PYSPARK_PYTHON is this interpreter (set by spark_session)
    return _spark


# -- data ------------------------------------------------------------------------------

def write_dup_corpus(folder, files: int = 4, seed: int = 7) -> tuple[list[str], int]:
    """The demo corpus plus reformatted copies of some documents, split into JSONL files.

    Returns the file paths and the number of distinct normalised texts (what
    ``exact_dedup`` must keep).
    """
    rng = random.Random(seed)
    records = []
    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    for rec in demo_records():
        records.append({**rec, "fetched_at": (base + dt.timedelta(hours=rng.randrange(5000))).isoformat()})
    for i in range(80):
        orig = rng.choice(records[:400])
        text = orig["text"].upper() if i % 2 else "  " + orig["text"].replace(" ", "   ") + "\n"
        when = None if i % 5 == 0 else (base + dt.timedelta(hours=rng.randrange(5000))).isoformat()
        records.append({"id": f"copy-{i}", "text": text, "url": orig["url"], "source": "copies", "fetched_at": when})
    rng.shuffle(records)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(files):
        path = folder / f"part-{f}.jsonl"
        with open(path, "w") as fh:
            for rec in records[f::files]:
                fh.write(json.dumps(rec) + "\n")
        paths.append(str(path))
    distinct = len({" ".join(r["text"].lower().split()) for r in records})
    return paths, distinct


def snapshot_rows(start: int, stop: int) -> pa.Table:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    ids = range(start, stop)
    return pa.table(
        {
            "id": [f"doc-{i:05d}" for i in ids],
            "n": pa.array(list(ids), pa.int64()),
            "text": [f"document {i} " * (1 + i % 4) for i in ids],
            "fetched_at": pa.array([base + dt.timedelta(minutes=i) for i in ids], pa.timestamp("us", tz="UTC")),
            "score": [i / 3 for i in ids],
        }
    )


def build_versioned_table(wh, table: str = "snap") -> dict[str, int]:
    """A table whose history has big and inlined inserts, a compaction, deletes, an update,
    and an expired snapshot whose files were cleaned up. Returns the readable versions."""
    v = {}
    v["first"] = wh.write_table(table, snapshot_rows(0, 300))
    second = wh.write_table(table, snapshot_rows(300, 500))
    v["inlined"] = wh.write_table(table, snapshot_rows(500, 505))  # small: lives in the catalog
    with wh.connect() as con:
        con.execute("CALL ducklake_merge_adjacent_files('lake')")
    v["compacted"] = wh.current_snapshot()
    wh.execute(f"DELETE FROM {table} WHERE n % 7 = 0")
    v["deleted"] = wh.current_snapshot()
    wh.execute(f"UPDATE {table} SET score = -1 WHERE n % 11 = 0")
    v["updated"] = wh.current_snapshot()
    v["appended"] = wh.write_table(table, snapshot_rows(505, 700))
    with wh.connect() as con:
        con.execute("CALL ducklake_expire_snapshots('lake', versions => [?])", [second])
        con.execute("CALL ducklake_cleanup_old_files('lake', cleanup_all => true)")
    assert v["compacted"] > v["inlined"], "merge_adjacent_files made no snapshot: the compaction case is not covered"
    return v


def sorted_rows(table: pa.Table, key: str = "id") -> list[dict]:
    """Rows as dicts ordered by ``key``: table equality with order aside."""
    return table.sort_by(key).to_pylist()


def first_difference(got: list[dict], expected: list[dict]) -> str:
    """A readable description of where two sorted row lists differ ('' when equal)."""
    if len(got) != len(expected):
        return f"{len(got)} rows vs {len(expected)}"
    for a, b in zip(got, expected):
        if a != b:
            cols = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            return f"row {b.get('id')}: " + "; ".join(f"{c}: {str(a.get(c))[:80]!r} != {str(b.get(c))[:80]!r}" for c in cols)
    return ""
