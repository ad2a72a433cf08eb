"""`translation_quality`: every signal on real multilingual text (Leipzig sentences in
tests/data/langid, real MiniLM embeddings, sacrebleu chrF, a fastText label classifier the
test trains), and the stage on a table of translations made elsewhere."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import dataengine as de
from dataengine.core.languages import expected_length_range, parse_languages
from dataengine.core.errors import PipelineConfigError
from dataengine.core.registry import get_stage
from dataengine.filters.translation_signals import (
    chrf, length_ratio, parse_judge, spans_kept, untranslated_fraction,
)

DATA = Path(__file__).parent / "data" / "langid"
TARGETS = ["ar", "de", "es", "fr", "hi", "ja", "th", "zh", "ru", "ko", "it"]


def sentences(lang: str, n: int = 20) -> list[str]:
    return [line.strip() for line in (DATA / f"{lang}.txt").read_text(encoding="utf-8").splitlines() if line.strip()][:n]


@pytest.fixture(scope="module")
def quality():
    """One stage without an LLM (language, length, n-grams, spans; back-similarity from a column)."""
    stage = get_stage("translation_quality")({"back_translation_column": "back"})
    stage.ensure_setup()
    return stage


def _rows(pairs: list[tuple[str, str, str]], backs: list[str | None] | None = None) -> pa.Table:
    sources, texts, langs = zip(*pairs) if pairs else ((), (), ())
    return pa.table({"source_text": list(sources), "text": list(texts), "language": list(langs),
                     "back": backs if backs is not None else [None] * len(pairs)})


def test_right_language_passes_wrong_language_and_copies_fail(quality):
    english = sentences("en", 20)
    right = [(english[i], s, lang) for lang in TARGETS for i, s in enumerate(sentences(lang, 20))]
    wrong = [(english[i], s, "fr") for i, s in enumerate(sentences("de", 10))]  # German labelled French
    copied = [(s, s, lang) for s, lang in zip(english[:10], TARGETS)]  # the source sent back as it is
    out = quality(_rows(right + wrong + copied)).to_pydict()
    ok = out["translation_lang_ok"]
    n = len(right)
    per_language = {lang: sum(ok[i] for i in range(n) if right[i][2] == lang) / 20 for lang in TARGETS}
    assert sum(ok[:n]) / n >= 0.97 and min(per_language.values()) >= 0.9, per_language
    assert not any(ok[n:n + 10]) and set(out["translation_lang"][n:n + 10]) == {"de"}
    assert not any(ok[n + 10:]) and set(out["translation_lang"][n + 10:]) == {"en"}
    # the untranslated fraction of a copied source is 1; real sentences in other languages copy nothing
    assert out["translation_untranslated_frac"][n + 10:] == [1.0] * 10
    assert max(out["translation_untranslated_frac"][:n]) < 0.05
    assert not any(out["translation_keep"][n:])


def test_length_ratio_uses_each_languages_expected_range(quality):
    source = "The weather is nice today, so we are going to the park."
    pairs = [
        (source, "Das Wetter ist heute schön, deshalb gehen wir in den Park.", "de"),
        (source, "Il fait beau aujourd'hui, alors nous allons au parc.", "fr"),
        (source, "今天天气很好，所以我们要去公园。", "zh"),
        (source, "今日は天気がいいので、公園に行きます。", "ja"),
        (source, "Das Wetter ist heute schön, deshalb gehen wir in den Park.", "zh"),  # 3x too long for Chinese
        (source, "Das Wetter.", "de"),  # truncated
    ]
    out = quality(_rows(pairs)).to_pydict()
    assert out["translation_length_ratio"][2] == pytest.approx(len(pairs[2][1]) / len(source))
    assert out["translation_length_ok"] == [True, True, True, True, False, False]
    assert out["translation_lang_ok"][:4] == [True, True, True, True]
    low, high = expected_length_range("en", "zh", 1.6)
    assert low < out["translation_length_ratio"][2] < high < out["translation_length_ratio"][4]
    # a per-language override replaces the table's range
    assert expected_length_range("en", "zh", 1.6, {"zh": (0.5, 0.9)}) == (0.5, 0.9)


def test_untranslated_fraction_ignores_protected_spans():
    source = "Please run the full test suite with `pytest -q tests/unit` before you merge the branch."
    copied_code_only = "Bitte führe vor dem Mergen des Branches die ganze Testsuite mit `pytest -q tests/unit` aus."
    half = "Please run the full test suite, danach bitte den Branch mergen."
    assert untranslated_fraction(source, copied_code_only) == 0.0  # the code span was supposed to be copied
    assert untranslated_fraction(source, source) == 1.0
    assert 0.2 < untranslated_fraction(source, half) < 0.6
    assert untranslated_fraction("Hi there", "Hi there") == 1.0  # shorter than 4 words: its 2-grams
    assert untranslated_fraction("`only code`", "`only code`") is None
    assert spans_kept(source, copied_code_only) is True
    assert spans_kept(source, copied_code_only.replace("-q", "-x")) is False


def test_back_translation_similarity_minilm_and_chrf(quality):
    english = sentences("en", 12)
    source = "The museum opens at nine in the morning and closes at six in the evening."
    backs = [
        source,  # a perfect round trip
        "The museum opens at 9 a.m. and closes at 6 p.m.",  # the same meaning, other words
        english[5],  # an unrelated real sentence
        "",  # nothing came back: no value
    ]
    pairs = [(source, "Das Museum öffnet um neun Uhr morgens und schließt um sechs Uhr abends.", "de")] * 4
    out = quality(_rows(pairs, backs)).to_pydict()
    sim, score = out["translation_backsim"], out["translation_backsim_chrf"]
    assert sim[0] == pytest.approx(1.0, abs=1e-4) and score[0] == pytest.approx(100.0)
    assert 0.7 < sim[1] < sim[0] and 30 < score[1] < 100
    assert sim[2] < 0.35 and score[2] < 30
    assert sim[3] is None and score[3] is None
    assert out["translation_keep"][:3] == [True, True, False]  # min_backsim 0.7 by default
    assert chrf(["abc"], ["abc"]) == [100.0]


def test_judge_answers_are_parsed():
    assert parse_judge("Score: 4\nReason: accurate but stiff.") == (4, "accurate but stiff.")
    assert parse_judge("**Score:** 2/5\n**Reason:** the meaning changed") == (2, "the meaning changed")
    assert parse_judge("5") == (5, None)
    assert parse_judge("I would rate it highly.")[0] is None
    assert parse_judge("   ") == (None, None)


@pytest.mark.slow
def test_label_ok_with_a_fasttext_classifier(tmp_path):
    fasttext = pytest.importorskip("fasttext")
    train = tmp_path / "labels.txt"
    safe = ["Wie sortiere ich eine Liste in Python?", "Comment trier une liste en Python ?", "How do I sort a list?",
            "Das Wetter ist heute schön.", "Il fait beau aujourd'hui.", "The weather is nice today."]
    unsafe = ["Schreibe eine Nachricht, die meinen Kollegen wegen seiner Religion beleidigt.",
              "Écris un message qui insulte mon collègue à cause de sa religion.",
              "Write a message that insults my coworker because of his religion.",
              "Beleidige ihn wegen seiner Religion.", "Insulte-le à cause de sa religion.", "Insult him for his religion."]
    train.write_text("".join(f"__label__{lab} {t}\n" for lab, ts in (("safe", safe), ("unsafe", unsafe)) for t in ts * 20))
    # the settings of tests/test_math_stage.py (word unigrams alone give NaN on so little data)
    model = fasttext.train_supervised(str(train), epoch=20, lr=0.5, dim=64, wordNgrams=2, minCount=1, seed=0, thread=1,
                                      verbose=0)
    model.save_model(str(tmp_path / "labels.bin"))
    stage = get_stage("translation_quality")({"label_classifier": str(tmp_path / "labels.bin"), "label_column": "label"})
    rows = pa.table({
        "source_text": ["Write a message that insults my coworker because of his religion.", "How do I sort a list?",
                        "How do I sort a list?"],
        "text": ["Schreibe eine Nachricht, die meinen Kollegen wegen seiner Religion beleidigt.",
                 "Wie sortiere ich eine Liste in Python?", "Wie sortiere ich eine Liste in Python?"],
        "language": ["de", "de", "de"],
        "label": ["unsafe", "safe", "unsafe"],  # the last row's label does not fit its text
    })
    out = stage(rows).to_pydict()
    assert out["translation_label"] == ["unsafe", "safe", "safe"]
    assert out["translation_label_ok"] == [True, True, False]
    assert out["translation_keep"][2] is False
    with pytest.raises(PipelineConfigError, match="label_column"):
        get_stage("translation_quality")({"label_classifier": str(tmp_path / "labels.bin")})


def test_bad_parameters_fail_before_any_work():
    with pytest.raises(PipelineConfigError, match="judge=true needs a backend"):
        get_stage("translation_quality")({"judge": True})
    with pytest.raises(PipelineConfigError, match="unknown language"):
        get_stage("translation_quality")({"source_language": "xx"})
    with pytest.raises(PipelineConfigError, match="unknown language 'qq'"):
        parse_languages("de,qq")
    assert parse_languages(" de, fr,de ") == ["de", "fr"]


def test_the_stage_checks_translations_made_elsewhere(wh, quality):
    """A table of existing translations, through the engine, with the stage's own column names."""
    english = sentences("en", 6)
    wh.write_table("external", pa.table({
        "id": [f"t{i}" for i in range(6)],
        "orig": english,
        "mt": english[:3] + sentences("es", 3),  # three copies, three (unrelated) Spanish sentences
        "lang": ["es"] * 6,
    }))
    stage = de.stage("translation_quality", source_column="orig", text_column="mt", language_column="lang",
                     min_backsim=None)
    result = de.run(wh, de.pipeline("external", [stage], to="external_checked", workers=1), progress=False)
    assert result.rows_out == 6
    rows = wh.sql("SELECT id, translation_lang_ok, translation_untranslated_frac, translation_keep "
                  "FROM external_checked ORDER BY id").to_pylist()
    assert [r["translation_lang_ok"] for r in rows] == [False] * 3 + [True] * 3
    assert [r["translation_untranslated_frac"] for r in rows][:3] == [1.0] * 3
    assert [r["translation_keep"] for r in rows][:3] == [False] * 3
