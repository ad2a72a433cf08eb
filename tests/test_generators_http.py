"""The HTTP backend against a real OpenAI-compatible server on 127.0.0.1 serving a real
tiny model, with injected faults: 500/429/400, a reply slower than the client's timeout,
a dropped connection, and requests that fail every time until the server heals."""

from __future__ import annotations

import pyarrow as pa
import pytest

from conftest import run_cli
from dataengine.core.registry import get_stage
from dataengine.generators.backends import make_backend
from dataengine.generators.backends.base import GenerationRequest, SamplingParams
from dataengine.api.generation import default_cache_path, run_generate
from llm_server import llm_server, tiny_model_dir  # noqa: F401  (fixtures)

SP = SamplingParams(max_tokens=6, temperature=0)


def _client(server, **kw):
    opts = {"base_url": server.base_url, "concurrency": 1, "retries": 4, "backoff": 0.01, "timeout": 4.0} | kw
    return make_backend("http", "tiny", **opts)


@pytest.fixture
def server(llm_server):  # noqa: F811
    """The session's server with a clean fault plan and counters."""
    llm_server.faults.clear()
    llm_server.poison = None
    llm_server.sleep_seconds = 5.0
    llm_server.received = llm_server.generated = 0
    yield llm_server
    llm_server.faults.clear()
    llm_server.poison = None


@pytest.mark.slow
def test_retries_through_500_timeout_drop_and_429(server):
    server.faults.update({1: "500", 2: "sleep", 3: "drop", 4: "429"})
    reqs = [GenerationRequest.chat([{"role": "user", "content": f"say {w}"}], SP, seed=1) for w in ("a", "b", "c")]
    results = _client(server).generate(reqs)
    assert all(r.ok for r in results), [r.error for r in results]
    assert all(r.finish_reason in ("stop", "length") and 0 < r.completion_tokens <= 6 for r in results)
    assert all(r.prompt_tokens > 0 for r in results)
    assert server.received == 3 + 4  # four failed attempts of the first request, then one each


def test_exhausted_retries_and_client_errors_come_back_as_results(server):
    server.faults.update({1: "500", 2: "500", 3: "400"})
    reqs = [GenerationRequest.chat([{"role": "user", "content": w}], SP) for w in ("x", "y")]
    results = _client(server, retries=1).generate(reqs)
    assert results[0].error.startswith("HTTP 500") and "after 2 attempt(s)" in results[0].error
    assert results[1].error.startswith("HTTP 400") and "after 1 attempt(s)" in results[1].error  # 4xx: no retry
    assert all(r.finish_reason == "error" and r.text is None for r in results)
    assert server.received == 3


def test_same_seed_same_text_over_http(server):
    req = GenerationRequest.chat([{"role": "user", "content": "repeat"}], SamplingParams(max_tokens=6, temperature=1.0), seed=7)
    a, b = _client(server).generate([req, req])
    assert a.text == b.text


def _docs(n: int, poisoned: set[int]) -> list[dict]:
    return [
        {"id": f"d{i}", "text": f"Document {i} {'POISON' if i in poisoned else ''} says the river is {i} km long."}
        for i in range(n)
    ]


@pytest.mark.slow
def test_generate_over_flaky_server_records_errors_and_rerun_fills_gaps(server, wh):
    wh.write_table("docs", pa.Table.from_pylist(_docs(8, poisoned={2, 5})))
    server.poison = "POISON"
    server.faults.update({2: "drop", 4: "sleep", 6: "500"})

    def recipe():
        return get_stage("nemotron_cc")({
            "backend": "http", "model": "tiny", "prompts": ["distill"], "min_output_words": 0, "min_segment_tokens": 0,
            "sampling": {"max_tokens": 6, "temperature": 0}, "cache_path": default_cache_path(wh),
            "backend_options": {"base_url": server.base_url, "concurrency": 3, "retries": 2, "backoff": 0.01, "timeout": 4.0},
        })

    first = run_generate(wh, recipe(), "SELECT * FROM docs", "synthetic", progress=False)
    rows = wh.sql("SELECT * FROM synthetic ORDER BY source_id").to_pylist()
    assert first.rows == len(rows) == 8 and first.errors == 2
    for r in rows:
        # every row ends either generated or with its error recorded, never both, never neither
        assert (r["error"] is None) == (r["raw_output"] is not None)
        assert (r["finish_reason"] == "error") == (r["error"] is not None)
    failed = {r["source_id"] for r in rows if r["error"]}
    assert failed == {"d2", "d5"}
    assert all("HTTP 500" in r["error"] and "after 3 attempt(s)" in r["error"] for r in rows if r["error"])
    good_before = {r["source_id"]: r["raw_output"] for r in rows if not r["error"]}

    server.poison = None
    generated_before = server.generated
    second = run_generate(wh, recipe(), "SELECT * FROM docs", "synthetic", progress=False)
    assert second.sent == 2 and server.generated - generated_before == 2  # only the gaps
    rows = wh.sql("SELECT * FROM synthetic ORDER BY source_id").to_pylist()
    assert len(rows) == 8 and len({r["id"] for r in rows}) == 8  # no duplicates
    assert all(r["error"] is None and r["raw_output"] is not None for r in rows)
    assert {r["source_id"]: r["raw_output"] for r in rows if r["source_id"] in good_before} == good_before
    assert [r["from_cache"] for r in rows] == [r["source_id"] not in ("d2", "d5") for r in rows]


@pytest.mark.slow
def test_cli_generate_with_the_http_backend(server, tmp_path):
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    from dataengine.warehouse import Warehouse

    Warehouse(w).write_table("docs", pa.Table.from_pylist(_docs(3, poisoned=set())))
    server.faults.update({1: "503"})
    proc = run_cli(
        "generate", "mind", "--from", "docs", "--to", "dialogues", "--backend", "http", "--model", "tiny",
        "--base-url", server.base_url, "--retries", "2", "--timeout", "5", "--max-tokens", "6",
        "-p", "min_chunk_tokens=0", "-p", "styles=[debate]", "-q", warehouse=w, check=True,
    )
    assert "committed 3 synthetic rows to dialogues" in proc.stdout and "0 with errors" in proc.stdout
    rows = Warehouse(w).sql("SELECT prompt, model, backend FROM dialogues").to_pylist()
    assert rows == [{"prompt": "debate", "model": "http:tiny", "backend": "http"}] * 3
    assert server.received == 4
