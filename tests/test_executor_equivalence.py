"""The same pipeline on the local, Dask and Spark executors gives the same table.

Real components: a DuckLake warehouse, a Dask LocalCluster (2 processes) and Spark
local[2], one of each for the whole test session (see distributed_fixtures).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataengine.engine import run_pipeline
from dataengine.core.pipeline import pipeline_from_dict
from distributed_fixtures import (dask_client, first_difference, fresh_warehouse, sorted_rows, spark_session,
                                  write_dup_corpus)
from dataengine.warehouse import Warehouse

pytestmark = pytest.mark.slow  # Spark/Dask sessions, torchrun, subprocess training: `make test` only


EXECUTORS = ("local", "dask", "spark")


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Warehouse:
    return fresh_warehouse(tmp_path_factory, "equivalence")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_dup_corpus(tmp_path_factory.mktemp("corpus"))


def _run(kind: str, raw: dict, lake: Warehouse, **options):
    """Run ``raw`` (a pipeline dict) on executor ``kind`` with the shared cluster/session."""
    if kind == "dask":
        options["client"] = dask_client()
    elif kind == "spark":
        options["spark"] = spark_session()
    else:
        options.setdefault("workers", 1)
    return run_pipeline(pipeline_from_dict(raw), lake, executor=kind, progress=False, **options)


def _file_pipeline(files, table: str) -> dict:
    return {
        "name": f"ingest-{table}",
        "source": {"files": files, "format": "jsonl"},
        "stages": ["text_stats", {"name": "sql_filter", "params": {"where": "text_words >= 2"}}, "exact_dedup",
                   "url_dedup", {"name": "fuzzy_dedup", "params": {"seed": 7}}],
        "output": {"table": table},
        "executor": {"batch_size": 64},
    }


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def test_jsonl_pipeline_with_global_stage_is_identical_on_every_executor(lake, corpus):
    files, _ = corpus
    tables = {}
    for kind in EXECUTORS:
        result = _run(kind, _file_pipeline(files, f"docs_{kind}"), lake)
        assert result.shards == len(files) and result.rows_out > 400
        runs = lake.sql("SELECT executor FROM dataengine.runs WHERE run_id = ?", [result.run_id]).column(0).to_pylist()
        assert runs == [kind]
        tables[kind] = lake.sql(f"SELECT * FROM docs_{kind}")

    local = sorted_rows(tables["local"])
    assert len({r["id"] for r in local}) == len(local)
    for kind in ("dask", "spark"):
        assert tables[kind].schema.names == tables["local"].schema.names
        got = sorted_rows(tables[kind])
        assert got == local, f"{kind} table differs from local: {first_difference(got, local)}"

    # ...and the common answer is right: one kept document per distinct normalised text,
    # the earliest fetched (nulls last), then the smallest id.
    clusters: dict[str, list[dict]] = {}
    for row in local:
        clusters.setdefault(row["dup_cluster"], []).append(row)
    assert sum(r["dup_keep"] for r in local) == len(clusters) == len({_normalised(r["text"]) for r in local})
    assert any(len(members) > 1 for members in clusters.values())
    # fuzzy clusters (same seed on every executor) contain at least the exact ones
    assert any(r["fuzzy_dup_cluster_size"] > 1 for r in local)
    for members in clusters.values():
        assert len({m["fuzzy_dup_cluster"] for m in members}) == 1
    for members in clusters.values():
        assert all(m["dup_cluster_size"] == len(members) for m in members)
        first = min(members, key=lambda m: (m["fetched_at"] is None, m["fetched_at"] or 0, m["id"]))
        assert [m["id"] for m in members if m["dup_keep"]] == [first["id"]]


def test_table_snapshot_pipeline_with_shuffle_reduce_matches_driver_reduce(lake, corpus):
    """Source: a table snapshot split in 3 partitions; Dask/Spark reduce by shuffling."""
    files, _ = corpus
    _run("local", _file_pipeline(files, "source_docs"), lake)
    version = lake.current_snapshot()
    lake.execute("DELETE FROM source_docs WHERE text_words < 5")  # a newer snapshot the run must not see

    def pipeline(table):
        return {
            "name": f"annotate-{table}",
            "source": {"table": "source_docs", "version": version},
            "stages": [{"name": "exact_dedup", "params": {"order_by": ["id"]}}, {"name": "text_stats", "params": {"prefix": "after"}}],
            "output": {"table": table},
            "executor": {"shards": 3, "batch_size": 50},
        }

    _run("local", pipeline("annot_local"), lake)
    on_dask = _run("dask", pipeline("annot_dask"), lake, reduce="engine")
    on_spark = _run("spark", pipeline("annot_spark"), lake, reduce="engine")
    for result, where in ((on_dask, "dask shuffle"), (on_spark, "spark shuffle")):
        assert result.stats["exact_dedup.reduce"]["where"] == where
        # committed: the map outputs and reduce results of the global stage are gone, the data is not
        run_dir = Path(lake.config.runs_path) / result.run_id
        assert not (run_dir / "segment-0").exists() and not (run_dir / "reduce-0").exists()
        assert (run_dir / "COMMITTED").exists()
    expected = sorted_rows(lake.sql("SELECT * FROM annot_local"))
    assert len(expected) == lake.sql(f"SELECT count(*) FROM source_docs@{version}").column(0)[0].as_py()
    for kind in ("dask", "spark"):
        got = sorted_rows(lake.sql(f"SELECT * FROM annot_{kind}"))
        assert got == expected, f"{kind}: {first_difference(got, expected)}"
    # the keep rule `order_by: [id]` differs from the default: the smallest id of a cluster is kept
    for cluster in {r["dup_cluster"] for r in expected}:
        members = [r for r in expected if r["dup_cluster"] == cluster]
        assert [m["dup_keep"] for m in sorted(members, key=lambda m: m["id"])] == [True] + [False] * (len(members) - 1)




def test_warc_extract_langid_pipeline_is_identical_on_every_executor(lake):
    warc = sorted(str(p) for p in (Path(__file__).parent / "data" / "executors").glob("*.warc.gz"))
    assert len(warc) == 2, "the real WARC files of tests/data/executors are missing"
    tables = {}
    for kind in EXECUTORS:
        raw = {
            "name": f"warc-{kind}",
            "source": {"files": warc, "format": "warc"},
            # no per-page wall-clock limit: under load a timeout would differ between runs
            "stages": [{"name": "extract", "params": {"timeout_s": 0}}, "langid", "exact_dedup"],
            "output": {"table": f"web_{kind}"},
        }
        _run(kind, raw, lake)
        tables[kind] = sorted_rows(lake.sql(f"SELECT * FROM web_{kind}"))
    assert len(tables["local"]) >= 30, "the WARCs gave too few documents"
    assert {"en"} <= {r["language"] for r in tables["local"]}
    extracted = [r for r in tables["local"] if r["extract_status"] == "ok"]
    assert extracted and all(r["text"] for r in extracted)
    for kind in ("dask", "spark"):
        assert tables[kind] == tables["local"], f"{kind}: {first_difference(tables[kind], tables['local'])}"
