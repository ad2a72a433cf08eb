"""Deduplication: exact, URL and MinHash-LSH fuzzy, on real documents through real pipelines."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import demo_records, run_cli
from dataengine.engine import run_pipeline
from dataengine.core.pipeline import pipeline_from_dict
from dataengine.filters.near_duplicates import edit_words, near_duplicate_pairs, recall_precision
from dataengine.filters.shingles import jaccard, shingle_hashes, shingle_sets
from dataengine.filters.url_dedup import normalise_url
from dataengine.kernels.minhash import signatures

DOLMA = Path(__file__).parent / "data" / "dolma-deduper"


def _dolma_docs() -> list[dict]:
    with gzip.open(DOLMA / "documents" / "000.json.gz", "rt") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture
def dolma_twice(wh, tmp_path):
    """The Dolma deduper fixture ingested twice: copy 1 fetched in January, copy 2 in February."""
    files = []
    for copy, month in ((1, "01"), (2, "02")):
        path = tmp_path / f"copy{copy}.jsonl"
        with open(path, "w") as fh:
            for doc in _dolma_docs():
                fh.write(json.dumps({"id": doc["id"], "text": doc["text"], "url": doc["metadata"]["url"],
                                     "fetched_at": f"2024-{month}-15T00:00:00", "copy": copy}) + "\n")
        files.append(str(path))
    run_pipeline(pipeline_from_dict({"source": {"files": files, "format": "jsonl"}, "output": {"table": "raw"}}), wh, progress=False)
    return wh


def test_dolma_fixture_second_copies_are_flagged(dolma_twice):
    wh = dolma_twice
    pipe = pipeline_from_dict(
        {
            "source": {"table": "raw"},
            "stages": ["exact_dedup", "url_dedup", "fuzzy_dedup"],
            "output": {"table": "raw"},
            "executor": {"shards": 3, "workers": 1},
        }
    )
    run_pipeline(pipe, wh, progress=False)
    rows = wh.sql(
        "SELECT copy::INT AS copy, url, dup_keep, url_dup_keep, fuzzy_dup_keep, "
        "fuzzy_dup_cluster_size FROM raw"
    ).to_pylist()
    assert len(rows) == 20
    for r in rows:
        first = r["copy"] == 1
        assert r["dup_keep"] == first and r["fuzzy_dup_keep"] == first, r
        assert r["fuzzy_dup_cluster_size"] == 2
    # URL dedup also matches Dolma's expected bff_duplicate_url: within the first copy, the
    # document whose metadata.url repeats an earlier one is flagged.
    with gzip.open(DOLMA / "expected" / "dedupe-by-url.json.gz", "rt") as fh:
        dolma_dups = {json.loads(l)["id"] for l in fh if json.loads(l)["attributes"].get("bff_duplicate_url")}
    url_of = {d["id"]: d["metadata"]["url"] for d in _dolma_docs()}
    dup_urls = {url_of[i] for i in dolma_dups}
    first_copy = [r for r in rows if r["copy"] == 1]
    assert sum(not r["url_dup_keep"] for r in first_copy) == len(dolma_dups) == 1
    assert all(r["url_dup_keep"] is False for r in rows if r["copy"] == 2)
    assert {r["url"] for r in first_copy if not r["url_dup_keep"]} <= dup_urls


def test_near_duplicate_recall_and_precision(wh):
    bases = [r["text"] for r in demo_records() if len(r["text"].split()) > 150][:120]
    rows, pairs = near_duplicate_pairs(bases, seed=1)
    wh.write_table("pairs", pa.Table.from_pylist(rows))
    pipe = pipeline_from_dict(
        {
            "source": {"table": "pairs"},
            # tuned for Jaccard 0.8: P(candidate | J=0.8) = 1 - (1 - 0.8**5)**20 > 0.999; Jaccard check on
            "stages": [{"name": "fuzzy_dedup", "params": {"preset": "custom", "unit": "word", "ngram": 5,
                                                          "num_perm": 100, "bands": 20, "rows": 5, "threshold": 0.8,
                                                          "jaccard_check": True, "order_by": ["id"]}}],
            "output": {"table": "pairs"},
        }
    )
    run_pipeline(pipe, wh, progress=False)
    cluster = {r["id"]: r["fuzzy_dup_cluster"] for r in wh.sql("SELECT id, fuzzy_dup_cluster FROM pairs").to_pylist()}
    scores = recall_precision(pairs, cluster, threshold=0.8)
    assert scores["pairs_at_or_above"] >= 40 and scores["pairs"] - scores["pairs_at_or_above"] >= 20, scores
    assert scores["recall"] >= 0.95, scores
    assert scores["precision"] >= 0.99, scores
    # unrelated base documents never end up together
    base_clusters = [cluster[p.base_id] for p in pairs]
    assert len(set(base_clusters)) == len(bases)


def test_minhash_estimates_jaccard_and_is_deterministic():
    text = [r["text"] for r in demo_records()[:40]]
    words = text[0].split()
    rng = random.Random(3)
    variants = [" ".join(edit_words(words, rng, k)) for k in (2, 10, 40)]
    arr = pa.array([text[0], *variants])
    h, o = shingle_hashes(arr, "word", 5)
    s1 = signatures(h, o, 256, seed=7)
    s2 = signatures(h, o, 256, seed=7)
    assert np.array_equal(s1, s2)
    sets = shingle_sets([text[0], *variants], "word", 5)
    for i in range(1, 4):
        true = jaccard(sets[0], sets[i])
        est = float(np.mean(s1[0] == s1[i]))
        assert abs(est - true) < 0.1, (true, est)
    assert not np.array_equal(signatures(h, o, 256, seed=8), s1)
    # empty and null texts: no shingles, never a match
    h, o = shingle_hashes(pa.array(["", None, "one"]), "word", 5)
    assert list(np.diff(o)) == [0, 0, 1]


def test_gpu_segment_minimum_equals_the_cpu_one():
    """The CuPy path's only different step (segment minimum by label + scatter-min), run on
    the CPU with np.minimum.at in place of cupyx.scatter_min: same signatures as reduceat."""
    from dataengine.kernels.minhash import _segment_min, segment_min_by_scatter

    h, o = shingle_hashes(pa.array([r["text"] for r in demo_records()[:50]] + ["tiny doc"]), "word", 5)
    lengths = np.diff(o)
    starts = o[:-1][lengths > 0]
    values = (np.asarray(h, dtype=np.uint64)[:, None] * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    values = np.concatenate([values, values ^ np.uint64(0xABCDEF)], axis=1)  # two columns, like permutations
    scattered = segment_min_by_scatter(values, starts, np, lambda out, seg, vals: np.minimum.at(out, seg, vals))
    assert scattered.shape == (len(starts), 2)
    assert np.array_equal(scattered, _segment_min(values, starts, np))


def test_url_normalisation():
    same = [
        "https://Example.com:443/a/b/?utm_source=x&b=2&a=1#frag",
        "http://example.com/a/b?a=1&b=2&fbclid=123",
        "HTTP://EXAMPLE.COM:80/a/b?b=2&a=1",
    ]
    assert len({normalise_url(u) for u in same}) == 1
    assert normalise_url("http://example.com/a") != normalise_url("http://example.com/b")
    assert normalise_url("http://example.com:8080/") != normalise_url("http://example.com/")
    assert normalise_url(None) is None
    assert normalise_url("http://[bad") == "http://[bad"


@pytest.mark.slow
def test_dedup_report_cli(dolma_twice):
    w = dolma_twice.config.root
    run_cli("run", "--from", "raw", "--stage", "fuzzy_dedup", "--to", "raw", "-q", warehouse=w, check=True)
    page = dolma_twice.config.root + "/dedup.html"
    out = run_cli("dedup", "report", "raw", "--html", page, warehouse=w, check=True).stdout
    assert "<svg" in open(page).read() and "duplicate rate 50.0%" in open(page).read()
    assert "duplicate rate" in out and "50.0%" in out
    hosts = {d["metadata"]["url"].split("/")[2] for d in _dolma_docs()}
    assert sum(h in out for h in hosts) >= 3  # example URLs of the largest clusters
    from dataengine.reports.dedup import dedup_report

    (report,) = dedup_report(dolma_twice, "raw")
    assert report["histogram"] == [{"size": "2", "clusters": 10, "docs": 20}]
    assert report["duplicates"] == 10 and report["rate"] == 0.5


def test_exact_dedup_normalisation_levels():
    from dataengine.filters.exact_dedup import ExactDedup

    texts = ["Hello,  World 2024!", "hello world 2024!", "Hello, World 1999.", "Hello,  World 2024!"]
    batch = pa.table({"id": ["a", "b", "c", "d"], "text": texts})

    def groups(level):
        clusters = ExactDedup({"normalize": level}).map(batch).column("dup_cluster").to_pylist()
        return len(set(clusters))

    assert groups("none") == 3  # only the byte-identical pair
    assert groups("whitespace") == 3
    assert groups("lower") == 3  # the comma still separates a from b
    assert groups("punctuation") == 1
    with pytest.raises(Exception, match="normalize"):
        ExactDedup({"normalize": "fancy"})


def test_gpu_flag_selects_the_cupy_path_and_fails_clearly_without_one(dolma_twice):
    """`--gpu` turns on every stage's own GPU path; without CuPy/CUDA the run stops before any
    work with a message saying what to install, and writes nothing."""
    from dataengine.core.pipeline import build_stages

    raw = {"source": {"table": "raw"}, "stages": ["fuzzy_dedup", "exact_dedup"], "output": {"table": "raw"}}
    cpu, gpu = pipeline_from_dict(raw), pipeline_from_dict({**raw, "executor": {"gpu": True}})
    cpu_stages, gpu_stages = build_stages(cpu), build_stages(gpu)
    assert [s.params.gpu for s in cpu_stages[:1]] == [False] and gpu_stages[0].params.gpu is True
    assert not hasattr(gpu_stages[1].params, "gpu")  # stages without a GPU path are left alone
    assert cpu_stages[0].fingerprint() != gpu_stages[0].fingerprint()

    try:
        import cupy

        # On a machine with a GPU the --gpu run succeeds, so the refusal this test checks cannot
        # happen there; the GPU path itself is checked by benchmarks/gpu runs, not here.
        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a CUDA device is present: the failure path cannot be shown here")
    except Exception:  # no CuPy, or no device: the run must refuse
        pass
    before = dolma_twice.current_snapshot()
    proc = run_cli("run", "--from", "raw", "--stage", "fuzzy_dedup", "--to", "raw_gpu", "--gpu",
                   warehouse=dolma_twice.config.root)
    assert proc.returncode == 1
    assert "CuPy" in proc.stderr and "dataengine[gpu]" in proc.stderr
    assert dolma_twice.current_snapshot() == before and not dolma_twice.table_exists("raw_gpu")
