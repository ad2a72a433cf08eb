"""Stage `math_cleanup`: paragraph chunking within the model budget, re-joining, statuses,
on a real (tiny, random) transformers chat model through the generators' backend."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dataengine.generators.math_cleanup import NO_CONTENT_MARKER, MathCleanup, join_cleaned, paragraph_chunks
from dataengine.generators.cache import RequestCache


def words(text: str) -> int:
    return len(text.split())


def test_paragraph_chunks_fit_the_budget_and_keep_order():
    paragraphs = [f"paragraph {i} " + "word " * (i + 1) for i in range(8)] + ["long " * 30]
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = paragraph_chunks(text, words, max_tokens=12)
    assert all(words(c) <= 12 for c in chunks)
    assert " ".join(" ".join(c.split()) for c in chunks) == " ".join(text.split())  # nothing lost or reordered
    assert "paragraph 0 word\n\nparagraph 1 word word" in chunks[0]  # small paragraphs share a chunk
    assert paragraph_chunks("", words, 12) == []


def test_join_cleaned_drops_marker_chunks():
    assert join_cleaned(["First part $x^2$.", NO_CONTENT_MARKER, " Second. "], failed=False) == ("First part $x^2$.\n\nSecond.", "ok")
    assert join_cleaned([NO_CONTENT_MARKER, f"{NO_CONTENT_MARKER}\n"], failed=False) == (None, "no_content")
    assert join_cleaned(["text"], failed=True) == (None, "error")


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory):
    from dataengine.trainer.tiny_model import build_tiny_chat_model

    return str(build_tiny_chat_model(tmp_path_factory.mktemp("tiny-llm") / "model", vocab_size=512))


def test_cleanup_stage_on_a_real_tiny_model(tiny_chat_model, tmp_path):
    cache = tmp_path / "cache.sqlite"
    params = {"backend": "transformers", "model": tiny_chat_model, "max_input_tokens": 24, "max_output_tokens": 8,
              "cache_path": str(cache)}
    docs = ["Home | About\n\nThe area is $\\pi r^2$ for a circle of radius $r$.\n\nShare this page on social media today.",
            None, "Only one short paragraph."]
    stage = MathCleanup(params)
    out = stage(pa.table({"id": ["a", "b", "c"], "text": docs}))
    statuses = out["math_clean_status"].to_pylist()
    assert statuses[1] == "no_text" and out["math_clean_text"][1].as_py() is None
    assert set(statuses[0::2]) <= {"ok", "no_content"}
    expected_chunks = sum(len(paragraph_chunks(d, stage.count_tokens, 24)) for d in docs if d)
    assert expected_chunks >= 3  # the first document needed more than one request
    assert len(RequestCache(str(cache))) == expected_chunks  # one request per chunk
    again = MathCleanup(params)(pa.table({"id": ["a", "b", "c"], "text": docs}))
    assert again["math_clean_text"].to_pylist() == out["math_clean_text"].to_pylist()  # greedy + cache: same text
