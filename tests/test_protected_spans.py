"""Protected spans: code, URLs, math, placeholders masked before translation and restored
byte for byte wherever the model moved their markers; chunking and answer cleaning."""

from __future__ import annotations

import pytest

from dataengine.core.llm import GenerationResult, SamplingParams
from dataengine.core.protected_spans import find_spans, protect, restore, span_texts, strip_spans
from dataengine.core.translation import clean_answer, finish_text, plan_text, split_chunks, translation_prompt

SOURCE = (
    "Run `pip install -e .` first, then open https://example.org/docs/a_(b)?x=1#top. "
    "If {user_name} sees %s errors, check that $e^{i\\pi} + 1 = 0$ and $$\\sum_{k=1}^n k = \\frac{n(n+1)}{2}$$ hold; "
    "mail admin@example.org or read {{ docs_url }}.\n"
    "```python\nfor i in range(3):\n    print(f\"{i}: $5\")\n```\n"
    "Prices: $5 and $10, 50% off \\(a+b\\) and \\begin{align}x &= 1\\end{align}."
)


def test_each_kind_is_found_and_prices_are_not_math():
    kinds = [(kind, SOURCE[s:e]) for s, e, kind in find_spans(SOURCE)]
    assert kinds == [
        ("code", "`pip install -e .`"),
        ("url", "https://example.org/docs/a_(b)?x=1#top"),  # the sentence's full stop is not part of it
        ("placeholder", "{user_name}"),
        ("placeholder", "%s"),
        ("math", "$e^{i\\pi} + 1 = 0$"),
        ("math", "$$\\sum_{k=1}^n k = \\frac{n(n+1)}{2}$$"),
        ("email", "admin@example.org"),
        ("placeholder", "{{ docs_url }}"),
        ("code", "```python\nfor i in range(3):\n    print(f\"{i}: $5\")\n```"),
        ("math", "\\(a+b\\)"),
        ("math", "\\begin{align}x &= 1\\end{align}"),
    ]
    # "$5 and $10" and "50% off" are prose: they are translated, not protected
    assert "$5 and $10, 50% off" in protect(SOURCE).masked


def test_restore_after_a_translation_that_reorders_the_sentence():
    text = "Before you answer {name}, read https://example.org/guide?id=7 and check that $x^2 + y^2 = r^2$ holds."
    p = protect(text)
    assert p.masked == "Before you answer [[0]], read [[1]] and check that [[2]] holds."
    # a German word order: the markers come back in the order 1, 2, 0, one with inner spaces
    translated = "Lies [[1]] und prüfe, dass [[ 2 ]] gilt, bevor du [[0]] antwortest."
    restored = p.restore(translated)
    assert restored.ok
    assert restored.text == ("Lies https://example.org/guide?id=7 und prüfe, dass $x^2 + y^2 = r^2$ gilt, "
                             "bevor du {name} antwortest.")
    for span in span_texts(text):
        assert restored.text.encode().count(span.encode()) == 1  # byte-identical, exactly once


def test_a_full_round_trip_is_byte_identical():
    p = protect(SOURCE)
    assert "```" not in p.masked and "https://" not in p.masked and "$$" not in p.masked
    assert p.restore(p.masked).text == SOURCE
    assert len(p.spans) == 11


def test_lost_repeated_and_invented_markers_are_reported():
    p = protect("See https://a.org and `x = 1`.")
    missing = p.restore("Siehe [[0]].")
    assert not missing.ok and missing.missing == (1,)
    repeated = p.restore("Siehe [[0]] und [[0]] und [[1]].")
    assert not repeated.ok and repeated.repeated == (0,)
    invented = p.restore("Siehe [[0]], [[1]] und [[7]].")
    assert not invented.ok and "[[7]]" in invented.text  # not ours: left as the model wrote it


def test_text_that_looks_like_a_marker_is_protected_itself():
    text = "The wiki writes [[3]] for footnote three; see https://x.org."
    p = protect(text)
    assert [s.text for s in p.spans] == ["[[3]]", "https://x.org"]
    assert p.masked == "The wiki writes [[0]] for footnote three; see [[1]]."
    assert p.restore("Das Wiki schreibt [[0]] für Fußnote drei; siehe [[1]].").text == (
        "Das Wiki schreibt [[3]] für Fußnote drei; siehe https://x.org.")


def test_strip_spans_blanks_protected_text_out():
    assert strip_spans("Use `np.sum(x)` now") == "Use   now"
    assert "https" not in strip_spans("Visit https://example.org today")


def test_paragraph_chunks_keep_their_separators():
    text = "First paragraph.\n\nSecond one.\n\n\nThird, longer paragraph here."
    chunks, seps = split_chunks(text, 30)
    assert chunks == ["First paragraph.\n\nSecond one.", "Third, longer paragraph here."]
    assert seps == ["\n\n\n"]
    assert split_chunks(text, 10_000) == ([text], [])


def test_plan_and_finish_restore_spans_across_chunks_and_clean_answers():
    template = translation_prompt("translate", "v1")
    text = "Call `f(x)` now.\n\nThen visit https://example.org/a today."
    plan = plan_text(text, template, "en", "de", SamplingParams(temperature=0), seed=0, max_chunk_chars=20)
    assert len(plan.requests) == 2
    user = plan.requests[0].messages[-1][1]
    assert "from English into German" in user and "Call [[0]] now." in user and "`f(x)`" not in user
    answers = [GenerationResult("Here is the translation:\n\"Ruf [[0]] jetzt auf.\"", "stop"),
               GenerationResult("```\nBesuche heute [[1]].\n```", "stop")]
    done = finish_text(plan, answers)
    assert done.markers_ok and done.error is None
    assert done.text == "Ruf `f(x)` jetzt auf.\n\nBesuche heute https://example.org/a."
    failed = finish_text(plan, [answers[0], GenerationResult.failed("HTTP 500")])
    assert failed.text is None and failed.error == "HTTP 500"


@pytest.mark.parametrize("answer,source,expected", [
    ("Translation: Hallo Welt", "Hello world", "Hallo Welt"),
    ("Sure! Here's the German translation:\nHallo Welt", "Hello world", "Hallo Welt"),
    ("«Bonjour le monde»", "Hello world", "Bonjour le monde"),
    ('"Quoted"', '"Quoted"', '"Quoted"'),  # the source was quoted: keep them
])
def test_clean_answer(answer, source, expected):
    assert clean_answer(answer, source) == expected


def test_restore_function_matches_method():
    p = protect("a `b` c")
    assert restore("x [[0]] y", p.spans).text == "x `b` y"
