"""Heuristic annotators on hand-checked documents, a Japanese and a Chinese page, and real pages."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dataengine.core.errors import PipelineConfigError
from dataengine.filters.heuristics import C4Quality, CommonRules, FineWebQuality, GopherQuality, GopherRepetition, Heuristics
from dataengine.filters.repetition import NgramRepetition
from dataengine.filters.text_utils import TextFeatures, segmenter

DATA = Path(__file__).parent / "data"

CLEAN_ARTICLE = """The history of the city begins in the twelfth century, when a small group of merchants settled on the banks of the river. Over the following decades the settlement grew into an important trading post, and by the end of the century it had its own market and a stone church.

The town was granted its charter in 1214. With the charter came the right to hold a weekly market and to collect tolls from the ships that passed along the river. These rights made the town rich, and many of the buildings that still stand in the old centre were built in this period.

In the sixteenth century the town suffered from a series of fires and floods. The council responded by building new walls and a system of canals that is still in use today. Visitors can walk along the canals and see the old warehouses that line the water."""

REPEATED_LINES = "\n".join(["Buy cheap watches now and save big today!"] * 30)

LINK_FARM = "\n".join(f"http://cheap-deals-{i}.example.com/offers/item-{i}?ref=spam - deal {i}" for i in range(40))

JAPANESE = (
    "東京は日本の首都であり、世界でも有数の大都市です。江戸時代には徳川幕府が置かれ、政治の中心として栄えました。"
    "明治維新の後、天皇が京都から移り、東京と改名されました。現在では、経済や文化の中心地として多くの人々が暮らしています。\n"
    "東京には多くの観光地があります。浅草寺は東京で最も古い寺であり、毎年多くの観光客が訪れます。"
    "また、東京スカイツリーは世界で最も高い電波塔の一つです。"
)


def annotate(texts, languages=None, stage=None):
    languages = languages or ["en"] * len(texts)
    batch = pa.table({"id": [str(i) for i in range(len(texts))], "text": texts, "language": languages})
    return (stage or Heuristics({}))(batch).to_pydict()


@pytest.fixture(scope="module")
def examples():
    return annotate([CLEAN_ARTICLE, REPEATED_LINES, LINK_FARM, JAPANESE], ["en", "en", "en", "ja"])


def test_clean_article_passes_every_preset(examples):
    for col in ("heuristics_gopher_pass", "heuristics_c4_pass", "heuristics_fineweb_pass", "heuristics_nemotron_cc_pass"):
        assert examples[col][0] is True, col
    # hand-checked values: 152 non-symbol words, 6 of Gopher's 8 stop words, 3 paragraphs
    assert examples["gopher_word_count"][0] == 152
    assert examples["gopher_stop_words"][0] == 6  # the, to, of, and, that, with
    assert examples["gopher_rep_dup_line_frac"][0] == 0
    assert examples["c4_kept_lines"][0] == 3 and examples["c4_sentences"][0] == 8


def test_repeated_lines_page_fails_repetition(examples):
    # 30 identical lines: 29 of them repeat an earlier one
    assert examples["gopher_rep_dup_line_frac"][1] == pytest.approx(29 / 30)
    line = "Buy cheap watches now and save big today!"
    assert examples["gopher_rep_dup_line_char_frac"][1] == pytest.approx(29 * len(line) / len(REPEATED_LINES), rel=1e-6)
    assert examples["gopher_rep_pass"][1] is False
    assert examples["fineweb_char_dup_ratio"][1] > 0.9 and examples["fineweb_pass"][1] is False
    assert examples["rules_pass"][1] is False
    # C4 alone keeps it: every line is a sentence with terminal punctuation (C4 has no repetition rule)
    assert examples["c4_pass"][1] is True


def test_link_farm_fails_url_and_punctuation_rules(examples):
    assert examples["rules_urls_ratio"][2] > 0.6
    assert examples["fineweb_line_punct_ratio"][2] == 0
    assert examples["c4_kept_lines"][2] == 0
    assert examples["gopher_alpha_words_ratio"][2] < 0.8
    for col in ("heuristics_gopher_pass", "heuristics_c4_pass", "heuristics_fineweb_pass", "heuristics_nemotron_cc_pass"):
        assert examples[col][2] is False, col


def test_japanese_document_uses_a_segmenter(examples):
    tokens = segmenter("ja")("東京は晴れです。")
    assert tokens == ["東京", "は", "晴れ", "です", "。"]
    # whitespace splitting would see 2 "words" in the whole page; MeCab sees ~110
    assert examples["gopher_word_count"][3] > 80
    assert examples["gopher_stop_words"][3] >= 5  # の, に, は, を, が, で, ...
    assert examples["c4_sentences"][3] == 7  # sentences end with 。 and no space follows
    # short words are normal in Japanese: the mean-length rule is recorded but not applied
    assert examples["gopher_mean_word_length"][3] < 3
    for col in ("heuristics_gopher_pass", "heuristics_c4_pass", "heuristics_fineweb_pass", "heuristics_nemotron_cc_pass"):
        assert examples[col][3] is True, col


def test_japanese_repetition_is_found_in_segmented_words():
    spam = "今日は天気がとても良いので公園に行きました。" * 12
    out = annotate([spam], ["ja"], GopherRepetition({}))
    assert out["gopher_rep_dup_10gram_frac"][0] > 0.8 and out["gopher_rep_pass"][0] is False


def test_chinese_segmentation_and_unknown_language_stop_words():
    assert segmenter("zh")("我们今天去北京的大学。") == ["我们", "今天", "去", "北京", "的", "大学", "。"]
    out = annotate(["Ово је реченица на српском језику без листе."], ["sr"], GopherQuality({}))
    assert out["gopher_stop_words"][0] is None  # no stop-word list for Serbian: not judged


def test_gopher_quality_thresholds_are_parameters():
    strict = annotate([CLEAN_ARTICLE], stage=GopherQuality({"min_doc_words": 500}))
    assert strict["gopher_pass"] == [False]
    off = annotate([REPEATED_LINES], stage=GopherQuality({"min_stop_words": None, "min_doc_words": 10}))
    assert off["gopher_pass"] == [True]
    custom = annotate([CLEAN_ARTICLE], stage=GopherRepetition({"prefix": "rep", "top_n_grams": {"2": 0.001}}))
    assert custom["rep_pass"] == [False] and "rep_top_3gram_frac" not in custom


def test_bullets_ellipsis_and_c4_rules():
    bullets = "\n".join(f"• item number {i} of the list" for i in range(20))
    ellipsis = "\n".join(f"Read more about the story number {i}..." for i in range(20))
    out = annotate([bullets, ellipsis], stage=GopherQuality({}))
    assert out["gopher_bullet_lines_ratio"] == [1.0, 0.0]
    assert out["gopher_ellipsis_lines_ratio"] == [0.0, 1.0]
    assert out["gopher_pass"] == [False, False]
    lorem = CLEAN_ARTICLE + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit."
    # C4 checks "{" only on lines it would keep (terminal punctuation, >= 3 words)
    code = CLEAN_ARTICLE + "\nfunction f() { return 1; }\nWrite the object as { key: value } in the file."
    c4 = annotate([lorem, code], stage=C4Quality({}))
    assert c4["c4_lorem_ipsum"] == [True, False] and c4["c4_curly_bracket"] == [False, True]
    assert c4["c4_pass"] == [False, False]


def test_fineweb_and_common_rules_values():
    short_lines = "\n".join(["Home", "About us", "Contact", "Login", "Shop now"] * 4)
    out = annotate([short_lines], stage=FineWebQuality({}))
    assert out["fineweb_short_line_ratio"] == [1.0] and out["fineweb_pass"] == [False]
    numbers = "Prices: " + " ".join(str(1000 + i) for i in range(200))
    rules = annotate([numbers], stage=CommonRules({}))
    assert rules["rules_numbers_ratio"][0] > 0.5 and rules["rules_pass"] == [False]


def _reference_dup_ngram_chars(words, n):
    """Gopher's definition, written plainly: characters of words covered by a repeated n-gram."""
    seen, covered = set(), [False] * len(words)
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        if gram in seen:
            for j in range(i, i + n):
                covered[j] = True
        seen.add(gram)
    return sum(len(w) for w, c in zip(words, covered) if c)


def _reference_top_ngram_chars(words, n):
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return 0
    best = max(grams.items(), key=lambda kv: (kv[1], sum(len(w) for w in kv[0])))
    return sum(len(w) for w in best[0]) * best[1]


def test_vectorised_ngram_repetition_matches_a_plain_implementation():
    rng = np.random.default_rng(7)
    vocab = ["a", "bb", "ccc", "dddd", "ee", "f"]
    docs = [[vocab[k] for k in rng.integers(0, len(vocab), rng.integers(0, 40))] for _ in range(60)]
    codes = np.array([vocab.index(w) for d in docs for w in d], dtype=np.int64)
    lengths = np.array([len(w) for d in docs for w in d], dtype=np.int64)
    parents = np.array([i for i, d in enumerate(docs) for _ in d], dtype=np.int64)
    reps = NgramRepetition(codes, lengths, parents, len(docs))
    for n in (2, 3, 4, 5):  # hashes for n are built from n-1: check the chain too
        dup = reps.duplicate(n)
        top = reps.top(n)
        assert dup.tolist() == [_reference_dup_ngram_chars(d, n) for d in docs]
        assert top.tolist() == [_reference_top_ngram_chars(d, n) for d in docs]


def test_features_handle_empty_and_null_text():
    out = annotate(["", "one", None], stage=Heuristics({}))
    assert out["heuristics_gopher_pass"] == [False, False, False]
    assert out["gopher_word_count"] == [0, 1, 0]
    f = TextFeatures.from_batch(pa.table({"text": ["a\n\nb"]}))
    assert f.paragraph_count.tolist() == [2] and f.line_count.tolist() == [3]


def test_unknown_preset_is_a_config_error():
    with pytest.raises(PipelineConfigError, match="unknown preset"):
        Heuristics({"presets": ["gopher", "nope"]})


def test_real_articles_pass_more_often_than_boilerplate():
    rows = [json.loads(line) for line in gzip.open(DATA / "aeb_quality.jsonl.gz", "rt")]
    out = annotate([r["text"] for r in rows], stage=Heuristics({"presets": ["gopher", "fineweb"]}))
    kinds = np.array([r["kind"] for r in rows])
    for col in ("heuristics_gopher_pass", "heuristics_fineweb_pass"):
        passed = np.array(out[col], dtype=bool)
        article, boiler = passed[kinds == "article"].mean(), passed[kinds == "boilerplate"].mean()
        assert article > boiler + 0.3, (col, article, boiler)


def test_heuristics_in_a_pipeline_store_columns_and_thresholds(wh):
    from dataengine.engine import run_pipeline
    from dataengine.core.pipeline import pipeline_from_dict

    docs = pa.table({"id": ["a", "b", "c"], "text": [CLEAN_ARTICLE, REPEATED_LINES, JAPANESE], "language": ["en", "en", "ja"]})
    wh.write_table("docs", docs)
    pipeline = pipeline_from_dict(
        {
            "source": {"table": "docs"},
            "stages": [{"name": "heuristics", "params": {"presets": ["gopher"]}}],
            "output": {"table": "docs"},
            "executor": {"workers": 1},
        }
    )
    run_pipeline(pipeline, wh, progress=False)
    got = wh.sql("SELECT id, heuristics_gopher_pass AS ok FROM docs ORDER BY id").to_pylist()
    assert got == [{"id": "a", "ok": True}, {"id": "b", "ok": False}, {"id": "c", "ok": True}]
    config = json.loads(wh.sql("SELECT config FROM dataengine.runs ORDER BY finished_at DESC LIMIT 1").column(0)[0].as_py())
    assert config["stages"][0]["params"]["presets"] == ["gopher"]
