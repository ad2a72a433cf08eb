"""An LLM server that hangs, answers garbage or 429s, under the real `dataengine generate`.

The server is tests/llm_server.py (a real HTTP server on 127.0.0.1 serving a tiny model),
told which requests to spoil. For every fault: the rows are committed with the error naming
the cause (nothing half-written, no row lost), and a re-run sends only the failed requests
and completes.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from conftest import run_cli
from llm_server import llm_server, tiny_model_dir  # noqa: F401  (fixtures)

GENERATE = ["generate", "mind", "--from", "docs", "--to", "dialogues", "--backend", "http", "--model", "tiny",
            "--retries", "1", "--timeout", "2", "--max-tokens", "6", "--concurrency", "1",
            "-p", "min_chunk_tokens=0", "-p", "styles=[debate]", "-q"]

pytestmark = pytest.mark.slow  # real processes racing or failing: see docs/reliability.md


@pytest.fixture
def server(llm_server):  # noqa: F811
    llm_server.faults.clear()
    llm_server.poison = None
    llm_server.sleep_seconds = 3.0  # longer than the client's 2 s timeout: a hang
    llm_server.received = llm_server.generated = 0
    yield llm_server
    llm_server.faults.clear()
    llm_server.poison = None


def _docs(wh, n: int = 4) -> None:
    wh.write_table("docs", pa.table({"id": [f"d{i}" for i in range(n)],
                                     "text": [f"Document {i}: the river is {i} km long and very wide." for i in range(n)]}))


@pytest.mark.slow
def test_hang_garbage_and_429_are_recorded_per_row_and_a_rerun_fills_them(wh, server):
    _docs(wh)
    # one request per document, two attempts each (retries 1), in order (concurrency 1)
    server.faults.update({1: "sleep", 2: "sleep", 3: "garbage", 4: "garbage", 5: "429", 6: "429", 7: "nochoices"})
    first = run_cli(*GENERATE, "--base-url", server.base_url, warehouse=wh.config.root)
    assert first.returncode == 0, first.stdout + first.stderr  # partial: committed, with the re-run hint
    assert "3 row(s) failed" in first.stdout and "re-run the same command" in first.stdout
    rows = wh.sql("SELECT source_id, error, raw_output FROM dialogues ORDER BY source_id").to_pylist()
    assert len(rows) == 4
    errors = {r["source_id"]: r["error"] for r in rows}
    assert "timeout after 2s" in errors["d0"]
    assert "bad response" in errors["d1"]
    assert errors["d2"].startswith("HTTP 429")
    assert errors["d3"] is None and rows[3]["raw_output"] is not None  # "nochoices" then a good answer

    sent_before = server.received
    second = run_cli(*GENERATE, "--base-url", server.base_url, warehouse=wh.config.root, check=True)
    assert server.received - sent_before == 3  # only the failed rows are asked again
    rows = wh.sql("SELECT source_id, error FROM dialogues ORDER BY source_id").to_pylist()
    assert len(rows) == 4 and all(r["error"] is None for r in rows), second.stdout


@pytest.mark.slow
def test_a_generate_whose_rows_all_failed_exits_1_and_the_rerun_fills_them(wh, server):
    _docs(wh, 2)
    server.poison = "Document"  # every request fails with a 500, every retry too
    proc = run_cli(*GENERATE, "--base-url", server.base_url, warehouse=wh.config.root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "every one of the 2 rows failed" in proc.stderr and "Traceback" not in proc.stderr
    errors = wh.sql("SELECT error FROM dialogues").column(0).to_pylist()
    assert len(errors) == 2 and all(e.startswith("HTTP 500") for e in errors)
    server.poison = None
    run_cli(*GENERATE, "--base-url", server.base_url, warehouse=wh.config.root, check=True)
    assert wh.sql("SELECT count(*) FROM dialogues WHERE error IS NULL").column(0)[0].as_py() == 2
