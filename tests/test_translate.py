"""`dataengine translate` end to end: segregation, adaptation, translation and quality
signals into one table keyed by (source_id, language).

Content is checked against a real HTTP server answering like a good model from a
phrasebook of real German and French translations (tests/translation_server.py); the
tiny random model the tests build runs the same pipeline through the transformers backend
and over HTTP, where the CLI is killed mid-run and resumed."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pytest

import dataengine as de
from conftest import run_cli
from dataengine.api.translation_job import row_id
from dataengine.core.protected_spans import span_texts
from llm_server import LLMServer, tiny_model_dir  # noqa: F401  (fixture)
from translation_server import CHAT, PHRASEBOOK, SAMPLES, Phrasebook

LANGS = ["de", "fr"]
NAMES = {"de": "German", "fr": "French"}


@pytest.fixture(scope="module")
def phrasebook_server():
    server = LLMServer(None, responder=Phrasebook())
    server.base_url = server.start()
    yield server
    server.stop()


@pytest.fixture
def server(phrasebook_server):
    phrasebook_server.faults.clear()
    phrasebook_server.poison = None
    phrasebook_server.delay = 0.0
    phrasebook_server.received = phrasebook_server.generated = 0
    yield phrasebook_server
    phrasebook_server.faults.clear()
    phrasebook_server.poison = None


def _http(server, **kw):
    return {"backend": "http", "model": "tiny",
            "backend_options": {"base_url": server.base_url, "retries": 1, "backoff": 0.01, "timeout": 5.0} | kw}


@pytest.mark.slow
def test_translate_adapts_translates_and_restores_spans(wh, server):
    wh.write_table("prompts", pa.Table.from_pylist(SAMPLES))
    result = de.translate(wh, "SELECT * FROM prompts", "prompts_ml", "de,fr", label_columns=["label", "category"],
                          progress=False, **_http(server))
    rows = wh.sql("SELECT * FROM prompts_ml ORDER BY source_id, language").to_pylist()
    # keys: one row per (source_id, language), id derived from the pair
    assert [(r["source_id"], r["language"]) for r in rows] == [(s["id"], lang) for s in SAMPLES for lang in LANGS]
    assert all(r["id"] == row_id(r["source_id"], r["language"]) for r in rows)
    assert result.rows == 8 and result.kept == 8 and result.errors == 0 and result.sent == result.requests
    by_id = {s["id"]: s for s in SAMPLES}
    for r in rows:
        sample = by_id[r["source_id"]]
        # labels and every other source column preserved
        assert (r["label"], r["category"]) == (sample["label"], sample["category"])
        assert r["source_text"] == sample["text"] and r["language_name"] == NAMES[r["language"]]
        # segregation: only the Thanksgiving sample is culture-specific, and it is adapted
        assert r["culture_specific"] is (r["source_id"] == "s2") and r["culture_reason"]
        if r["source_id"] == "s2":
            assert r["adaptation"] == "adapted" and "euros" in r["adapted_text"] and "dollars" not in r["adapted_text"]
        else:
            assert r["adaptation"] == "agnostic" and r["adapted_text"] == sample["text"]
        # translation: the phrasebook's sentence, markers moved, spans restored byte for byte
        assert r["text"] == PHRASEBOOK[(r["adapted_text"], NAMES[r["language"]])]
        for span in span_texts(sample["text"]):
            assert r["text"].encode().count(span.encode()) == 1
        # every quality signal
        assert r["translation_lang"] == r["language"] and r["translation_lang_ok"] and r["translation_length_ok"]
        assert r["translation_untranslated_frac"] == 0.0 and r["translation_spans_ok"]
        assert r["translation_backtranslation"] == r["adapted_text"]
        assert r["translation_backsim"] == pytest.approx(1.0, abs=1e-4) and r["translation_backsim_chrf"] == 100.0
        assert r["translation_judge"] == 5 and r["translation_judge_reason"] == "faithful and fluent."
        assert r["translation_keep"] is True and r["error"] is None
        # provenance
        assert (r["model"], r["backend"], r["seed"]) == ("http:tiny", "http", 0)
        assert (r["segregation_prompt"], r["translation_prompt"], r["backtranslation_prompt"], r["judge_prompt"]) == (
            "segregation@v1", "translate@v1", "translate@v1", "judge@v1")
        assert r["adaptation_prompt"] == ("adaptation@v1" if r["source_id"] == "s2" else None)
        assert r["steps"] == "cultural_segregation@1 > cultural_adaptation@1 > translate@1 > translation_quality@1"
        assert set(json.loads(r["sampling"])) == {"cultural_segregation", "cultural_adaptation", "translate",
                                                  "translation_quality"}
        assert r["llm_requests"] == (5 if r["source_id"] == "s2" else 4) and r["from_cache"] is False
    # the chat-style preamble of one answer was stripped
    assert rows[6]["text"].startswith("Schreibe") and "Here is" not in rows[6]["text"]
    run = wh.sql("SELECT pipeline, rows_out, snapshot_id, stats FROM dataengine.runs WHERE output_table = 'prompts_ml'").to_pylist()
    assert [(r["pipeline"], r["rows_out"], r["snapshot_id"]) for r in run] == [("translate", 8, result.snapshot_id)]
    assert json.loads(run[0]["stats"])["per_language"]["de"]["adapted"] == 1
    assert result.summary_table().column("kept").to_pylist() == [4, 4]

    # a re-run is answered from the cache: nothing sent, the same rows, no duplicates
    again = de.translate(wh, "prompts", "prompts_ml", LANGS, label_columns=["label", "category"], progress=False,
                         **_http(server))
    assert again.sent == 0 and again.rows == 8
    rows2 = wh.sql("SELECT * FROM prompts_ml ORDER BY source_id, language").to_pylist()
    assert [r["text"] for r in rows2] == [r["text"] for r in rows] and all(r["from_cache"] for r in rows2)

    # --no-adapt: plain translation, the culture columns empty
    plain = de.translate(wh, "prompts", "prompts_mt", LANGS, adapt=False, progress=False, **_http(server))
    s2 = wh.sql("SELECT * FROM prompts_mt WHERE source_id = 's2' ORDER BY language").to_pylist()
    assert plain.rows == 8 and [r["text"] for r in s2] == [PHRASEBOOK[(by_id["s2"]["text"], NAMES[c])] for c in LANGS]
    assert all(r["culture_specific"] is None and r["segregation_prompt"] is None and r["adaptation"] is None for r in s2)
    assert s2[0]["steps"] == "translate@1 > translation_quality@1"


@pytest.mark.slow
def test_chat_rows_are_translated_turn_by_turn(wh, server):
    wh.write_table("chats", pa.Table.from_pylist([CHAT]))
    server.responder.calls.clear()
    result = de.translate(wh, "chats", "chats_ml", LANGS, messages_column="messages", progress=False, **_http(server))
    rows = wh.sql("SELECT * FROM chats_ml ORDER BY language").to_pylist()
    assert result.rows == 2 and result.kept == 2
    assert server.responder.calls["translation"] == 3 * 2  # one request per turn and language
    for r in rows:
        assert [t["role"] for t in r["messages"]] == ["system", "user", "assistant"]
        expected = [PHRASEBOOK[(t["content"], NAMES[r["language"]])] for t in CHAT["messages"]]
        assert [t["content"] for t in r["messages"]] == expected
        assert r["source_messages"] == CHAT["messages"] and r["adapted_messages"] == CHAT["messages"]
        assert "https://en.wikipedia.org/wiki/Paris" in r["messages"][1]["content"]
        assert r["text"] == "\n\n".join(expected) and r["label"] == "safe"
        assert r["translation_lang_ok"] and r["translation_judge"] == 5


@pytest.mark.slow
def test_failed_requests_are_recorded_and_a_rerun_fills_the_gaps(wh, server):
    wh.write_table("prompts", pa.Table.from_pylist(SAMPLES))
    server.poison = "religion"  # every request about s4 fails, whatever step
    server.faults.update({2: "503"})  # and one transient failure, retried
    first = de.translate(wh, "prompts", "ml", LANGS, progress=False, **_http(server))
    rows = wh.sql("SELECT * FROM ml ORDER BY source_id, language").to_pylist()
    assert first.rows == 8 and first.errors == 2 and first.kept == 6
    for r in rows:
        failed = r["source_id"] == "s4"
        assert (r["error"] is not None) == failed and (r["text"] is None) == failed
        if failed:
            assert r["error"].startswith("segregation: HTTP 500") and r["translation_keep"] is False
            assert r["label"] == "unsafe" and r["llm_requests"] == 1  # the row is kept, with its labels
    server.poison = None
    before = server.generated
    second = de.translate(wh, "prompts", "ml", LANGS, progress=False, **_http(server))
    assert second.errors == 0 and second.kept == 8
    assert second.sent == server.generated - before == 2 * 4  # s4's four steps in two languages, nothing else
    assert wh.sql("SELECT count(*) FROM ml").column(0)[0].as_py() == 8


@pytest.mark.slow
def test_translate_with_the_tiny_model_and_the_transformers_backend(wh, tiny_model_dir):  # noqa: F811
    wh.write_table("prompts", pa.Table.from_pylist(SAMPLES))
    kwargs = dict(model=tiny_model_dir, sampling={"max_tokens": 6, "temperature": 0.8}, backend_options={"batch_size": 8},
                  label_columns=["label"], progress=False)
    result = de.translate(wh, "SELECT id, text, label, category FROM prompts", "ml", LANGS, **kwargs)
    rows = wh.sql("SELECT * FROM ml ORDER BY source_id, language").to_pylist()
    assert [(r["source_id"], r["language"]) for r in rows] == [(s["id"], c) for s in SAMPLES for c in LANGS]
    assert [(r["label"], r["category"]) for r in rows] == [(s["label"], s["category"]) for s in SAMPLES for _ in LANGS]
    for r in rows:
        assert r["model"] == f"transformers:{tiny_model_dir}" and r["backend"] == "transformers"
        assert r["segregation_prompt"] == "segregation@v1" and r["translation_prompt"] == "translate@v1"
        assert r["llm_requests"] >= 3 and r["completion_tokens"] > 0 and r["error"] is None
        assert r["text"] is not None and r["translation_keep"] is False  # gibberish never passes
    assert result.sent == result.requests
    again = de.translate(wh, "SELECT id, text, label, category FROM prompts", "ml", LANGS, **kwargs)
    assert again.sent == 0 and again.rows == 8
    assert wh.history("ml").num_rows == 2  # one snapshot per run


@pytest.mark.slow
def test_cli_resumes_after_a_kill(tmp_path, tiny_model_dir):  # noqa: F811
    """The tiny model served over HTTP, slowly; the CLI is killed mid-run and run again."""
    server = LLMServer(tiny_model_dir)
    url = server.start()
    server.delay = 0.15
    try:
        w = tmp_path / "w"
        run_cli("init", warehouse=w, check=True)
        de.open_warehouse(w).write_table("prompts", pa.Table.from_pylist(SAMPLES))
        args = ["translate", "--from", "SELECT * FROM prompts", "--to", "ml", "--languages", "de,fr",
                "--backend", "http", "--model", "tiny", "--base-url", url, "--concurrency", "2", "--max-tokens", "4",
                "--batch-rows", "1", "--label-column", "label", "-q"]
        cmd = [sys.executable, "-P", "-m", "dataengine.cli", "--warehouse", str(w), *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 240
        while server.generated < 6 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        answered = server.generated
        assert 6 <= answered < 4 * 2 * 4, "the run must be killed part-way"
        assert not de.open_warehouse(w).table_exists("ml")  # nothing half-written
        time.sleep(0.5)  # answers in flight at the kill were never stored: they are sent again

        done = run_cli(*args, warehouse=w, check=True, timeout=300)
        found = re.search(r"([\d,]+) requests, ([\d,]+) sent to the model, ([\d,]+) from the cache", done.stdout)
        requests, sent, cached = (int(x.replace(",", "")) for x in found.groups())
        assert requests == sent + cached and cached >= answered - 2 and sent > 0
        rows = de.open_warehouse(w).sql("SELECT * FROM ml ORDER BY source_id, language").to_pylist()
        assert [(r["source_id"], r["language"], r["label"]) for r in rows] == [
            (s["id"], c, s["label"]) for s in SAMPLES for c in LANGS]
        assert all(r["model"] == "http:tiny" and r["error"] is None for r in rows)
        assert de.open_warehouse(w).history("ml").num_rows == 1
    finally:
        server.stop()


@pytest.mark.slow
def test_cli_errors_are_one_line(tmp_path):
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    de.open_warehouse(w).write_table("dup", pa.table({"id": ["a", "a"], "text": ["x", "y"]}))
    bad_lang = run_cli("translate", "--from", "dup", "--to", "t", "--languages", "de,xx", warehouse=w)
    assert bad_lang.returncode == 1 and "unknown language 'xx'" in bad_lang.stdout + bad_lang.stderr
    dup = run_cli("translate", "--from", "dup", "--to", "t", "--languages", "de", "--backend", "http",
                  "--model", "m", "-q", warehouse=w)
    assert dup.returncode == 1 and "duplicate id" in dup.stdout + dup.stderr
    missing = run_cli("translate", "--from", "SELECT id FROM dup", "--to", "t", "--languages", "de",
                      "--backend", "http", "--model", "m", "-q", warehouse=w)
    assert missing.returncode == 1 and "needs column(s) text" in missing.stdout + missing.stderr
    gen = run_cli("generate", "translate", "--from", "dup", "--to", "t", "--backend", "http", "--model", "m", warehouse=w)
    assert gen.returncode == 1 and "dataengine translate" in gen.stdout + gen.stderr
