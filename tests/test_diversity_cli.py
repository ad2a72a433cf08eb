"""`dataengine diversity` on tables, SQL and blend versions; recording with a blend version;
`dataengine generate prismatic` (real CLI subprocesses, real warehouse, tiny real models)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

import dataengine as de
from conftest import demo_records, run_cli
from dataengine.filters.proxy_model import ProxyModel
from dataengine.filters.vendi import vendi_score
from llm_server import tiny_model_dir  # noqa: F401  (fixture)

N = 40


@pytest.fixture(scope="module")
def corpus(tiny_model_dir):  # noqa: F811
    """Real passages, two sources, and their unit gradients under the tiny proxy."""
    texts = [r["text"][:400] for r in demo_records()[:N]]
    proxy = ProxyModel.load(tiny_model_dir, dim=64, max_tokens=64)
    vectors, _ = proxy.gradients([proxy.encoder.text(t) for t in texts], batch_size=16)
    return texts, vectors


@pytest.fixture
def warehouse(wh, corpus):
    texts, vectors = corpus
    wh.write_table("docs", pa.table({
        "id": [f"d{i:02d}" for i in range(N)], "text": texts, "source": ["a" if i % 4 else "b" for i in range(N)],
        "proxy_grad": pa.array(vectors.tolist(), pa.list_(pa.float32())),
    }))
    return wh


@pytest.mark.slow
def test_json_output_has_exactly_the_documented_keys(warehouse, corpus):
    _, vectors = corpus
    proc = run_cli("diversity", "docs", "--no-embedding", "--format", "json", "-q", warehouse=warehouse.config.root,
                   check=True)
    got = json.loads(proc.stdout)
    assert set(got) == {"n", "g_vendi", "vendi_embedding"}
    assert got["n"] == N and got["vendi_embedding"] is None
    assert got["g_vendi"] == pytest.approx(vendi_score(vectors), rel=1e-6)  # the stored column was used
    by = json.loads(run_cli("diversity", "SELECT * FROM docs WHERE id < 'd30'", "--by", "source", "--q", "2",
                            "--no-embedding", "--format", "json", "-q", warehouse=warehouse.config.root,
                            check=True).stdout)
    assert set(by) == {"a", "b"} and all(set(v) == {"n", "g_vendi", "vendi_embedding"} for v in by.values())
    b_rows = [i for i in range(30) if i % 4 == 0]
    assert by["b"]["n"] == len(b_rows)
    assert by["b"]["g_vendi"] == pytest.approx(vendi_score(vectors[b_rows], q=2), rel=1e-6)


@pytest.mark.slow
def test_errors_are_one_line(warehouse):
    proc = run_cli("diversity", "docs", "--by", "nope", "-q", "--no-embedding", warehouse=warehouse.config.root)
    assert proc.returncode == 1 and "no column(s) nope" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("diversity", "docs", "--record", "-q", "--no-embedding", warehouse=warehouse.config.root)
    assert proc.returncode == 1 and "blend version" in proc.stderr
    proc = run_cli("diversity", "SELECT nonsense FROM", "-q", warehouse=warehouse.config.root)
    assert proc.returncode == 1 and "diversity source failed" in proc.stderr


@pytest.mark.slow
def test_blend_version_records_g_vendi_and_blend_show_prints_it(warehouse, tiny_model_dir, corpus):  # noqa: F811
    root = warehouse.config.root
    de.create_blend(warehouse, "mix", {"a": ("SELECT id, text FROM docs WHERE source = 'a'", 1.0),
                                       "b": ("SELECT id, text FROM docs WHERE source = 'b'", 1.0)})
    de.freeze_blend(warehouse, "mix")
    proc = run_cli("diversity", "mix@1", "--by", "component", "--proxy", tiny_model_dir, "--dim", "64",
                   "--max-tokens", "64", "--no-embedding", "--record", "--format", "json", "-q", warehouse=root,
                   check=True)
    got = json.loads(proc.stdout)
    assert set(got) == {"a", "b", "(all)"} and got["(all)"]["n"] == N
    # computed on the fly with the same proxy and settings: the same vectors as the stored ones
    assert got["(all)"]["g_vendi"] == pytest.approx(vendi_score(corpus[1]), rel=1e-4)
    show = run_cli("blend", "show", "mix@1", warehouse=root, check=True).stdout
    assert "diversity (recorded)" in show and f"{got['(all)']['g_vendi']:.2f}" in show
    recorded = de.blend_diversity(warehouse, "mix@1")
    assert {r["group_name"] for r in recorded} == {"a", "b", "(all)"}
    assert all(r["method"].startswith(f"proxy {tiny_model_dir}") for r in recorded)
    # freeze with --g-vendi records the new version's score at once
    out = run_cli("blend", "freeze", "mix", "--g-vendi", "--proxy", tiny_model_dir, warehouse=root, check=True).stdout
    assert "mix@2 diversity (recorded)" in out
    assert len(de.blend_version(warehouse, "mix@2")["diversity"]) == 3


@pytest.mark.slow
def test_embedding_vendi_and_progress_on_a_table(warehouse):
    proc = run_cli("diversity", "docs", "--format", "json", "--sample", "24", warehouse=warehouse.config.root,
                   check=True)
    got = json.loads(proc.stdout)
    assert got["n"] == 24 and 1 < got["vendi_embedding"] <= 24 and 1 < got["g_vendi"] <= 24


@pytest.mark.slow
def test_generate_prismatic_records_rounds(warehouse, tiny_model_dir):  # noqa: F811
    root = warehouse.config.root
    proc = run_cli("generate", "prismatic", "--from", "SELECT id, text FROM docs", "--to", "prism",
                   "--model", tiny_model_dir, "--proxy", tiny_model_dir, "--dim", "64", "--rounds", "2",
                   "--per-round", "6", "--clusters", "4", "--max-tokens", "12", "--temperature", "1.0",
                   "--param", "min_output_words=1", "-q", warehouse=root, check=True)
    assert "G-Vendi per round" in proc.stdout
    rounds = de.prismatic_rounds(warehouse).to_pylist()
    assert [r["round"] for r in rounds] == [1, 2]
    assert all(r["requests"] == 6 and r["sparse_clusters"] == 2 and r["clusters"] == 4 for r in rounds)
    assert rounds[0]["pool_before"] == N and rounds[1]["pool_before"] == rounds[0]["pool_after"]
    rows = warehouse.sql("SELECT prismatic_round, prismatic_cluster, prismatic_kept, proxy_grad, "
                         "prismatic_seed_ids FROM prism").to_pylist()
    assert len(rows) == sum(r["generated"] for r in rounds)
    assert sum(r["prismatic_kept"] for r in rows) == sum(r["kept"] for r in rounds)
    assert all(len(r["prismatic_seed_ids"]) >= 1 for r in rows)
    for r in rows:
        if r["proxy_grad"] is not None:
            assert np.linalg.norm(r["proxy_grad"]) == pytest.approx(1.0, abs=1e-4)
    runs = warehouse.sql("SELECT pipeline, output_table FROM dataengine.runs WHERE pipeline LIKE 'generate:prismatic%'")
    assert runs.num_rows == 1
