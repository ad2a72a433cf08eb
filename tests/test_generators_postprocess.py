"""Post-processing, chunking and the MIND filter on hand-written (tricky) model outputs."""

from __future__ import annotations

import random

import pytest

from dataengine.generators.backends.base import GenerationRequest, GenerationResult, SamplingParams
from dataengine.generators.chunking import join_segments, split_segments
from dataengine.generators.postprocess import (
    QAPair,
    append_qa,
    dialogue_turns,
    mind_filter,
    parse_qa_pairs,
    sample_qa_pairs,
    strip_markdown,
    strip_prefixes,
)
from dataengine.generators.prompts import available_prompts, load_prompt, parse_prompt_file
from dataengine.generators.recipes.beyondweb import BeyondWeb
from dataengine.generators.recipes.base import Job
from dataengine.generators.recipes.mind import STYLES, Mind
from dataengine.generators.recipes.nemotron_cc import NemotronCC


def words(text: str) -> int:
    return len(text.split())


# -- prefixes and markdown ------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Here is a paraphrased version:\n\nThe river floods in spring.", "The river floods in spring."),
        ("Here is a paraphrased version: The river floods in spring.", "The river floods in spring."),
        ("Sure! Here's the paraphrase you asked for:\nThe river floods in spring.", "The river floods in spring."),
        ("Certainly.\nHere is a paraphrased version:\nThe river floods.", "The river floods."),
        ("**Paraphrased Text:** The river floods in spring.", "The river floods in spring."),
        ("Paraphrased Text:\n\nThe river floods in spring.", "The river floods in spring."),
        # content that merely starts like a preamble stays
        ("Here is where the river bends, near the old mill.", "Here is where the river bends, near the old mill."),
        ("Sure enough, the river flooded.", "Sure enough, the river flooded."),
    ],
)
def test_strip_prefixes(raw, expected):
    assert strip_prefixes(raw) == expected


def test_strip_markdown_keeps_math_and_lists():
    raw = "## Overview\n\n**Photosynthesis** turns *light* into `sugar`.\n* step one\n+ step two\n---\nWe have 2*x*y = 6 and a_i__b."
    out = strip_markdown(raw)
    assert out.splitlines()[0] == "Overview"
    assert "Photosynthesis turns light into sugar." in out
    assert "- step one" in out and "- step two" in out
    assert "2*x*y = 6" in out  # multiplication is not emphasis
    assert "---" not in out


# -- QA pairs -------------------------------------------------------------------------------

QA_OUTPUT = """Here are the questions and answers based on the provided text:
- Question: Is the Nile longer than the Amazon? Answer: Yes, by most measurements.
- Question: Which two rivers are compared?
Answer: The Nile and the Amazon.
1. **Question:** How long is the Nile?
**Answer:** About 6,650 km,
measured from Lake Victoria.
Q: What is a delta? A: A landform at a river mouth.
Question: A question the model never answered?
Question: Where does the Nile end? Answer: In the Mediterranean Sea.
"""


def test_parse_qa_pairs_handles_formats():
    pairs = parse_qa_pairs(QA_OUTPUT)
    assert [p.question for p in pairs] == [
        "Is the Nile longer than the Amazon?",
        "Which two rivers are compared?",
        "How long is the Nile?",
        "What is a delta?",
        "Where does the Nile end?",
    ]
    assert pairs[0].answer == "Yes, by most measurements."
    assert pairs[2].answer == "About 6,650 km,\nmeasured from Lake Victoria."
    assert pairs[3].answer == "A landform at a river mouth."


def test_parse_qa_pairs_of_prose_is_empty():
    assert parse_qa_pairs("The Nile is a river. Questions remain about its source.") == []


def test_sample_qa_pairs_is_proportional_ordered_and_seeded():
    pairs = [QAPair(f"q{i}?", f"a{i}") for i in range(8)]
    few = sample_qa_pairs(pairs, document_words=250, words_per_pair=100, max_pairs=8, rng=random.Random(1))
    assert len(few) == 2
    assert [p.question for p in few] == sorted((p.question for p in few), key=lambda q: int(q[1:-1]))
    again = sample_qa_pairs(pairs, 250, 100, 8, random.Random(1))
    assert few == again
    assert len(sample_qa_pairs(pairs, 10, 100, 8, random.Random(1))) == 1  # at least one
    assert len(sample_qa_pairs(pairs, 100_000, 100, 5, random.Random(1))) == 5  # capped


def test_append_qa_keeps_the_document_first():
    out = append_qa("The Nile is long.\n", [QAPair("How long?", "6,650 km.")])
    assert out == "The Nile is long.\n\nQuestion: How long?\nAnswer: 6,650 km."


# -- chunking -------------------------------------------------------------------------------

def test_split_segments_merges_lines_within_budget():
    text = "\n".join(["one two three"] * 5 + ["", "four five"])  # 3-word lines
    segs = split_segments(text, words, max_tokens=7)
    assert [s.text for s in segs] == ["one two three\none two three"] * 2 + ["one two three\nfour five"]
    assert [s.segment_id for s in segs] == [0, 1, 2]
    assert all(s.tokens <= 7 for s in segs)


def test_split_segments_cuts_long_lines_and_drops_short_segments_keeping_ids():
    long_line = " ".join(f"w{i}" for i in range(25))
    text = "tiny\n" + "x " * 1 + "\n" * 3 + long_line
    segs = split_segments(text, words, max_tokens=10, min_tokens=5)
    # segment 0 ("tiny\nx") is too short and dropped; the long line is cut into 10+10+5
    assert [s.segment_id for s in segs] == [1, 2, 3]
    assert [s.tokens for s in segs] == [10, 10, 5]
    assert " ".join(s.text for s in segs) == long_line


def test_join_segments_reorders_and_skips_missing():
    assert join_segments([(2, "c"), (0, "a"), (1, None), (3, "  ")]) == "a\nc"


# -- MIND filter ------------------------------------------------------------------------------

DIALOGUE = """Teacher: Today we look at the equation 2x + 3 = 11. What is the first step?
Student: Subtract 3 from both sides, so 2x = 8.
Teacher: Good. And then?
Student: Divide both sides by 2, which gives x = 4.
Teacher: Exactly. Can you check it?
Student: 2 times 4 is 8, plus 3 is 11, so it works.
"""


def test_mind_filter_keeps_a_real_dialogue():
    assert mind_filter(DIALOGUE, min_words=30) is None
    assert [s for s, _ in dialogue_turns(DIALOGUE)] == ["Teacher", "Student"] * 3


def test_mind_filter_accepts_markdown_speakers_and_continuation_lines():
    text = "**Professor A:** Let us prove it.\nFirst, assume n is even.\n**Professor B:** Then n = 2k.\n" \
           "**Professor A:** So n squared is 4k^2.\n**Professor B:** Which is even, as claimed, for every k."
    turns = dialogue_turns(text)
    assert [s for s, _ in turns] == ["Professor A", "Professor B"] * 2
    assert "assume n is even" in turns[0][1]
    assert mind_filter(text, min_words=20) is None


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Teacher: Hi.\nStudent: Hello.", "too_short"),
        ("", "too_short"),
        # a QA list looks like speaker turns but "Question"/"Answer" are not speakers
        ("\n".join(f"Question: what is {i} plus {i}, in words please?\nAnswer: it is {2 * i} which we write as a number." for i in range(6)), "not_a_dialogue"),
        # a worked solution: "Step 1:" labels are not speakers
        ("\n".join(f"Step {i}: we divide both sides of the equation by two and simplify the fraction again." for i in range(1, 8)), "not_a_dialogue"),
        # one speaker talking to nobody
        ("\n".join(["Teacher: now we simplify the fraction by cancelling the common factor of both terms."] * 6), "not_a_dialogue"),
        # a couple of turns drowned in prose
        ("Teacher: Hi.\nStudent: Hello.\nTeacher: Ok.\nStudent: Yes.\n\n" + "This is an essay about algebra and its history. " * 10, "not_a_dialogue"),
    ],
)
def test_mind_filter_drops_tricky_outputs(text, reason):
    assert mind_filter(text, min_words=20, min_turns=4) == reason


# -- recipe post-processing on fixed outputs ------------------------------------------------

def _jobs(recipe, prompt: str, texts: list[str], document: str) -> tuple[list[Job], list[GenerationResult]]:
    template = load_prompt(recipe.recipe, prompt)
    req = GenerationRequest.chat(template.messages("x"), SamplingParams())
    jobs = [Job("doc1", ("doc1", prompt), template, i, req, {"document": document, "chunk": "raw chunk"}) for i in range(len(texts))]
    return jobs, [GenerationResult(t, "stop", 10, 10) for t in texts]


def test_nemotron_rejoins_segments_and_strips_prefixes():
    recipe = NemotronCC({"min_output_words": 5})
    jobs, results = _jobs(recipe, "wikipedia", [
        "Here is a paraphrased version:\nThe first part explains rivers in detail.",
        "Sure! Here is the paraphrase:\n**The second part** covers deltas and floods.",
    ], "doc")
    out = recipe.finish(jobs, results)
    assert out.drop_reason is None
    assert out.text == "The first part explains rivers in detail.\nThe second part covers deltas and floods."


def test_nemotron_drops_short_outputs_and_keeps_them_visible():
    recipe = NemotronCC({"min_output_words": 20})
    jobs, results = _jobs(recipe, "distill", ["Paraphrased Text: Too short."], "doc")
    out = recipe.finish(jobs, results)
    assert out.drop_reason == "too_short" and out.text == "Too short."


def test_nemotron_diverse_qa_appends_sampled_pairs_to_the_original():
    document = " ".join(["word"] * 250)
    recipe = NemotronCC({"qa_words_per_pair": 100})
    jobs, results = _jobs(recipe, "diverse_qa", [QA_OUTPUT], document)
    out = recipe.finish(jobs, results)
    assert out.text.startswith(document + "\n\nQuestion: ")
    assert out.text.count("Question: ") == 2  # 250 words // 100
    assert out.text == recipe.finish(jobs, results).text  # seeded sub-sampling
    jobs, results = _jobs(recipe, "diverse_qa", ["I cannot produce questions for this text."], document)
    assert recipe.finish(jobs, results).drop_reason == "no_qa_pairs"


def test_nemotron_routes_by_the_quality_column_and_threshold():
    recipe = NemotronCC({"quality_column": "quality_level", "threshold": 3})
    assert recipe.required_columns() == ("id", "text", "quality_level")
    assert recipe.prompts_for(4) == ("diverse_qa", "distill", "extract_knowledge", "knowledge_list")
    assert recipe.prompts_for(3.0) == recipe.prompts_for(4)
    assert recipe.prompts_for(2) == ("wikipedia",)
    assert recipe.prompts_for(None) == ()
    assert NemotronCC({"prompts": ["distill"]}).prompts_for(None) == ("distill",)


def test_mind_mix_raw_prepends_the_chunk():
    recipe = Mind({"mix_raw": "prepend", "min_words": 10})
    jobs, results = _jobs(recipe, "teacher_student", [DIALOGUE], "doc")
    out = recipe.finish(jobs, results)
    assert out.drop_reason is None and out.text.startswith("raw chunk\n\nTeacher:")


def test_beyondweb_format_mix_is_weighted_and_seeded():
    recipe = BeyondWeb({"format_mix": {"qa": 1, "list": 0, "summary": 3}, "formats_per_doc": 2})
    picks = [tuple(recipe.formats_for(f"doc{i}")) for i in range(200)]
    assert all(set(p) == {"qa", "summary"} for p in picks)  # zero weight never drawn
    assert picks == [tuple(recipe.formats_for(f"doc{i}")) for i in range(200)]
    firsts = [p[0] for p in picks]
    assert firsts.count("summary") > firsts.count("qa")
    default = BeyondWeb({})
    assert len({default.formats_for(f"doc{i}")[0] for i in range(100)}) == 6  # style diversity by default
    with pytest.raises(Exception, match="unknown format"):
        BeyondWeb({"format_mix": {"poem": 1}})


# -- prompt files -----------------------------------------------------------------------------

def test_every_prompt_file_parses_with_a_placeholder_and_version():
    assert {n.split(".")[0] for n in available_prompts("mind")} == set(STYLES)
    assert len(available_prompts("nemotron_cc")) == 5 and len(available_prompts("beyondweb")) == 6
    for recipe in ("nemotron_cc", "mind", "beyondweb"):
        for entry in available_prompts(recipe):
            name, version = entry.rsplit(".", 1)
            p = load_prompt(recipe, name, version)
            assert p.name == name and p.version == version and p.source
            msgs = p.messages("THE {DOC} with {braces}")
            assert "THE {DOC} with {braces}" in msgs[-1]["content"]


def test_prompt_without_placeholder_is_rejected():
    with pytest.raises(Exception, match="placeholder"):
        parse_prompt_file("---\nname: x\nversion: v1\n---\nno slot here", "demo")
