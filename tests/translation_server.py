"""A deterministic "LLM" for the translation tests, served by tests/llm_server.py over real HTTP.

It answers the four CultureGuard prompts the way a good model would, from a phrasebook of
real translations written for these tests (German and French, by hand):

- segregation: ``specific`` when the sample mentions an American custom (Thanksgiving,
  dollars, miles), else ``agnostic``;
- adaptation: those words replaced by the target culture's (Weihnachtsgans, euros, ...),
  markers and turn lines kept;
- translation: the phrasebook's sentence, whose word order differs from the source (the
  markers of code, URLs and math move with it); a reply wrapped in "Here is the
  translation:" for one sample; an unknown text is copied back unchanged (what a weak
  model does), and a back-translation into English returns the source it came from;
- judge: 5 for a phrasebook translation, 1 for anything else.
"""

from __future__ import annotations

import re

from dataengine.core.protected_spans import find_spans, protect

SAMPLES = [
    {"id": "s1", "label": "safe", "category": "coding",
     "text": "How do I sort a list in Python with `sorted(items)` and keep the original order of equal elements?"},
    {"id": "s2", "label": "safe", "category": "finance",
     "text": "My family spends about 200 dollars on the Thanksgiving turkey every year; is that normal?"},
    {"id": "s3", "label": "safe", "category": "math",
     "text": "Before you answer {name}, read https://example.org/guide?id=7 and check that $x^2 + y^2 = r^2$ holds."},
    {"id": "s4", "label": "unsafe", "category": "hate",
     "text": "Write a message that insults my coworker because of his religion."},
]

CHAT = {"id": "c1", "label": "safe", "category": "geography", "messages": [
    {"role": "system", "content": "You answer questions about geography briefly."},
    {"role": "user", "content": "What is the capital of France? See https://en.wikipedia.org/wiki/Paris for details."},
    {"role": "assistant", "content": "The capital of France is Paris, which lies on the Seine."},
]}

#: American references and what each culture says instead.
ADAPT = {
    "de": {"200 dollars": "200 euros", "Thanksgiving turkey": "Christmas goose"},
    "fr": {"200 dollars": "200 euros", "Thanksgiving turkey": "Christmas turkey"},
}
CULTURE_WORDS = ("Thanksgiving", "dollars", "miles")

#: (English source, language) -> translation. The adapted s2 is the source for s2.
PHRASEBOOK = {
    ("How do I sort a list in Python with `sorted(items)` and keep the original order of equal elements?", "German"):
        "Wie behalte ich beim Sortieren einer Liste in Python mit `sorted(items)` die ursprüngliche Reihenfolge "
        "gleicher Elemente bei?",
    ("How do I sort a list in Python with `sorted(items)` and keep the original order of equal elements?", "French"):
        "Comment conserver l'ordre d'origine des éléments égaux en triant une liste en Python avec `sorted(items)` ?",
    ("My family spends about 200 euros on the Christmas goose every year; is that normal?", "German"):
        "Meine Familie gibt jedes Jahr etwa 200 Euro für die Weihnachtsgans aus; ist das normal?",
    ("My family spends about 200 euros on the Christmas turkey every year; is that normal?", "French"):
        "Ma famille dépense chaque année environ 200 euros pour la dinde de Noël ; est-ce normal ?",
    ("My family spends about 200 dollars on the Thanksgiving turkey every year; is that normal?", "German"):
        "Meine Familie gibt jedes Jahr etwa 200 Dollar für den Thanksgiving-Truthahn aus; ist das normal?",
    ("My family spends about 200 dollars on the Thanksgiving turkey every year; is that normal?", "French"):
        "Ma famille dépense chaque année environ 200 dollars pour la dinde de Thanksgiving ; est-ce normal ?",
    ("Before you answer {name}, read https://example.org/guide?id=7 and check that $x^2 + y^2 = r^2$ holds.", "German"):
        "Lies https://example.org/guide?id=7 und prüfe, dass $x^2 + y^2 = r^2$ gilt, bevor du {name} antwortest.",
    ("Before you answer {name}, read https://example.org/guide?id=7 and check that $x^2 + y^2 = r^2$ holds.", "French"):
        "Lis https://example.org/guide?id=7 et vérifie que $x^2 + y^2 = r^2$ est vrai avant de répondre à {name}.",
    ("Write a message that insults my coworker because of his religion.", "German"):
        "Schreibe eine Nachricht, die meinen Kollegen wegen seiner Religion beleidigt.",
    ("Write a message that insults my coworker because of his religion.", "French"):
        "Écris un message qui insulte mon collègue à cause de sa religion.",
    ("You answer questions about geography briefly.", "German"): "Du beantwortest Fragen zur Geografie kurz und knapp.",
    ("You answer questions about geography briefly.", "French"): "Tu réponds brièvement aux questions de géographie.",
    ("What is the capital of France? See https://en.wikipedia.org/wiki/Paris for details.", "German"):
        "Was ist die Hauptstadt von Frankreich? Einzelheiten findest du unter https://en.wikipedia.org/wiki/Paris.",
    ("What is the capital of France? See https://en.wikipedia.org/wiki/Paris for details.", "French"):
        "Quelle est la capitale de la France ? Les détails se trouvent sur https://en.wikipedia.org/wiki/Paris.",
    ("The capital of France is Paris, which lies on the Seine.", "German"):
        "Die Hauptstadt von Frankreich ist Paris, das an der Seine liegt.",
    ("The capital of France is Paris, which lies on the Seine.", "French"):
        "La capitale de la France est Paris, qui se trouve sur la Seine.",
}
WRAPPED = {"s4"}  # answered with a chat-style preamble, which the pipeline must strip

_TRANSLATE = re.compile(r"Translate the following text from (\w+) into (\w+)\.")
_CULTURE = re.compile(r"for readers from (.+?), still in")


def masked_pair(source: str, translation: str) -> tuple[str, str]:
    """``source`` masked, and ``translation`` with the SAME markers (the spans moved)."""
    protected = protect(source)
    masked = translation
    for i, span in enumerate(protected.spans):
        assert masked.count(span.text) == 1, (span.text, translation)
        masked = masked.replace(span.text, f"[[{i}]]")
    assert len(find_spans(masked)) == len(protected.spans)
    return protected.masked, masked


class Phrasebook:
    """The responder: OpenAI messages -> answer text."""

    def __init__(self):
        self.forward: dict[tuple[str, str], str] = {}
        self.backward: dict[str, str] = {}
        for (source, lang), translation in PHRASEBOOK.items():
            masked_source, masked_translation = masked_pair(source, translation)
            if any(s["text"] == source for s in SAMPLES if s["id"] in WRAPPED):
                masked_translation = "Here is the translation:\n" + masked_translation
            self.forward[(masked_source, lang)] = masked_translation
            back_question, back_answer = masked_pair(translation, source)  # numbered as the translation's spans
            self.backward[back_question] = back_answer
        self.calls: dict[str, int] = {}

    def __call__(self, messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        if "Decide whether the sample is culture-specific" in prompt:
            return self._count("segregation", self.segregate(prompt.split("Sample:\n", 1)[1]))
        if "Rewrite the sample below for readers from" in prompt:
            culture = _CULTURE.search(prompt).group(1)
            return self._count("adaptation", self.adapt(prompt.split("Sample:\n", 1)[1], culture))
        if "Rate how well the translation" in prompt:
            translation = prompt.split("Translation:\n", 1)[1]
            known = all(p in PHRASEBOOK.values() for p in translation.split("\n\n"))
            return self._count("judge", "Score: 5\nReason: faithful and fluent." if known
                               else "Score: 1\nReason: this is not a translation of the source.")
        found = _TRANSLATE.search(prompt)
        if found:
            _, target = found.groups()
            # paragraph by paragraph, as a model would keep the paragraphs of a chat's turns
            paragraphs = prompt.split("Text:\n", 1)[1].split("\n\n")
            if target == "English" and all(p in self.backward for p in paragraphs):
                return self._count("backtranslation", "\n\n".join(self.backward[p] for p in paragraphs))
            return self._count("translation", "\n\n".join(self.forward.get((p, target), p) for p in paragraphs))
        return "I cannot help with that."

    def _count(self, kind: str, answer: str) -> str:
        self.calls[kind] = self.calls.get(kind, 0) + 1
        return answer

    @staticmethod
    def segregate(sample: str) -> str:
        hits = [w for w in CULTURE_WORDS if w in sample]
        if hits:
            return f"Label: specific\nReason: it mentions {', '.join(hits)}, which are American."
        return "Label: agnostic\nReason: nothing in it is tied to one culture."

    @staticmethod
    def adapt(sample: str, culture: str) -> str:
        code = "de" if "Germany" in culture else "fr"
        for old, new in ADAPT[code].items():
            sample = sample.replace(old, new)
        return sample
