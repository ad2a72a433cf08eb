"""The heuristic rule families as functions of :class:`TextFeatures` and their thresholds.

Each family returns its measured values and one pass flag, as numpy arrays keyed by
field name (the stage adds the column prefix). A threshold of ``None`` disables that
check; the value is still measured. Sources of the rules and defaults:

* Gopher quality and repetition: Rae et al. 2021, "Scaling Language Models", Table A1
  (datatrove's ``GopherQualityFilter`` / ``GopherRepetitionFilter`` for the details).
* C4: Raffel et al. 2020, and the TFDS ``c4_utils`` line rules (datatrove ``C4QualityFilter``).
* FineWeb: Penedo et al. 2024 (datatrove ``FineWebQualityFilter``).
* Common ratio rules (Nemotron-CC): NeMo Curator's English heuristic filter cascade,
  which the Nemotron-CC pipeline uses.
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from dataengine.filters.text_utils import (
    TERMINAL_PUNCTUATION,
    TextFeatures,
    as_bool_array,
    list_lengths,
    duplicate_stats,
    per_doc_count,
    per_doc_max,
    per_doc_sum,
    safe_ratio,
    to_numpy,
)

BULLETS_GOPHER = ("•", "-")
BULLETS_NEMO = ("●", "•", "*", "-")
ELLIPSES = ("...", "…")
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
URL_PATTERN = r"(?i)\b(?:https?://|www\.)[^\s<>\"']+"
CITATION_PATTERN = r"\[\d*\]|\[edit\]|\[citation needed\]"
# Latin sentence ends need a following space (not "3.5"); CJK full stops do not.
SENTENCE_END_PATTERN = r"[.!?]+[\"'\x{201D}\x{2019}]*(?:\s|$)|[\x{3002}\x{FF01}\x{FF1F}]+[\x{300D}\x{300F}]*"


def _within(value, low, high) -> np.ndarray:
    ok = np.ones(len(value), dtype=bool)
    if low is not None:
        ok &= value >= low
    if high is not None:
        ok &= value <= high
    return ok


def _line_ratio(f: TextFeatures, mask: np.ndarray, lines: np.ndarray | None = None) -> np.ndarray:
    """Fraction of a document's lines (all, or those in ``lines``) where ``mask`` holds."""
    keep = np.ones(len(mask), bool) if lines is None else lines
    hits = per_doc_count(mask & keep, f.line_parents, f.n)
    total = per_doc_count(keep, f.line_parents, f.n)
    return safe_ratio(hits, total)


def _starts_with_any(f: TextFeatures, prefixes) -> np.ndarray:
    mask = np.zeros(len(f.lines), dtype=bool)
    for p in prefixes:
        mask |= as_bool_array(pc.starts_with(f.lines_stripped, p))
    return mask


def _ngram_fractions(f: TextFeatures, top_n: dict[int, float | None], dup_n: dict[int, float | None]):
    values, ok = {}, np.ones(f.n, dtype=bool)
    for n, limit in top_n.items():
        frac = safe_ratio(f.ngrams.top(n), f.chars)
        values[f"top_{n}gram_frac"] = frac
        ok &= _within(frac, None, limit)
    for n, limit in dup_n.items():
        frac = safe_ratio(f.ngrams.duplicate(n), f.chars)
        values[f"dup_{n}gram_frac"] = frac
        ok &= _within(frac, None, limit)
    return values, ok


def _mean_word_length(f: TextFeatures) -> np.ndarray:
    total = per_doc_sum(f.word_lengths, f.token_parents, f.n)
    return safe_ratio(total, f.word_count)


# -- Gopher --------------------------------------------------------------------------

def gopher_quality(f: TextFeatures, p) -> dict[str, np.ndarray]:
    words = f.word_count
    tokens = f.token_count
    mean_len = _mean_word_length(f)
    hash_ratio = safe_ratio(f.count("#"), tokens)
    ellipsis_ratio = safe_ratio(f.count("...") + f.count("…"), tokens)
    bullet = _line_ratio(f, _starts_with_any(f, BULLETS_GOPHER))
    ellipsis_lines = _line_ratio(f, f.line_ends_with(ELLIPSES))
    alpha = safe_ratio(per_doc_count(f.token_has_letter, f.token_parents, f.n), tokens)
    stops = f.stop_word_count()
    ok = _within(words, p.min_doc_words, p.max_doc_words)
    # word length means little for segmented scripts (one kanji can be a word)
    ok &= _within(mean_len, p.min_avg_word_length, p.max_avg_word_length) | f.is_segmented()
    ok &= _within(hash_ratio, None, p.max_symbol_word_ratio)
    ok &= _within(ellipsis_ratio, None, p.max_symbol_word_ratio)
    ok &= _within(bullet, None, p.max_bullet_lines_ratio)
    ok &= _within(ellipsis_lines, None, p.max_ellipsis_lines_ratio)
    ok &= _within(alpha, p.min_alpha_words_ratio, None)
    if p.min_stop_words is not None:
        ok &= (stops < 0) | (stops >= p.min_stop_words)  # no list for the language: not judged
    ok &= tokens > 0
    return {
        "word_count": words,
        "mean_word_length": mean_len,
        "hash_ratio": hash_ratio,
        "ellipsis_ratio": ellipsis_ratio,
        "bullet_lines_ratio": bullet,
        "ellipsis_lines_ratio": ellipsis_lines,
        "alpha_words_ratio": alpha,
        "stop_words": np.where(stops < 0, np.nan, stops),
        "pass": ok,
    }


def gopher_repetition(f: TextFeatures, p) -> dict[str, np.ndarray]:
    chars = f.chars
    para_dups, para_dup_chars = duplicate_stats(f.paragraphs, f.paragraph_parents, f.n)
    nonempty = list_lengths(f.lines) > 0  # Gopher splits lines on \n+ (whitespace-only lines count)
    lines = f.lines.filter(nonempty)
    line_parents = f.line_parents[nonempty]
    line_dups, line_dup_chars = duplicate_stats(lines, line_parents, f.n)
    n_lines = np.bincount(line_parents, minlength=f.n)[: f.n]
    values = {
        "dup_para_frac": safe_ratio(para_dups, f.paragraph_count),
        "dup_para_char_frac": safe_ratio(para_dup_chars, chars),
        "dup_line_frac": safe_ratio(line_dups, n_lines),
        "dup_line_char_frac": safe_ratio(line_dup_chars, chars),
    }
    ok = chars > 0
    ok &= _within(values["dup_para_frac"], None, p.dup_para_frac)
    ok &= _within(values["dup_para_char_frac"], None, p.dup_para_char_frac)
    ok &= _within(values["dup_line_frac"], None, p.dup_line_frac)
    ok &= _within(values["dup_line_char_frac"], None, p.dup_line_char_frac)
    ngrams, ngram_ok = _ngram_fractions(f, p.top_n_grams, p.dup_n_grams)
    values.update(ngrams)
    values["pass"] = ok & ngram_ok
    return values


# -- C4 ------------------------------------------------------------------------------

def c4_quality(f: TextFeatures, p) -> dict[str, np.ndarray]:
    """C4's line rules: which lines C4 keeps, and whether the page survives."""
    line = f.lines_stripped
    keep = np.ones(len(line), dtype=bool)
    if p.max_word_length is not None:
        longest = per_doc_max(f.word_lengths, f.token_line, len(line)) if len(f.token_line) else np.zeros(len(line))
        keep &= longest <= p.max_word_length
    if p.remove_citations:
        line = pc.replace_substring_regex(line, CITATION_PATTERN, "")
    if p.filter_no_terminal_punct:
        ends = np.zeros(len(line), dtype=bool)
        for s in TERMINAL_PUNCTUATION:
            ends |= as_bool_array(pc.ends_with(line, s))
        keep &= ends & ~as_bool_array(pc.ends_with(line, "..."))
    if p.min_words_per_line is not None:
        keep &= f.line_token_count >= p.min_words_per_line
    lower = pc.utf8_lower(line)
    lorem = as_bool_array(pc.match_substring(lower, "lorem ipsum")) & keep if p.filter_lorem_ipsum else np.zeros(len(line), bool)
    if p.filter_javascript:
        keep &= ~as_bool_array(pc.match_substring(lower, "javascript"))
    curly = as_bool_array(pc.match_substring(line, "{")) & keep if p.filter_curly_bracket else np.zeros(len(line), bool)
    if p.filter_policy:
        for phrase in POLICY_PHRASES:
            keep &= ~as_bool_array(pc.match_substring(lower, phrase))
    keep &= list_lengths(line) > 0
    sentences = np.maximum(to_numpy(pc.count_substring_regex(line, SENTENCE_END_PATTERN)).astype(np.int64), 1)
    n_sent = per_doc_sum(np.where(keep, sentences, 0), f.line_parents, f.n).astype(np.int64)
    kept = per_doc_count(keep, f.line_parents, f.n)
    has_lorem = per_doc_count(lorem, f.line_parents, f.n) > 0
    has_curly = per_doc_count(curly, f.line_parents, f.n) > 0
    ok = ~has_lorem & ~has_curly
    if p.min_num_sentences is not None:
        ok &= n_sent >= p.min_num_sentences
    return {
        "kept_lines": kept,
        "kept_lines_ratio": safe_ratio(kept, f.line_count),
        "sentences": n_sent,
        "lorem_ipsum": has_lorem,
        "curly_bracket": has_curly,
        "pass": ok,
    }


# -- FineWeb -------------------------------------------------------------------------

def fineweb_quality(f: TextFeatures, p) -> dict[str, np.ndarray]:
    nonempty = f.line_nonempty
    lines = f.lines
    ends = f.line_ends_with(tuple(p.stop_chars), stripped=False) if p.stop_chars else f.line_ends_with(TERMINAL_PUNCTUATION, stripped=False)
    punct = _line_ratio(f, ends, nonempty)
    short = _line_ratio(f, list_lengths(lines) <= p.short_line_length, nonempty)
    _, dup_chars = duplicate_stats(lines.filter(nonempty), f.line_parents[nonempty], f.n)
    char_dup = safe_ratio(dup_chars, f.chars - f.count("\n"))
    list_ratio = safe_ratio(f.count("\n"), f.token_count)
    has_lines = per_doc_count(nonempty, f.line_parents, f.n) > 0
    ok = has_lines & (f.token_count > 0)
    if p.line_punct_thr is not None:
        ok &= (punct >= p.line_punct_thr) | ((punct == 0) & p.line_punct_exclude_zero)
    ok &= _within(short, None, p.short_line_thr)
    ok &= _within(char_dup, None, p.char_duplicates_ratio)
    ok &= _within(list_ratio, None, p.new_line_ratio)
    return {
        "line_punct_ratio": punct,
        "short_line_ratio": short,
        "char_dup_ratio": char_dup,
        "list_ratio": list_ratio,
        "pass": ok,
    }


# -- common ratio rules (NeMo Curator / Nemotron-CC) ----------------------------------

def common_rules(f: TextFeatures, p) -> dict[str, np.ndarray]:
    chars = f.chars
    tokens = f.token_count
    alnum = f.matched_chars(r"[\p{L}\p{N}]+")
    lines_lower = pc.utf8_lower(f.lines_stripped)
    boiler = np.zeros(len(f.lines), dtype=bool)
    for phrase in POLICY_PHRASES:
        boiler |= as_bool_array(pc.match_substring(lines_lower, phrase))
    offsets = f._line_lists.offsets.to_numpy()
    has_lines = offsets[1:] > offsets[:-1]
    first = np.where(has_lines, boiler[np.minimum(offsets[:-1], max(len(boiler) - 1, 0))] if len(boiler) else False, False)
    last = np.where(has_lines, boiler[np.maximum(offsets[1:] - 1, 0)] if len(boiler) else False, False)
    nonempty = f.line_nonempty  # blank lines between paragraphs are neither duplicates nor sentences
    end_marks = f.line_ends_with(TERMINAL_PUNCTUATION)
    line_dups, line_dup_chars = duplicate_stats(f.lines.filter(nonempty), f.line_parents[nonempty], f.n)
    n_lines = per_doc_count(nonempty, f.line_parents, f.n)
    para_dups, para_dup_chars = duplicate_stats(f.paragraphs, f.paragraph_parents, f.n)
    line_chars = per_doc_sum(list_lengths(f.lines), f.line_parents, f.n)  # blank lines add no characters
    para_chars = per_doc_sum(list_lengths(f.paragraphs), f.paragraph_parents, f.n)
    values = {
        "non_alnum_ratio": safe_ratio(chars - alnum, chars),
        "symbol_word_ratio": safe_ratio(f.count("#") + f.count("...") + f.count("…"), tokens),
        "numbers_ratio": safe_ratio(f.matched_chars(r"\p{N}+"), chars),
        "urls_ratio": safe_ratio(f.matched_chars(URL_PATTERN), chars),
        "whitespace_ratio": safe_ratio(f.matched_chars(r"\s+"), chars),
        "parentheses_ratio": safe_ratio(f.matched_chars(r"[()\[\]]+"), chars),
        "boilerplate_lines_ratio": safe_ratio(per_doc_count(boiler, f.line_parents, f.n), f.line_count),
        "dup_line_frac": safe_ratio(line_dups, n_lines),
        "dup_para_frac": safe_ratio(para_dups, f.paragraph_count),
        "dup_line_char_frac": safe_ratio(line_dup_chars, line_chars),
        "dup_para_char_frac": safe_ratio(para_dup_chars, para_chars),
        "word_count": f.word_count,
        "no_end_mark_ratio": _line_ratio(f, ~end_marks, nonempty),
        "alpha_words_ratio": safe_ratio(per_doc_count(f.token_has_letter, f.token_parents, f.n), tokens),
        "common_words": f.stop_word_count().astype(np.float64),
        "mean_word_length": _mean_word_length(f),
        "max_word_length": per_doc_max(f.word_lengths, f.token_parents, f.n),
        "ellipsis_lines_ratio": _line_ratio(f, f.line_ends_with(ELLIPSES), nonempty),
        "bullet_lines_ratio": _line_ratio(f, _starts_with_any(f, BULLETS_NEMO), nonempty),
    }
    ok = (chars > 0) & (tokens > 0)
    ok &= _within(values["non_alnum_ratio"], None, p.max_non_alnum_ratio)
    ok &= _within(values["symbol_word_ratio"], None, p.max_symbol_word_ratio)
    ok &= _within(values["numbers_ratio"], None, p.max_numbers_ratio)
    ok &= _within(values["urls_ratio"], None, p.max_urls_ratio)
    ok &= _within(values["whitespace_ratio"], None, p.max_whitespace_ratio)
    ok &= _within(values["parentheses_ratio"], None, p.max_parentheses_ratio)
    if p.max_boilerplate_ratio is not None:
        ok &= values["boilerplate_lines_ratio"] <= p.max_boilerplate_ratio
        if p.boilerplate_at_top_or_bottom:
            ok &= ~(first | last)
    ok &= _within(values["dup_line_frac"], None, p.max_dup_line_frac)
    ok &= _within(values["dup_para_frac"], None, p.max_dup_para_frac)
    ok &= _within(values["dup_line_char_frac"], None, p.max_dup_line_char_frac)
    ok &= _within(values["dup_para_char_frac"], None, p.max_dup_para_char_frac)
    ok &= _within(values["word_count"], p.min_words, p.max_words)
    ok &= _within(values["no_end_mark_ratio"], None, p.max_no_end_mark_ratio)
    ok &= _within(values["alpha_words_ratio"], p.min_alpha_words_ratio, None)
    if p.min_common_words is not None:
        cw = values["common_words"]
        ok &= (cw < 0) | (cw >= p.min_common_words)
    ok &= _within(values["mean_word_length"], p.min_mean_word_length, p.max_mean_word_length) | f.is_segmented()
    ok &= _within(values["max_word_length"], None, p.max_word_length)
    ok &= _within(values["ellipsis_lines_ratio"], None, p.max_ellipsis_lines_ratio)
    ok &= _within(values["bullet_lines_ratio"], None, p.max_bullet_lines_ratio)
    values["common_words"] = np.where(values["common_words"] < 0, np.nan, values["common_words"])
    ngrams, ngram_ok = _ngram_fractions(f, p.top_n_grams, p.dup_n_grams)
    values.update(ngrams)
    values["pass"] = ok & ngram_ok
    return values

