"""Per-sample proxy gradients: vmap equals a plain torch.func loop, what is differentiated,
what carries loss, the stage in a real pipeline, and G-Vendi on real text (tiny real models)."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
import torch

import dataengine as de
from conftest import demo_records
from dataengine.core.errors import StageError
from dataengine.filters.near_duplicates import edit_words
from dataengine.filters.proxy_model import IGNORE, ProxyModel, RowColumns, select_parameters
from dataengine.filters.vendi import vendi_score
from llm_server import tiny_model_dir  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def proxy(tiny_model_dir):  # noqa: F811
    return ProxyModel.load(tiny_model_dir, dim=128, seed=3, max_tokens=96)


@pytest.fixture(scope="module")
def texts():
    return [r["text"] for r in demo_records()]


def test_default_parameters_are_the_last_block_and_the_head(proxy):
    names = proxy.param_names
    assert names[-1] == "lm_head.weight" and "model.norm.weight" in names
    assert all(n.startswith("model.layers.1.") for n in names if n not in ("lm_head.weight", "model.norm.weight"))
    assert len(names) == 11  # q, k, v, o, gate, up, down, two norms + final norm + head
    assert proxy.num_columns == sum(p.numel() for p in proxy.params.values())
    assert select_parameters(proxy.model, ["model.layers.0.mlp.*"]) == [
        "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight"]
    with pytest.raises(StageError, match="matches no parameter"):
        select_parameters(proxy.model, ["transformer.h.*"])


def test_vmap_gradients_equal_a_plain_torch_func_loop(proxy, texts):
    """Padded, batched per-sample gradients are exactly each sample's own gradient."""
    from torch.func import grad

    samples = [proxy.encoder.text(t) for t in (texts[0], texts[1][:80], texts[2][:200], texts[3])]
    assert len({len(s.ids) for s in samples}) > 1  # really padded
    batched, losses = proxy.per_sample_gradients(samples)
    for b, s in enumerate(samples):
        own = grad(proxy.loss)(proxy.params, torch.tensor(s.ids), torch.tensor(s.labels))
        for name in proxy.param_names:
            torch.testing.assert_close(batched[name][b], own[name], rtol=1e-4, atol=1e-6)
        assert losses[b].item() == pytest.approx(proxy.loss(proxy.params, torch.tensor(s.ids),
                                                             torch.tensor(s.labels)).item(), rel=1e-5)
    # and the projected unit vectors do not depend on which batch a sample is in
    alone, _ = proxy.gradients(samples[:1])
    together, _ = proxy.gradients(samples, batch_size=4)
    np.testing.assert_allclose(alone[0], together[0], atol=1e-5)
    assert np.linalg.norm(together, axis=1) == pytest.approx(np.ones(4), abs=1e-5)


def test_projection_is_deterministic_for_a_seed(tiny_model_dir, proxy, texts):  # noqa: F811
    samples = [proxy.encoder.text(t) for t in texts[:3]]
    first, _ = proxy.gradients(samples)
    again, _ = ProxyModel.load(tiny_model_dir, dim=128, seed=3, max_tokens=96).gradients(samples)
    other, _ = ProxyModel.load(tiny_model_dir, dim=128, seed=4, max_tokens=96).gradients(samples)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 0.05
    # the seed changes coordinates, not geometry: inner products agree within the JL error
    assert np.abs(first @ first.T - other @ other.T).max() < 0.35


def test_loss_is_on_the_response_given_the_prompt(proxy):
    enc = proxy.encoder
    s = enc.prompt_response("What is two plus two?", "Four, my lord.")
    n_prompt = sum(1 for t in s.labels if t == IGNORE)
    assert 0 < n_prompt < len(s.ids) and s.labels[n_prompt:] == s.ids[n_prompt:]
    assert s.labels[:n_prompt] == [IGNORE] * n_prompt
    other = enc.prompt_response("Name a colour of the sea.", "Four, my lord.")
    g = proxy.gradients([s, other])[0]
    assert float(g[0] @ g[1]) < 0.9999  # the prompt conditions the response's loss
    # a conversation: the last assistant message given everything before it
    conv = enc.messages([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                         {"role": "user", "content": "What is two plus two?"},
                         {"role": "assistant", "content": "Four, my lord."}])
    assert conv.loss_tokens == s.loss_tokens and len(conv.ids) > len(s.ids)
    with pytest.raises(ValueError, match="no assistant reply"):
        enc.messages('[{"role": "user", "content": "Hi"}]')
    # truncation keeps the response
    long = enc.prompt_response("word " * 500, "Four, my lord.")
    assert len(long.ids) <= 96 and long.loss_tokens == s.loss_tokens


def test_stage_in_a_pipeline_stores_unit_vectors_and_nulls(wh, tiny_model_dir, texts):  # noqa: F811
    rows = pa.table({"id": [f"d{i}" for i in range(6)],
                     "text": [texts[0], None, "", texts[1][:120], "x", texts[2]]})
    wh.write_table("docs", rows)
    stage = de.stage("proxy_gradients", model=tiny_model_dir, dim=64, max_tokens=64, batch_size=2)
    result = de.run(wh, de.pipeline("docs", [stage], to="docs", workers=1), progress=False)
    assert result.stats["proxy_gradients"]["errors"] == 0
    got = wh.sql("SELECT id, proxy_grad, proxy_grad_loss FROM docs ORDER BY id").to_pylist()
    by_id = {r["id"]: r for r in got}
    for i in ("d0", "d3", "d5"):
        assert len(by_id[i]["proxy_grad"]) == 64
        assert np.linalg.norm(by_id[i]["proxy_grad"]) == pytest.approx(1.0, abs=1e-5)
        assert by_id[i]["proxy_grad_loss"] > 0
    for i in ("d1", "d2"):  # nothing to score
        assert by_id[i]["proxy_grad"] is None and by_id[i]["proxy_grad_loss"] is None
    # the staged Parquet files keep the fixed-size list type
    staged = de.stage("proxy_gradients", model=tiny_model_dir, dim=64, max_tokens=64)
    assert staged.output_columns()["proxy_grad"] == pa.list_(pa.float32(), 64)


def test_chat_rows_with_one_malformed_row_lose_only_that_row(wh, tiny_model_dir):  # noqa: F811
    good = [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi there, friend."}]
    rows = pa.table({"id": ["a", "b", "c"],
                     "messages": [good, [{"role": "user", "content": "no reply"}], good[:1] + [good[1]]]})
    wh.write_table("chats", rows)
    stage = de.stage("proxy_gradients", model=tiny_model_dir, dim=32, messages_column="messages", max_tokens=64)
    result = de.run(wh, de.pipeline("chats", [stage], to="chats", workers=1), progress=False)
    stats = result.stats["proxy_gradients"]
    assert stats["errors"] == 1 and "no assistant reply" in stats["error_samples"][0]
    got = {r["id"]: r["proxy_grad"] for r in wh.sql("SELECT id, proxy_grad FROM chats").to_pylist()}
    assert got["b"] is None and len(got["a"]) == 32 and got["a"] == pytest.approx(got["c"])
    with pytest.raises(Exception, match="go together"):
        de.stage("proxy_gradients", prompt_column="prompt")
    assert RowColumns(prompt="p", response="r").required() == ("p", "r")


def near_duplicate_and_distinct_sets(texts: list[str], groups: int = 4, copies: int = 12):
    """Real text: a few documents repeated with small word edits, and as many distinct documents."""
    rng = random.Random(0)
    near = [" ".join(edit_words(t.split(), rng, 3)) for t in texts[:groups] for _ in range(copies)]
    distinct = texts[100 : 100 + groups * copies]
    return near, distinct


def test_g_vendi_of_near_duplicates_is_well_below_distinct_documents(proxy, texts):
    near, distinct = near_duplicate_and_distinct_sets(texts)
    g_near, _ = proxy.gradients([proxy.encoder.text(t) for t in near])
    g_distinct, _ = proxy.gradients([proxy.encoder.text(t) for t in distinct])
    near_score, distinct_score = vendi_score(g_near), vendi_score(g_distinct)
    assert 1 <= near_score < 0.5 * distinct_score
    assert vendi_score(g_near, q=2) < 0.5 * vendi_score(g_distinct, q=2)


@pytest.mark.slow
def test_embedding_vendi_of_near_duplicates_is_well_below_distinct_documents(texts):
    from dataengine.filters.embeddings import MiniLMEmbedder

    near, distinct = near_duplicate_and_distinct_sets(texts)
    embedder = MiniLMEmbedder()
    e_near, e_distinct = embedder.embed(near), embedder.embed(distinct)
    assert e_near.shape == (48, 384)
    assert vendi_score(e_near) < 0.5 * vendi_score(e_distinct)


@pytest.mark.slow
def test_prismatic_selection_raises_g_vendi_over_random_subsets(wh, tiny_model_dir, texts):  # noqa: F811
    """On real text with the redundancy real corpora have (100 distinct passages, and 60
    lightly edited copies of 5 others): gradients -> k-means -> a budgeted selection that
    covers sparse clusters first has a higher G-Vendi than random subsets of the same size."""
    near, _ = near_duplicate_and_distinct_sets(texts, groups=5, copies=12)
    corpus = texts[200:300] + near
    n, budget = len(corpus), 24
    order = np.random.default_rng(1).permutation(n)  # ids do not give the structure away
    wh.write_table("docs", pa.table({"id": [f"d{i:03d}" for i in range(n)], "text": [corpus[i] for i in order]}))
    stages = [de.stage("proxy_gradients", model=tiny_model_dir, dim=128, max_tokens=64, batch_size=16),
              de.stage("gradient_clusters", k=40, seed=0), de.stage("prismatic_select", budget=budget)]
    result = de.run(wh, de.pipeline("docs", stages, to="docs", workers=1), progress=False)
    assert result.stats["gradient_clusters.reduce"]["rows_out"] == n
    rows = wh.sql("SELECT id, proxy_grad, grad_cluster, grad_cluster_size, prismatic_selected, "
                  "prismatic_selected_rank FROM docs ORDER BY id").to_pylist()
    vectors = np.array([r["proxy_grad"] for r in rows])
    sizes = {}
    for r in rows:
        sizes[r["grad_cluster"]] = sizes.get(r["grad_cluster"], 0) + 1
    assert all(r["grad_cluster_size"] == sizes[r["grad_cluster"]] for r in rows)  # sizes are real
    chosen = [i for i, r in enumerate(rows) if r["prismatic_selected"]]
    assert len(chosen) == budget
    assert sorted(rows[i]["prismatic_selected_rank"] for i in chosen) == list(range(1, budget + 1))
    # coverage: a budget below k buys one row from each of the sparsest clusters
    picked = [rows[i]["grad_cluster"] for i in chosen]
    assert len(set(picked)) == budget
    assert max(sizes[c] for c in picked) <= min(sizes[c] for c in sizes if c not in picked)
    selected = vendi_score(vectors[chosen])
    rng = np.random.default_rng(0)
    randoms = [vendi_score(vectors[rng.choice(n, budget, replace=False)]) for _ in range(30)]
    assert selected > np.percentile(randoms, 90)
