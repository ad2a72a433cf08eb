"""Global stages reduce alike in DuckDB on the driver and as Dask and Spark shuffles.

Real components: a DuckLake warehouse, the shared Dask LocalCluster (2 processes) and
Spark local[2] session (distributed_fixtures), real documents with planted near-duplicate
chains and a large cluster. Connected components are checked against a union-find on
graphs with long chains, on every engine.
"""

from __future__ import annotations

import math
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataengine.core.errors import DataEngineError
from dataengine.core.pipeline import pipeline_from_dict
from dataengine.core.reduce_steps import Input
from dataengine.engine import run_pipeline
from dataengine.engine.dask_executor import DaskShuffle
from dataengine.engine.reduce_plan import DriverPlan
from dataengine.engine.shuffle_plan import ShufflePlan
from dataengine.engine.spark_executor import SparkShuffle
from dataengine.filters.shingles import jaccard, shingle_sets
from dataengine.warehouse import Warehouse
from distributed_fixtures import (dask_client, first_difference, fresh_warehouse, sorted_rows, spark_session,
                                  write_cluster_corpus)

#: Every global stage, as a pipeline would list it.
GLOBAL_STAGES = [
    "exact_dedup",
    "url_dedup",
    {"name": "partial_copy", "params": {"threshold": 0.5}},
    {"name": "fuzzy_dedup", "params": {"preset": "custom", "unit": "word", "ngram": 5, "num_perm": 100, "bands": 20,
                                       "rows": 5, "threshold": 0.8, "seed": 7}},
    {"name": "fuzzy_dedup", "params": {"prefix": "fuzzy_raw", "jaccard_check": False, "seed": 3}},
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Warehouse:
    return fresh_warehouse(tmp_path_factory, "reduce")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_cluster_corpus(tmp_path_factory.mktemp("clusters"))


def _run(kind: str, lake: Warehouse, files: list[str], table: str):
    options = {"local": {"workers": 1}, "dask": {"client": dask_client(), "reduce": "engine"},
               "spark": {"spark": spark_session(), "reduce": "engine"}}[kind]
    raw = {"name": table, "source": {"files": files, "format": "jsonl"}, "stages": GLOBAL_STAGES,
           "output": {"table": table}, "executor": {"batch_size": 100, "reduce_partitions": 2}}
    return run_pipeline(pipeline_from_dict(raw), lake, executor=kind, progress=False, **options)


@pytest.mark.slow
def test_every_global_stage_gives_the_same_columns_on_driver_dask_and_spark(lake, corpus):
    files, truth = corpus
    results, tables = {}, {}
    for kind in ("local", "dask", "spark"):
        results[kind] = _run(kind, lake, files, f"clusters_{kind}")
        tables[kind] = lake.sql(f"SELECT * FROM clusters_{kind}")
    where = {"local": "driver (duckdb)", "dask": "dask shuffle", "spark": "spark shuffle"}
    for kind, result in results.items():
        reduces = {k: v for k, v in result.stats.items() if ".reduce" in k}
        assert len(reduces) == len(GLOBAL_STAGES)
        assert {v["where"] for v in reduces.values()} == {where[kind]}
        fuzzy = [v for k, v in reduces.items() if k.startswith("fuzzy_dedup")]
        assert all(1 <= v["detail"]["rounds"] <= 6 for v in fuzzy), fuzzy
        if kind != "local":
            assert all(v["detail"]["shuffle_bytes"] > 0 for v in reduces.values())

    expected = sorted_rows(tables["local"])
    for kind in ("dask", "spark"):
        assert tables[kind].schema == tables["local"].schema
        got = sorted_rows(tables[kind])
        assert got == expected, f"{kind} engine reduce differs from the driver's: {first_difference(got, expected)}"

    # ...and the common answer is right.
    by_id = {r["id"]: r for r in expected}

    def members_of(cluster: str) -> list[str]:
        return [r["id"] for r in expected if r["fuzzy_dup_cluster"] == cluster]

    for a, b, c in truth["chains"]:
        sets = shingle_sets([by_id[x]["text"] for x in (a, b, c)], "word", 5)
        assert jaccard(sets[0], sets[1]) >= 0.8 and jaccard(sets[1], sets[2]) >= 0.8 > jaccard(sets[0], sets[2])
        # A and C are too far apart to be checked duplicates, yet one component through B
        assert len({by_id[x]["fuzzy_dup_cluster"] for x in (a, b, c)}) == 1
        assert by_id[a]["fuzzy_dup_cluster"] == min(members_of(by_id[a]["fuzzy_dup_cluster"]))
    large = {by_id[x]["fuzzy_dup_cluster"] for x in truth["large"]}
    assert len(large) == 1  # one cluster, named by its smallest member (copies of the hub may join it)
    (cluster,) = large
    assert set(truth["large"]) <= set(members_of(cluster)) and cluster == min(members_of(cluster))
    assert by_id[truth["large"][0]]["fuzzy_dup_cluster_size"] >= len(truth["large"])
    for prefix in ("fuzzy_dup", "fuzzy_raw", "dup", "url_dup"):
        clusters: dict = {}
        for row in expected:
            clusters.setdefault(row[f"{prefix}_cluster"], []).append(row)
        for key, members in clusters.items():
            if key is None:
                continue
            assert all(m[f"{prefix}_cluster_size"] == len(members) for m in members)
            first = min(members, key=lambda m: (m["fetched_at"] is None, m["fetched_at"] or 0, m["id"]))
            assert [m["id"] for m in members if m[f"{prefix}_keep"]] == [first["id"]], (prefix, key)
    # planted exact copies and URL variants are found
    assert sum(not r["dup_keep"] for r in expected) >= 40
    assert any(r["url_dup_cluster_size"] > 1 for r in expected if r["source"] == "copies")
    # partial_copy: the large cluster's variants are contained in each other, and every copy_of
    # names a document of the table with a containment at or above the threshold
    copies = [r for r in expected if r["copy_of"] is not None]
    assert sum(r["source"] == "large" for r in copies) >= 30
    assert all(r["copy_of"] in by_id and r["copy_containment"] >= 0.5 for r in copies)


# -- connected components on every engine -------------------------------------------------

def _graph(seed: int = 5) -> list[tuple[int, int]]:
    """Nodes named like rows (shard << 32 | row): a 48-node chain in random order of names,
    a 150-node star, a 30-node clique and sparse random edges, plus repeated edges."""
    rng = random.Random(seed)
    names = rng.sample(range(2000), 2000)
    node = [(n % 7) << 32 | n for n in names]
    edges = [(node[i], node[i + 1]) for i in range(47)]  # chain 0..47
    edges += [(node[100], node[101 + i]) for i in range(150)]  # star
    clique = range(300, 330)
    edges += [(node[i], node[j]) for i in clique for j in clique if i < j]
    edges += [(node[rng.randrange(400, 2000)], node[rng.randrange(400, 2000)]) for _ in range(600)]
    edges += edges[:50]  # duplicates
    return edges


def _union_find(edges) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    return {x: min(members) for members in groups.values() for x in members}


def _labels(plan, relation) -> dict[int, int]:
    if isinstance(plan, DriverPlan):
        table = plan.con.execute(f"SELECT a, b FROM {relation.location}").to_arrow_table()
    else:
        table = pa.concat_tables([pq.read_table(f) for f in relation.location[1]])
    return dict(zip(table.column("a").to_pylist(), table.column("b").to_pylist()))


def _plan(kind: str, tmp_path):
    out = tmp_path / f"out-{kind}"
    out.mkdir()
    if kind == "driver":
        return DriverPlan(None, [], str(out))
    backend = DaskShuffle(dask_client()) if kind == "dask" else SparkShuffle(spark_session())
    return ShufflePlan(None, backend, [], str(out), partitions=3)


@pytest.mark.parametrize("kind", ["driver", pytest.param("dask", marks=pytest.mark.slow),
                                  pytest.param("spark", marks=pytest.mark.slow)])
def test_components_equal_union_find_in_logarithmic_rounds(kind, tmp_path):
    edges = _graph()
    path = tmp_path / "edges.parquet"
    pq.write_table(pa.table({"a": [a for a, _ in edges], "b": [b for _, b in edges]},
                            schema=pa.schema([("a", pa.int64()), ("b", pa.int64())])), path)
    plan = _plan(kind, tmp_path)
    labels = plan.components(plan.load("edges", [str(path)]))
    expected = _union_find(edges)
    got = _labels(plan, labels)
    # every node but each component's smallest one is labelled with that smallest node
    assert got == {x: root for x, root in expected.items() if x != root}
    # the 48-node chain alone would take 47 rounds of label propagation
    assert plan.rounds <= math.ceil(math.log2(48)) + 2, plan.rounds
    changed = [s["stats"]["changed"] for s in plan.steps]
    assert changed[0] > 0 and changed[-2:] == [0, 0]


def test_long_chain_converges_in_log_rounds_and_the_round_limit_is_enforced(tmp_path):
    n = 4096
    path = tmp_path / "chain.parquet"
    pq.write_table(pa.table({"a": pa.array(range(n - 1), pa.int64()), "b": pa.array(range(1, n), pa.int64())}), path)
    plan = _plan("driver", tmp_path)
    labels = plan.components(plan.load("chain", [str(path)]))
    assert plan.rounds <= math.ceil(math.log2(n)) + 2, plan.rounds
    assert _labels(plan, labels) == {i: 0 for i in range(1, n)}
    limited = DriverPlan(None, [], str(tmp_path / "out-driver"))
    with pytest.raises(DataEngineError, match="did not converge in 3 rounds"):
        limited.components(limited.load("chain", [str(path)]), max_rounds=3)


@pytest.mark.parametrize("kind", ["dask", pytest.param("spark", marks=pytest.mark.slow)])
def test_unsigned_integers_and_lists_of_them_cross_the_shuffle_exactly(kind, tmp_path):
    """Spark has no unsigned types: they travel bit-reinterpreted and come back as they were."""
    path = tmp_path / "u.parquet"
    table = pa.table({"h": pa.array([1, 2**63 + 5, 2**64 - 1, 1], pa.uint64()),
                      "sig": pa.array([[1, 2**64 - 1], [], [2**63], None], pa.list_(pa.uint64()))})
    pq.write_table(table, path)
    plan = _plan(kind, tmp_path)
    out = plan.step("group by an unsigned key", {"x": Input(plan.load("u", [str(path)]), "h")},
                    sql="SELECT h, count(*) AS n, max(sig) AS sig FROM x GROUP BY h")
    got = pa.concat_tables([pq.read_table(f) for f in out.location[1]]).sort_by("h")
    assert got.schema.field("h").type == pa.uint64() and got.schema.field("sig").type == pa.list_(pa.uint64())
    assert got.to_pylist() == [{"h": 1, "n": 2, "sig": [1, 2**64 - 1]}, {"h": 2**63 + 5, "n": 1, "sig": []},
                               {"h": 2**64 - 1, "n": 1, "sig": [2**63]}]
