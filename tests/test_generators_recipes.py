"""Every recipe end to end on a real (tiny, random) transformers model, through the
driver and the CLI: provenance, routing, chunk re-joining, caching, one snapshot."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from conftest import run_cli
from dataengine.core.registry import get_stage
from dataengine.generators.backends import make_backend
from dataengine.generators.backends.base import GenerationRequest, SamplingParams
from dataengine.generators.cache import RequestCache
from dataengine.api.generation import default_cache_path, run_generate
from dataengine.generators.recipes.base import SYNTHETIC_SCHEMA
from llm_server import tiny_model_dir  # noqa: F401  (fixture)

SAMPLING = {"max_tokens": 8, "temperature": 1.0}


def _docs(n: int = 4) -> list[dict]:
    docs = []
    for i in range(n):
        lines = [f"Fact {j} of document {i}: the value of x{j} is {i * j + 3} in this setting." for j in range(12)]
        docs.append({"id": f"doc-{i}", "text": "\n".join(lines), "quality_bucket": [2, 15, None, 19][i % 4]})
    return docs


@pytest.fixture(scope="module")
def backend(tiny_model_dir):  # noqa: F811
    """One loaded tiny model shared by the recipes of this module (what the driver does)."""
    b = make_backend("transformers", tiny_model_dir, batch_size=8)
    b.load()
    return b


def _recipe(name, backend, wh, **params):
    recipe = get_stage(name)({"model": backend.model, "sampling": SAMPLING, "cache_path": default_cache_path(wh), **params})
    recipe.use_backend(backend)
    return recipe


def _assert_provenance(rows: list[dict], recipe: str, model_dir: str):
    assert rows
    for r in rows:
        assert r["recipe"] == recipe and r["recipe_version"] == "1"
        assert r["prompt_version"] == "v1" and r["prompt"]
        assert r["model"] == f"transformers:{model_dir}" and r["backend"] == "transformers"
        assert json.loads(r["sampling"])["max_tokens"] == 8 and r["seed"] == 0
        assert r["prompt_tokens"] > 0 and 0 < r["completion_tokens"] <= 8 * len(r["segment_ids"])
        assert r["generation_seconds"] > 0
        assert r["finish_reason"] in ("stop", "length") and r["error"] is None
        assert r["raw_output"] is not None and isinstance(r["keep"], bool)
        assert r["segment_ids"] == sorted(r["segment_ids"])


def test_nemotron_cc_routes_chunks_and_rejoins(wh, backend, tiny_model_dir):  # noqa: F811
    wh.write_table("docs", pa.Table.from_pylist(_docs()))
    recipe = _recipe("nemotron_cc", backend, wh, max_input_tokens=160, min_output_words=0, threshold=12)
    result = run_generate(wh, recipe, "SELECT * FROM docs", "synthetic", progress=False)
    rows = wh.sql("SELECT * FROM synthetic ORDER BY source_id, prompt").to_pylist()
    _assert_provenance(rows, "nemotron_cc", tiny_model_dir)
    prompts = {}
    for r in rows:
        prompts.setdefault(r["source_id"], set()).add(r["prompt"])
    # bucket 2 < 12: wikipedia only; 15 and 19: the four high-quality prompts; null bucket: nothing
    assert prompts == {
        "doc-0": {"wikipedia"},
        "doc-1": {"diverse_qa", "distill", "extract_knowledge", "knowledge_list"},
        "doc-3": {"diverse_qa", "distill", "extract_knowledge", "knowledge_list"},
    }
    # each document was chunked into several segments, re-joined into one row per prompt
    assert all(len(r["segment_ids"]) >= 2 for r in rows)
    assert result.rows == len(rows) == 9 and result.sent == result.requests > 9
    # joined back to the source like any table
    joined = wh.sql("SELECT count(*) FROM synthetic s JOIN docs d ON s.source_id = d.id").column(0)[0].as_py()
    assert joined == 9
    # diverse_qa rows that kept text start with the original document
    for r in rows:
        if r["prompt"] == "diverse_qa" and r["text"]:
            assert r["text"].startswith(next(d["text"] for d in _docs() if d["id"] == r["source_id"]))
    # ONE snapshot for the table, with the run recorded in the same commit
    assert wh.history("synthetic").num_rows == 1
    run = wh.sql("SELECT pipeline, rows_out, snapshot_id FROM dataengine.runs WHERE output_table = 'synthetic'").to_pylist()
    assert run == [{"pipeline": "generate:nemotron_cc", "rows_out": 9, "snapshot_id": result.snapshot_id}]

    # a re-run is answered from the request cache: nothing sent, same rows, no duplicates
    again = run_generate(wh, _recipe("nemotron_cc", backend, wh, max_input_tokens=160, min_output_words=0), "docs", "synthetic", progress=False)
    assert again.sent == 0 and again.rows == 9
    rows2 = wh.sql("SELECT * FROM synthetic ORDER BY source_id, prompt").to_pylist()
    assert [r["raw_output"] for r in rows2] == [r["raw_output"] for r in rows]
    assert [r["id"] for r in rows2] == [r["id"] for r in rows]
    assert all(r["from_cache"] for r in rows2)


def test_mind_makes_one_dialogue_row_per_chunk_and_style(wh, backend, tiny_model_dir):  # noqa: F811
    wh.write_table("math", pa.Table.from_pylist([{k: v for k, v in d.items() if k != "quality_bucket"} for d in _docs(2)]))
    recipe = _recipe("mind", backend, wh, chunk_tokens=160, styles_per_chunk=2, mix_raw="prepend")
    result = run_generate(wh, recipe, "SELECT id, text FROM math", "dialogues", progress=False)
    rows = wh.sql("SELECT * FROM dialogues").to_pylist()
    _assert_provenance(rows, "mind", tiny_model_dir)
    chunks = {(r["source_id"], r["segment_ids"][0]) for r in rows}
    assert all(len(r["segment_ids"]) == 1 for r in rows)
    assert len(rows) == 2 * len(chunks) and len(chunks) >= 4  # two styles per chunk
    assert {r["prompt"] for r in rows} <= set(get_stage("mind").Params().styles)
    # gibberish from a random model is no dialogue: kept as rows, flagged, raw chunk prepended
    assert all(not r["keep"] and r["drop_reason"] in ("too_short", "not_a_dialogue") for r in rows)
    assert all(r["text"].startswith("Fact ") for r in rows)
    assert result.kept == 0 and result.errors == 0


def test_beyondweb_rephrases_into_the_format_mix(wh, backend, tiny_model_dir):  # noqa: F811
    wh.write_table("seeds", pa.Table.from_pylist(_docs(4)))
    recipe = _recipe("beyondweb", backend, wh, format_mix={"qa": 1, "tutorial": 1}, formats_per_doc=2,
                     max_input_tokens=400, min_output_words=1)
    run_generate(wh, recipe, "SELECT * FROM seeds WHERE id <> 'doc-3'", "rephrased", progress=False)
    rows = wh.sql("SELECT * FROM rephrased").to_pylist()
    _assert_provenance(rows, "beyondweb", tiny_model_dir)
    assert sorted((r["source_id"], r["prompt"]) for r in rows) == [
        (f"doc-{i}", f) for i in range(3) for f in ("qa", "tutorial")
    ]


def test_cache_keys_on_model_prompt_params_and_seed(tmp_path, backend):
    cache = RequestCache(tmp_path / "c.sqlite")
    sp = SamplingParams(max_tokens=4)
    base = GenerationRequest.chat([{"role": "user", "content": "hi"}], sp, seed=1)
    keys = {
        base.cache_key("m"),
        base.cache_key("other-model"),
        GenerationRequest.chat([{"role": "user", "content": "hi!"}], sp, seed=1).cache_key("m"),
        GenerationRequest.chat([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=5), seed=1).cache_key("m"),
        GenerationRequest.chat([{"role": "user", "content": "hi"}], sp, seed=2).cache_key("m"),
    }
    assert len(keys) == 5
    from dataengine.generators.backends.base import GenerationResult

    cache.put("k-ok", "m", GenerationResult("text", "stop", 3, 1, 0.1))
    cache.put("k-bad", "m", GenerationResult.failed("boom"))
    found = cache.get_many(["k-ok", "k-bad"])
    assert list(found) == ["k-ok"] and found["k-ok"].text == "text" and found["k-ok"].from_cache
    assert len(cache) == 1


@pytest.mark.slow
def test_cli_generate_with_the_transformers_backend(tmp_path, tiny_model_dir):  # noqa: F811
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    from dataengine.warehouse import Warehouse

    Warehouse(w).write_table("docs", pa.Table.from_pylist(_docs(2)))
    args = ("generate", "beyondweb", "--from", "SELECT id, text FROM docs", "--to", "syn", "--model", tiny_model_dir,
            "--max-tokens", "6", "--temperature", "0", "-p", "format_mix={list: 1}", "-p", "min_output_words=1", "-q")
    proc = run_cli(*args, warehouse=w, check=True)
    assert "committed 2 synthetic rows to syn" in proc.stdout
    rows = Warehouse(w).sql("SELECT prompt, completion_tokens, sampling FROM syn").to_pylist()
    assert [r["prompt"] for r in rows] == ["list", "list"]
    assert all(r["completion_tokens"] <= 6 and json.loads(r["sampling"])["temperature"] == 0 for r in rows)
    assert (w / "cache" / "generate" / "requests.sqlite").exists()
    again = run_cli(*args, warehouse=w, check=True)
    assert "0 sent to the model" in again.stdout
    assert Warehouse(w).sql("SELECT count(*) FROM syn").column(0)[0].as_py() == 2
    bad = run_cli("generate", "mind", "--from", "SELECT nope FROM docs", "--to", "x", "--model", tiny_model_dir, "-q", warehouse=w)
    assert bad.returncode == 1 and "error" in bad.stdout + bad.stderr


def test_synthetic_schema_has_the_provenance_columns():
    for col in ("source_id", "recipe", "prompt_version", "model", "sampling", "seed", "prompt_tokens",
                "completion_tokens", "generation_seconds", "finish_reason", "error"):
        assert col in SYNTHETIC_SCHEMA.names
