"""Post-processing of model outputs: prefixes, markdown, QA pairs, dialogue checks, length.

Models wrap their answers in boilerplate ("Here is a paraphrased version:", "Sure! ...")
and markdown that the training data should not learn. Each function here is pure and
tested on hand-written outputs (tests/test_generators_postprocess.py).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# -- prefixes and markdown ----------------------------------------------------------------

#: Openings the Nemotron-CC prompts ask for, removed wherever the model put them first.
KNOWN_PREFIXES = (
    "Here is a paraphrased version:",
    "Here are the questions and answers based on the provided text:",
    "Paraphrased Text:",
    "Paraphrased version:",
    "Rewritten text:",
    "Extracted knowledge:",
)
_CHATTY_FIRST_LINE = re.compile(
    r"^\s*(?:sure|certainly|of course|okay|ok|absolutely|great)\b[^\n]{0,200}(?:\n|$)", re.IGNORECASE
)
_HERE_IS = re.compile(r"^\s*here(?:'s| is| are)\b[^\n]{0,200}?:[ \t]*(?:\n|$)", re.IGNORECASE)


def strip_prefixes(text: str, prefixes: tuple[str, ...] = KNOWN_PREFIXES) -> str:
    """Remove known answer prefixes and chatty preambles at the start, repeatedly."""
    out = text.strip()
    while True:
        before = out
        for prefix in prefixes:
            if out.lower().startswith(prefix.lower()):
                out = out[len(prefix) :].lstrip()
        m = _CHATTY_FIRST_LINE.match(out) or _HERE_IS.match(out)
        if m and m.end() < len(out):  # never strip the whole answer
            out = out[m.end() :].lstrip()
        # a prefix wrapped in markdown emphasis: "**Paraphrased Text:**"
        unbold = re.sub(r"^\*\*([^*\n]{1,80}:)\*\*", r"\1", out)
        if unbold != out and any(unbold.lower().startswith(p.lower()) for p in prefixes):
            out = unbold
        if out == before:
            return out


def strip_markdown(text: str) -> str:
    """Plain text from light markdown: headings, emphasis, code fences, horizontal rules.

    List markers are kept (normalised to "- "): in knowledge lists they carry structure.
    """
    lines = []
    for line in text.split("\n"):
        if re.fullmatch(r"\s*```\w*\s*", line) or re.fullmatch(r"\s*(?:-{3,}|\*{3,}|_{3,})\s*", line):
            continue
        line = re.sub(r"^\s{0,3}#{1,6}\s+", "", line)
        line = re.sub(r"^(\s*)[*+]\s+", r"\1- ", line)
        line = re.sub(r"\*\*(.+?)\*\*", r"\1", line)
        line = re.sub(r"__(.+?)__", r"\1", line)
        line = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", line)
        line = re.sub(r"`([^`]+)`", r"\1", line)
        lines.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def clean_output(text: str) -> str:
    return strip_markdown(strip_prefixes(text))


def word_count(text: str | None) -> int:
    return len(text.split()) if text else 0


# -- QA pairs ---------------------------------------------------------------------------

_Q = re.compile(r"^\s*(?:[-*]\s*|\d+[.)]\s*)?(?:\*\*)?(?:question|q)\s*\d*\s*(?:\*\*)?\s*[:.]\s*(?:\*\*)?\s*", re.IGNORECASE)
_A = re.compile(r"^\s*(?:[-*]\s*)?(?:\*\*)?(?:answer|a)\s*\d*\s*(?:\*\*)?\s*[:.]\s*(?:\*\*)?\s*", re.IGNORECASE)
_INLINE_A = re.compile(r"\s+(?:\*\*)?(?:[Aa]nswer|ANSWER|A)\s*(?:\*\*)?\s*:\s*(?:\*\*)?\s*")


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str

    def render(self) -> str:
        return f"Question: {self.question}\nAnswer: {self.answer}"


def parse_qa_pairs(text: str) -> list[QAPair]:
    """QA pairs from "Question: ... Answer: ..." output (same line or not, numbered,
    bulleted, bold, Q:/A:). Answers may span lines; pairs without an answer are dropped."""
    pairs: list[QAPair] = []
    question: list[str] | None = None
    answer: list[str] | None = None

    def flush():
        if question is not None and answer is not None:
            q, a = " ".join(question).strip(), "\n".join(answer).strip()
            if q and a:
                pairs.append(QAPair(q, a))

    for line in strip_prefixes(text).split("\n"):
        qm = _Q.match(line)
        if qm:
            flush()
            rest = line[qm.end() :]
            inline = _INLINE_A.search(rest)
            if inline:
                question, answer = [rest[: inline.start()]], [rest[inline.end() :]]
            else:
                question, answer = [rest], None
            continue
        am = _A.match(line)
        if am and question is not None and answer is None:
            answer = [line[am.end() :]]
            continue
        if answer is not None:
            answer.append(line.strip())
        elif question is not None and line.strip():
            question.append(line.strip())
    flush()
    return [QAPair(_unbold(p.question), _unbold(p.answer)) for p in pairs]


def _unbold(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"\1", text).strip()


def sample_qa_pairs(pairs: list[QAPair], document_words: int, words_per_pair: int, max_pairs: int, rng: random.Random) -> list[QAPair]:
    """Sub-sample pairs in proportion to the document's length (at least one), keeping order."""
    if not pairs:
        return []
    k = min(len(pairs), max_pairs, max(1, document_words // max(1, words_per_pair)))
    chosen = sorted(rng.sample(range(len(pairs)), k))
    return [pairs[i] for i in chosen]


def append_qa(document: str, pairs: list[QAPair]) -> str:
    """The original document followed by the QA pairs (Nemotron-CC's diverse-QA output)."""
    return document.rstrip() + "\n\n" + "\n\n".join(p.render() for p in pairs)


# -- dialogues (MIND) ---------------------------------------------------------------------

_SPEAKER = re.compile(
    r"^\s*(?:[-*]\s+)?(?:\*\*|__)?\s*([A-Z][\w.'’ -]{0,30}?|[A-Z])\s*(?:\*\*|__)?\s*:(?:\*\*|__)?\s+(\S.*)$"
)
#: Labels that open a line like a speaker but are not one.
_NOT_SPEAKERS = {
    "note", "example", "step", "solution", "answer", "question", "q", "context", "summary",
    "conclusion", "title", "formula", "equation", "definition", "hint", "proof", "output",
    "input", "problem", "result", "therefore", "explanation", "given", "text", "task",
}


def dialogue_turns(text: str) -> list[tuple[str, str]]:
    """(speaker, utterance) turns; lines without a speaker tag continue the previous turn.

    Paragraphs after the last turn that follow a blank line are not part of it: that is
    the model leaving the dialogue ("In this conversation, ..."), which the filter counts
    as non-dialogue text.
    """
    turns: list[tuple[str, str]] = []
    pending: list[str] = []  # continuation lines seen after a blank line
    blank = False
    for line in text.split("\n"):
        m = _SPEAKER.match(line)
        if m:
            speaker = m.group(1).strip()
            base = re.sub(r"\s*\d+$", "", speaker).lower()
            if base not in _NOT_SPEAKERS:
                _extend_last(turns, pending)
                pending, blank = [], False
                turns.append((speaker, m.group(2).strip()))
                continue
        if not line.strip():
            blank = True
        elif turns:
            if blank or pending:
                pending.append(line.strip())
            else:
                _extend_last(turns, [line.strip()])
    return turns


def _extend_last(turns: list[tuple[str, str]], lines: list[str]) -> None:
    if turns and lines:
        speaker, said = turns[-1]
        turns[-1] = (speaker, "\n".join([said, *lines]))


def mind_filter(text: str | None, min_words: int = 50, min_turns: int = 4, min_speakers: int = 2) -> str | None:
    """Why a MIND generation is dropped (None: keep): too short, or not a dialogue."""
    if not text or word_count(text) < min_words:
        return "too_short"
    turns = dialogue_turns(text)
    speakers = {s.lower() for s, _ in turns}
    if len(speakers) < min_speakers or len(turns) < min_turns:
        return "not_a_dialogue"
    # A dialogue is mostly turns: most words must sit inside speaker turns.
    if sum(word_count(u) for _, u in turns) < 0.6 * word_count(text):
        return "not_a_dialogue"
    return None
