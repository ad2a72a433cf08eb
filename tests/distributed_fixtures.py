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

def write_jsonl_parts(records: list[dict], folder, files: int) -> list[str]:
    """``records`` dealt round-robin into ``files`` JSONL files ``part-<i>.jsonl`` under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(files):
        path = folder / f"part-{f}.jsonl"
        with open(path, "w") as fh:
            for rec in records[f::files]:
                fh.write(json.dumps(rec) + "\n")
        paths.append(str(path))
    return paths


def fresh_warehouse(tmp_path_factory, name: str):
    """A new DuckLake warehouse in a fresh temporary folder (module-scoped fixtures use it)."""
    from dataengine.warehouse import Warehouse, init_warehouse

    root = tmp_path_factory.mktemp(name)
    init_warehouse(root / "wh")
    return Warehouse(root / "wh")


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
    paths = write_jsonl_parts(records, folder, files)
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


def write_cluster_corpus(folder, files: int = 4, seed: int = 11) -> tuple[list[str], dict]:
    """Real documents with planted near-duplicate structure, split into JSONL files.

    * chains A ~ B ~ C: B is A with 3 word substitutions, C is B with 3 more, so A and C are
      not similar enough on their own (word 5-gram Jaccard under 0.8) and meet only through B;
    * one large cluster: a base document and 60 variants of it with 1-2 substitutions each;
    * exact copies (case and spacing changed) and URL variants (tracking parameters,
      http/https, trailing slash) of other documents;
    * the rest of the demo corpus as it is.

    Returns the file paths and the planted truth: ``chains`` (lists of ids) and ``large``,
    as the ids the ingested table has.
    """
    from dataengine.filters.near_duplicates import edit_words

    rng = random.Random(seed)
    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

    def when() -> str | None:
        return None if rng.random() < 0.1 else (base + dt.timedelta(hours=rng.randrange(5000))).isoformat()

    def substitute(words: list[str], n: int) -> list[str]:
        out = list(words)
        for i in rng.sample(range(len(out)), n):
            out[i] = f"planted{rng.randrange(10**6)}"
        return out

    originals = demo_records()
    long_docs = [r for r in originals if 180 <= len(r["text"].split()) <= 400]
    records = [{**r, "fetched_at": when()} for r in originals]
    truth: dict = {"chains": [], "large": []}
    chained = 0
    for doc in long_docs[:-1]:
        if chained == 10:
            break
        a = doc["text"].split()
        for edits in range(3, 10):  # the fewest edits that make A and C dissimilar on their own
            b = substitute(a, edits)
            c_words = substitute(b, edits)
            ab, bc, ac = _similarities([a, b, c_words])
            if min(ab, bc) >= 0.82 and ac < 0.78:
                break
        else:
            continue
        c = chained
        chained += 1
        ids = [doc["id"], f"chain-{c}-b", f"chain-{c}-c"]
        records += [{"id": ids[1], "text": " ".join(b), "url": f"https://chains.example/{c}/b", "source": "chain",
                     "fetched_at": when()},
                    {"id": ids[2], "text": " ".join(c_words), "url": f"https://chains.example/{c}/c",
                     "source": "chain", "fetched_at": when()}]
        truth["chains"].append(ids)
    hub = long_docs[-1]
    truth["large"].append(hub["id"])
    for v in range(60):
        words = edit_words(hub["text"].split(), rng, 0) if v == 0 else substitute(hub["text"].split(), 1 + v % 2)
        vid = f"large-{v:02d}"
        records.append({"id": vid, "text": " ".join(words), "url": f"https://mirror{v}.example/page",
                        "source": "large", "fetched_at": when()})
        truth["large"].append(vid)
    for i in range(40):
        orig = rng.choice(originals)
        text = orig["text"].upper() if i % 2 else "  " + orig["text"].replace(" ", "  ")
        url = orig["url"].replace("https://", "http://") + ("/?utm_source=x" if i % 3 else "/")
        records.append({"id": f"copy-{i:02d}", "text": text, "url": url, "source": "copies", "fetched_at": when()})
    rng.shuffle(records)
    paths = write_jsonl_parts(records, folder, files)
    return paths, truth  # ingest keeps a JSONL record's own id, so these are the table's ids


def _similarities(docs: list[list[str]]) -> tuple[float, float, float]:
    """Word 5-gram Jaccard of (0, 1), (1, 2) and (0, 2)."""
    from dataengine.filters.shingles import jaccard, shingle_sets

    sets = shingle_sets([" ".join(d) for d in docs], "word", 5)
    return jaccard(sets[0], sets[1]), jaccard(sets[1], sets[2]), jaccard(sets[0], sets[2])
