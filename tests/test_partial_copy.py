"""partial_copy: documents contained in another, on real article text with planted copies.

Bases are the 181 real article bodies of tests/data/aeb_quality.jsonl.gz (scrapinghub's
article-extraction-benchmark, MIT): 141 are the corpus, 40 give the quoting pages' own
words. Copies are syndicated (whole article under a new header and footer), quoted (part
of an article inside another page) and quoted with light edits.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from dataengine.core.pipeline import pipeline_from_dict
from dataengine.engine import run_pipeline
from dataengine.filters.partial_copy import shingle_sets_and_sketches
from dataengine.filters.planted_copies import containment, plant_copies, recall_by_band
from dataengine.filters.shingles import shingle_sets

DATA = Path(__file__).parent / "data"


def article_texts() -> tuple[list[str], list[str]]:
    with gzip.open(DATA / "aeb_quality.jsonl.gz", "rt") as fh:
        texts = [r["text"] for r in map(json.loads, fh) if r["kind"] == "article"]
    random.Random(0).shuffle(texts)
    return texts[40:], texts[:40]


@pytest.fixture(scope="module")
def planted():
    texts, fillers = article_texts()
    return plant_copies(texts, 100, fillers, seed=3)


def run_partial_copy(wh, rows, params=None, name: str = "docs", **options):
    wh.write_table(name, pa.Table.from_pylist(rows))
    run_pipeline(pipeline_from_dict({
        "source": {"table": name},
        "stages": [{"name": "partial_copy", "params": params or {}}],
        "output": {"table": f"{name}_out"},
        "executor": {"shards": 3, "workers": 1},
    }), wh, progress=False, **options)
    return {r["id"]: r for r in wh.sql(f"SELECT id, text, copy_of, copy_containment FROM {name}_out").to_pylist()}


def test_planted_copies_found_with_exact_containment(wh, planted):
    rows, copies = planted
    out = run_partial_copy(wh, rows)
    assert len(out) == len(rows)
    above = [p for p in copies if p.containment >= 0.5]
    below = [p for p in copies if p.containment < 0.5]
    assert len(above) >= 50 and len(below) >= 20  # the plant covers both sides of the threshold
    found = sum(out[p.copy_id]["copy_of"] == p.source_id for p in above)
    assert found / len(above) >= 0.95, recall_by_band(copies, {k: r["copy_of"] for k, r in out.items()})
    # below the threshold copy_of stays null, and the containment written is the exact one
    assert all(out[p.copy_id]["copy_of"] is None for p in below)
    checked = [p for p in below if p.containment >= 0.3]  # well above candidate_floor (0.2)
    exact_below = sum(abs(out[p.copy_id]["copy_containment"] - p.containment) < 1e-9 for p in checked)
    assert exact_below / len(checked) >= 0.9
    # precision: every copy_of is a document holding >= threshold of this one (checked here independently),
    # and only planted pairs (either direction) are flagged: the real articles do not copy each other
    planted_pairs = {(p.copy_id, p.source_id) for p in copies} | {(p.source_id, p.copy_id) for p in copies}
    flagged = [(i, r) for i, r in out.items() if r["copy_of"] is not None]
    assert len(flagged) >= len(above)
    for doc_id, row in flagged:
        mine, theirs = shingle_sets([row["text"], out[row["copy_of"]]["text"]], "word", 5)
        assert abs(containment(mine, theirs) - row["copy_containment"]) < 1e-9
        assert row["copy_containment"] >= 0.5
        assert (doc_id, row["copy_of"]) in planted_pairs


def test_syndicated_source_points_to_the_page_that_holds_it_whole(wh):
    texts, fillers = article_texts()
    source = texts[0]
    header, footer = " ".join(fillers[0].split()[:60]), " ".join(fillers[1].split()[:40])
    rows = [{"id": "source", "text": source}, {"id": "syndicated", "text": f"{header}\n\n{source}\n\n{footer}"},
            {"id": "unrelated", "text": texts[1]}, {"id": "short", "text": "too short to judge"},
            {"id": "empty", "text": None}]
    out = run_partial_copy(wh, rows)
    s, c = shingle_sets([source, rows[1]["text"]], "word", 5)
    assert out["source"]["copy_of"] == "syndicated" and out["source"]["copy_containment"] == 1.0
    assert out["syndicated"]["copy_of"] == "source"
    assert out["syndicated"]["copy_containment"] == pytest.approx(len(s) / len(c))
    assert out["unrelated"]["copy_of"] is None and out["unrelated"]["copy_containment"] == 0.0
    assert out["short"]["copy_containment"] is None and out["empty"]["copy_containment"] is None


def test_sketch_is_a_sample_of_the_distinct_shingles():
    texts, _ = article_texts()
    shingles, sketch = shingle_sets_and_sketches(pa.array(texts[:20] + [None, ""]), "word", 5, 32)
    expected = shingle_sets(texts[:20], "word", 5)
    for i in range(20):
        got = shingles[i].values.to_numpy()
        assert sorted(got) == list(expected[i])  # the distinct shingles, each once
        sample = sketch[i].values.to_numpy()
        assert 0 < len(sample) <= 32 and set(sample) <= set(got)
    assert len(shingles[20]) == len(sketch[20]) == len(shingles[21]) == 0
    again = shingle_sets_and_sketches(pa.array(texts[:20]), "word", 5, 32)[1]
    assert again.to_pylist() == sketch.slice(0, 20).to_pylist()  # deterministic


@pytest.mark.slow
def test_same_result_on_dask_and_spark(wh, planted):
    from distributed_fixtures import dask_client, spark_session

    rows, _ = planted
    rows = rows[:60] + rows[-30:]  # sources and copies both present
    local = run_partial_copy(wh, rows)
    # map on the engine's workers, reduce in DuckDB on the driver (the stage has no reduce_key:
    # a copy can be anywhere in the table). reduce: engine is not tested: Dask's shuffle path
    # goes through pandas, which turns the list<uint64> map columns into strings.
    runs = (("dask", "driver", {"client": dask_client()}), ("spark", "driver", {"spark": spark_session()}))
    for kind, reduce, options in runs:
        got = run_partial_copy(wh, rows, name=f"docs_{kind}_{reduce}", executor=kind, reduce=reduce, **options)
        assert {k: (r["copy_of"], r["copy_containment"]) for k, r in got.items()} == {
            k: (r["copy_of"], r["copy_containment"]) for k, r in local.items()}, (kind, reduce)
