"""Text pieces the heuristic rules share: lines, paragraphs, words per language, n-gram repetition.

Everything works on a whole Arrow batch at once. Lines and whitespace words are split with
Arrow compute kernels; per-document aggregates are ``numpy.bincount`` over the list parent
indices, and repetition is found by hashing (see :mod:`dataengine.filters.repetition`), not by
per-document Python loops. The one per-document loop left is word segmentation of languages written
without spaces:

* Japanese: MeCab through ``fugashi`` with the ``unidic-lite`` dictionary (C, fast);
* Chinese: ``jieba`` (dictionary + HMM);
* Thai, Lao, Khmer, Burmese, Tibetan: no segmenter ships offline, so every letter is a
  "word" (character unigrams); word-length rules are not applied to them.

Every other language is split on Unicode whitespace. A "word" is a token that still has a
character after stripping punctuation from its ends; symbol-only tokens (``-``, ``|``, ``•``)
are not words, as in Gopher's "non-symbol words".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataengine.filters.repetition import NgramRepetition, duplicate_items

#: Punctuation stripped from both ends of a token before it counts as a word.
PUNCTUATION = (
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "\u00a1\u00a7\u00ab\u00b6\u00b7\u00bb\u00bf\u2010\u2011\u2012\u2013\u2014\u2015\u2016\u2018\u2019\u201a"
    "\u201c\u201d\u201e\u2020\u2021\u2022\u2026\u2030\u2032\u2033\u2039\u203a\u25ba\u25cf\u25aa\u2023"
    "\u3001\u3002\u3008\u3009\u300a\u300b\u300c\u300d\u300e\u300f\u3010\u3011\u3014\u3015\u301c\u30fb"
    "\uff01\uff08\uff09\uff0c\uff0e\uff1a\uff1b\uff1f\uff3b\uff3d\uff5b\uff5d\uff5e\uff65"
)

#: Sentence-ending punctuation, used by the line rules (C4, FineWeb, NeMo "end mark").
TERMINAL_PUNCTUATION = (".", "!", "?", '"', "'", "\u3002", "\uff01", "\uff1f", "\u300d", "\u300f", "\u201d", "\u2019")

SEGMENTED_LANGUAGES = {"ja", "zh"}
CHARACTER_LANGUAGES = {"th", "lo", "km", "my", "bo"}

#: A few very frequent function words per language. English is Gopher's list; the others
#: play the same role (does the text use the language's grammar at all?).
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(["the", "be", "to", "of", "and", "that", "have", "with"]),
    "de": frozenset(["der", "die", "und", "in", "den", "von", "zu", "das", "mit", "ist"]),
    "fr": frozenset(["de", "la", "le", "et", "les", "des", "en", "un", "une", "est"]),
    "es": frozenset(["de", "la", "que", "el", "en", "y", "los", "del", "las", "un"]),
    "it": frozenset(["di", "e", "il", "la", "che", "in", "per", "un", "del", "non"]),
    "pt": frozenset(["de", "a", "o", "que", "e", "do", "da", "em", "um", "para"]),
    "nl": frozenset(["de", "en", "van", "het", "een", "in", "is", "dat", "op", "te"]),
    "ja": frozenset(["の", "に", "は", "を", "た", "が", "で", "て", "と", "し", "です", "ます"]),
    "zh": frozenset(["的", "了", "是", "在", "和", "有", "我", "不", "这", "也"]),
}

_LANGUAGE_ALIASES = {"jpn": "ja", "zho": "zh", "cmn": "zh", "chi": "zh", "eng": "en", "tha": "th"}


def normalize_language(code: str | None, default: str = "en") -> str:
    """``'ja'``, ``'jpn_Jpan'``, ``'__label__zh'``, ``'zh-Hant'`` -> ``'ja'`` / ``'zh'``; None -> default."""
    if not code:
        return default
    code = code.lower().removeprefix("__label__")
    base = code.replace("-", "_").split("_")[0]
    return _LANGUAGE_ALIASES.get(base, base)


# -- segmenters ---------------------------------------------------------------------------

_SEGMENTERS: dict[str, object] = {}


def segmenter(language: str):
    """A function str -> list[str] for a language written without spaces, or None."""
    if language in _SEGMENTERS:
        return _SEGMENTERS[language]
    if language == "ja":
        import fugashi

        tagger = fugashi.Tagger("-Owakati")  # unidic-lite is found automatically

        def seg(text: str) -> list[str]:
            return tagger.parse(text).split() if text.strip() else []

    elif language == "zh":
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()

        def seg(text: str) -> list[str]:
            return [w for w in jieba.lcut(text) if not w.isspace()]

    elif language in CHARACTER_LANGUAGES:

        def seg(text: str) -> list[str]:
            return [ch for ch in text if not ch.isspace()]

    else:
        seg = None
    _SEGMENTERS[language] = seg
    return seg


# -- per-document aggregation helpers --------------------------------------------------

def per_doc_sum(values, parents: np.ndarray, n_docs: int) -> np.ndarray:
    """Sum ``values`` (one per child) into their parent documents."""
    values = np.asarray(values, dtype=np.float64)
    return np.bincount(parents, weights=values, minlength=n_docs)[:n_docs]


def per_doc_count(mask, parents: np.ndarray, n_docs: int) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    return np.bincount(parents[mask], minlength=n_docs)[:n_docs].astype(np.int64)


def per_doc_max(values, parents: np.ndarray, n_docs: int) -> np.ndarray:
    out = np.zeros(n_docs, dtype=np.float64)
    if len(parents):
        np.maximum.at(out, parents, np.asarray(values, dtype=np.float64))
    return out


def safe_ratio(num, den) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def to_numpy(array) -> np.ndarray:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.to_numpy(zero_copy_only=False)


def as_bool_array(array) -> np.ndarray:
    return to_numpy(pc.fill_null(array, False)).astype(bool)


def list_lengths(array) -> np.ndarray:
    return to_numpy(pc.fill_null(pc.utf8_length(array), 0)).astype(np.int64)


# -- repetition of items ----------------------------------------------------------------

def duplicate_stats(items: pa.Array, parents: np.ndarray, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Per document: number of items that repeat an earlier one, and their characters."""
    if len(items) == 0:
        return np.zeros(n_docs, np.int64), np.zeros(n_docs)
    codes = to_numpy(pc.dictionary_encode(items).indices).astype(np.int64)
    dup = duplicate_items(codes, parents)
    return per_doc_count(dup, parents, n_docs), per_doc_sum(np.where(dup, list_lengths(items), 0), parents, n_docs)


# -- the shared, lazily computed view of a batch ------------------------------------------

@dataclass
class TextFeatures:
    """Lines, paragraphs and words of every document of a batch, computed once and shared.

    ``languages`` holds one normalised language code per document; it decides how words
    are split (see the module docstring).
    """

    text: pa.Array
    languages: list[str]

    @classmethod
    def from_batch(cls, batch: pa.Table, language_column: str = "language", default_language: str = "en"):
        text = batch.column("text").combine_chunks()
        text = pc.fill_null(text, "")
        if language_column in batch.column_names:
            raw = batch.column(language_column).to_pylist()
            langs = [normalize_language(v, default_language) for v in raw]
        else:
            langs = [default_language] * len(text)
        return cls(text, langs)

    @property
    def n(self) -> int:
        return len(self.text)

    @cached_property
    def chars(self) -> np.ndarray:
        return list_lengths(self.text)

    # lines -----------------------------------------------------------------------
    @cached_property
    def _line_lists(self) -> pa.ListArray:
        return pc.split_pattern(self.text, "\n")

    @cached_property
    def lines(self) -> pa.Array:
        """Every line of every document (split on ``\\n``, empty lines included)."""
        return self._line_lists.flatten()

    @cached_property
    def line_parents(self) -> np.ndarray:
        return to_numpy(pc.list_parent_indices(self._line_lists)).astype(np.int64)

    @cached_property
    def line_count(self) -> np.ndarray:
        return np.bincount(self.line_parents, minlength=self.n)[: self.n]

    @cached_property
    def lines_stripped(self) -> pa.Array:
        return pc.utf8_trim_whitespace(self.lines)

    @cached_property
    def line_nonempty(self) -> np.ndarray:
        return list_lengths(self.lines_stripped) > 0

    def lines_matching(self, pattern: str, stripped: bool = True) -> np.ndarray:
        return as_bool_array(pc.match_substring_regex(self.lines_stripped if stripped else self.lines, pattern))

    def line_ends_with(self, suffixes: tuple[str, ...], stripped: bool = True) -> np.ndarray:
        source = self.lines_stripped if stripped else self.lines
        mask = np.zeros(len(source), dtype=bool)
        for s in suffixes:
            mask |= as_bool_array(pc.ends_with(source, s))
        return mask

    # words -----------------------------------------------------------------------
    @cached_property
    def _line_tokens(self) -> pa.ListArray:
        """Tokens of every line: whitespace split, or the language's segmenter."""
        tokens = pc.utf8_split_whitespace(self.lines)
        special = [i for i, lang in enumerate(self.languages) if segmenter(lang) is not None]
        if not special:
            return tokens
        # replace the lines of documents in segmented languages by their segmenter's tokens
        line_doc = self.line_parents
        offsets = to_numpy(self._line_lists.offsets)
        take = np.arange(len(line_doc))
        extra = []
        for doc in special:
            seg = segmenter(self.languages[doc])
            start, end = offsets[doc], offsets[doc + 1]
            for li in range(start, end):
                take[li] = len(line_doc) + len(extra)
                extra.append(seg(self.lines[li].as_py()))
        combined = pa.concat_arrays([tokens, pa.array(extra, type=tokens.type)])
        return combined.take(pa.array(take))

    @cached_property
    def tokens(self) -> pa.Array:
        return self._line_tokens.flatten()

    @cached_property
    def token_line(self) -> np.ndarray:
        return to_numpy(pc.list_parent_indices(self._line_tokens)).astype(np.int64)

    @cached_property
    def token_parents(self) -> np.ndarray:
        return self.line_parents[self.token_line]

    @cached_property
    def token_count(self) -> np.ndarray:
        return np.bincount(self.token_parents, minlength=self.n)[: self.n]

    @cached_property
    def line_token_count(self) -> np.ndarray:
        return np.bincount(self.token_line, minlength=len(self.lines))[: len(self.lines)]

    @cached_property
    def token_cores(self) -> pa.Array:
        """Tokens without leading/trailing punctuation."""
        return pc.utf8_trim(self.tokens, characters=PUNCTUATION)

    @cached_property
    def token_is_word(self) -> np.ndarray:
        return list_lengths(self.token_cores) > 0

    @cached_property
    def word_count(self) -> np.ndarray:
        """Non-symbol words per document."""
        return per_doc_count(self.token_is_word, self.token_parents, self.n)

    @cached_property
    def word_lengths(self) -> np.ndarray:
        """Characters of each word's core (0 for symbol-only tokens)."""
        return list_lengths(self.token_cores)

    @cached_property
    def token_has_letter(self) -> np.ndarray:
        return as_bool_array(pc.match_substring_regex(self.tokens, r"\p{L}"))

    @cached_property
    def words_lower(self) -> pa.Array:
        """Lower-cased cores of the words only (symbol tokens dropped)."""
        return pc.utf8_lower(self.token_cores.filter(pa.array(self.token_is_word)))

    @cached_property
    def word_parents(self) -> np.ndarray:
        return self.token_parents[self.token_is_word]

    @cached_property
    def word_codes(self) -> np.ndarray:
        if len(self.words_lower) == 0:
            return np.zeros(0, np.int64)
        return to_numpy(pc.dictionary_encode(self.words_lower).indices).astype(np.int64)

    @cached_property
    def word_char_lengths(self) -> np.ndarray:
        return self.word_lengths[self.token_is_word]

    @cached_property
    def ngrams(self) -> NgramRepetition:
        """Top / duplicate n-gram characters over the lower-cased words (shared by all rules)."""
        return NgramRepetition(self.word_codes, self.word_char_lengths, self.word_parents, self.n)

    def stop_word_count(self) -> np.ndarray:
        """Distinct stop words of the document's language present; -1 where no list exists."""
        out = np.full(self.n, -1, dtype=np.int64)
        words = self.words_lower
        parents = self.word_parents
        doc_lang = np.array(self.languages, dtype=object)
        for lang in set(self.languages):
            docs = doc_lang == lang
            if lang not in STOP_WORDS:
                continue
            out[docs] = 0
            value_set = pa.array(sorted(STOP_WORDS[lang]))
            idx = to_numpy(pc.fill_null(pc.index_in(words, value_set=value_set), -1)).astype(np.int64)
            hit = (idx >= 0) & docs[parents] if len(parents) else np.zeros(0, bool)
            if not hit.any():
                continue
            keys = np.unique(parents[hit] * len(value_set) + idx[hit])
            counts = np.bincount(keys // len(value_set), minlength=self.n)[: self.n]
            out[docs] = counts[docs]
        return out

    # paragraphs ------------------------------------------------------------------
    @cached_property
    def _paragraph_lists(self) -> pa.ListArray:
        return pc.split_pattern_regex(pc.utf8_trim_whitespace(self.text), r"\n{2,}")

    @cached_property
    def paragraphs(self) -> pa.Array:
        return self._paragraph_lists.flatten()

    @cached_property
    def paragraph_parents(self) -> np.ndarray:
        return to_numpy(pc.list_parent_indices(self._paragraph_lists)).astype(np.int64)

    @cached_property
    def paragraph_count(self) -> np.ndarray:
        return np.bincount(self.paragraph_parents, minlength=self.n)[: self.n]

    def is_segmented(self) -> np.ndarray:
        """Documents whose words come from a segmenter or characters (no word-length rules)."""
        return np.array([segmenter(lang) is not None for lang in self.languages], dtype=bool)

    def count_regex(self, pattern: str) -> np.ndarray:
        return to_numpy(pc.count_substring_regex(self.text, pattern)).astype(np.int64)

    def count(self, literal: str) -> np.ndarray:
        return to_numpy(pc.count_substring(self.text, literal)).astype(np.int64)

    def matched_chars(self, pattern: str) -> np.ndarray:
        """Characters of the text matched by ``pattern`` (via removing the matches).

        Give run patterns (``x+``): one replacement per run is much cheaper than per character.
        """
        rest = list_lengths(pc.replace_substring_regex(self.text, pattern, ""))
        return self.chars - rest
