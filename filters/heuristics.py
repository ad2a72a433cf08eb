"""Heuristic quality annotators: one stage per rule family, and a ``heuristics`` preset stage.

Every stage writes its measured values and a ``<prefix>_pass`` flag; the thresholds are
the stage's parameters (stored with the run), so a different cut is a SQL ``WHERE`` on the
values, not a re-run. Defaults are the published thresholds of each source.

=================  ================  ==========================================================
stage              default prefix    source
=================  ================  ==========================================================
gopher_quality     ``gopher``        Gopher (Rae et al. 2021) quality rules
gopher_repetition  ``gopher_rep``    Gopher repetition rules (Table A1)
c4_quality         ``c4``            C4 line rules (Raffel et al. 2020)
fineweb_quality    ``fineweb``       FineWeb's own rules (Penedo et al. 2024)
common_rules       ``rules``         NeMo Curator's English cascade, used by Nemotron-CC
heuristics         (all of the above) presets ``gopher``, ``c4``, ``fineweb``, ``nemotron-cc``
=================  ================  ==========================================================
"""

from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from dataengine.core.stage import Stage, StageParams
from dataengine.filters import heuristic_rules as rules
from dataengine.filters.text_utils import TextFeatures

_INT_FIELDS = {"word_count", "stop_words", "kept_lines", "sentences", "common_words", "max_word_length"}


class HeuristicParams(StageParams):
    prefix: str = Field("", description="column prefix (default: the family's own)")
    language_column: str = Field("language", description="column with the document language (if present)")
    default_language: str = Field("en", description="language of documents without one")


class _HeuristicStage(Stage):
    """Shared plumbing: features -> rule function -> prefixed, typed columns."""

    inputs = ("text",)
    default_prefix: ClassVar[str] = ""
    rule: ClassVar[Callable]

    @property
    def prefix(self) -> str:
        return self.params.prefix or self.default_prefix

    def field_names(self) -> list[str]:
        """The rule's field names, found by running it once on a tiny probe (cached)."""
        names = self.__dict__.get("_field_names")
        if names is None:
            probe = TextFeatures(pa.array(["a b c.\n\nd e f."]), [self.params.default_language])
            names = self.__dict__["_field_names"] = list(self.rule(probe, self.params))
        return names

    def output_columns(self):
        cached = self.__dict__.get("_output_columns")
        if cached is not None:
            return cached
        out = {}
        for name in self.field_names():
            if name == "pass" or name in ("lorem_ipsum", "curly_bracket"):
                dtype = pa.bool_()
            elif name in _INT_FIELDS:
                dtype = pa.int32()
            else:
                dtype = pa.float32()
            out[f"{self.prefix}_{name}"] = dtype
        self.__dict__["_output_columns"] = out
        return out

    def compute(self, features: TextFeatures) -> dict[str, pa.Array]:
        types = self.output_columns()
        columns = {}
        for name, values in self.rule(features, self.params).items():
            col = f"{self.prefix}_{name}"
            values = np.asarray(values)
            mask = np.isnan(values) if values.dtype.kind == "f" else None
            columns[col] = pa.array(values, mask=mask).cast(types[col])
        return columns

    def process(self, batch: pa.Table) -> pa.Table:
        features = TextFeatures.from_batch(batch, self.params.language_column, self.params.default_language)
        return set_columns(batch, self.compute(features))


def set_columns(batch: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    """Add or replace columns (re-running a stage replaces its columns)."""
    for name, values in columns.items():
        if name in batch.column_names:
            batch = batch.set_column(batch.column_names.index(name), name, values)
        else:
            batch = batch.append_column(name, values)
    return batch


# -- the rule families -----------------------------------------------------------------

class GopherQuality(_HeuristicStage):
    """Gopher's quality rules: length, word length, symbols, bullets, ellipses, alpha words, stop words."""

    name = "gopher_quality"
    version = "1"
    description = "Gopher quality rules (value + gopher_pass)"
    default_prefix = "gopher"
    rule = staticmethod(rules.gopher_quality)

    class Params(HeuristicParams):
        min_doc_words: int | None = 50
        max_doc_words: int | None = 100_000
        min_avg_word_length: float | None = 3
        max_avg_word_length: float | None = 10
        max_symbol_word_ratio: float | None = 0.1
        max_bullet_lines_ratio: float | None = 0.9
        max_ellipsis_lines_ratio: float | None = 0.3
        min_alpha_words_ratio: float | None = 0.8
        min_stop_words: int | None = 2


def _ngram_dict(value):
    """YAML/CLI give mappings with string keys: {"2": 0.2}."""
    return {int(k): (None if v is None else float(v)) for k, v in dict(value).items()}


GOPHER_TOP_NGRAMS = {2: 0.20, 3: 0.18, 4: 0.16}
GOPHER_DUP_NGRAMS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


class GopherRepetition(_HeuristicStage):
    """Gopher's repetition rules: duplicate lines/paragraphs, top and duplicate n-grams."""

    name = "gopher_repetition"
    version = "1"
    description = "Gopher repetition rules (value + gopher_rep_pass)"
    default_prefix = "gopher_rep"
    rule = staticmethod(rules.gopher_repetition)

    class Params(HeuristicParams):
        dup_line_frac: float | None = 0.3
        dup_para_frac: float | None = 0.3
        dup_line_char_frac: float | None = 0.2
        dup_para_char_frac: float | None = 0.2
        top_n_grams: dict[int, float | None] = dict(GOPHER_TOP_NGRAMS)
        dup_n_grams: dict[int, float | None] = dict(GOPHER_DUP_NGRAMS)

        _ngrams = field_validator("top_n_grams", "dup_n_grams", mode="before")(classmethod(lambda cls, v: _ngram_dict(v)))


class C4Quality(_HeuristicStage):
    """C4's line rules: which lines C4 would keep, the sentence count, lorem ipsum and ``{``."""

    name = "c4_quality"
    version = "1"
    description = "C4 rules (kept lines, sentences, c4_pass)"
    default_prefix = "c4"
    rule = staticmethod(rules.c4_quality)

    class Params(HeuristicParams):
        remove_citations: bool = True
        filter_no_terminal_punct: bool = True
        min_num_sentences: int | None = 5
        min_words_per_line: int | None = 3
        max_word_length: int | None = 1000
        filter_lorem_ipsum: bool = True
        filter_javascript: bool = True
        filter_curly_bracket: bool = True
        filter_policy: bool = True


class FineWebQuality(_HeuristicStage):
    """FineWeb's rules: lines ending in punctuation, short lines, duplicated line chars, list-likeness."""

    name = "fineweb_quality"
    version = "1"
    description = "FineWeb quality rules (value + fineweb_pass)"
    default_prefix = "fineweb"
    rule = staticmethod(rules.fineweb_quality)

    class Params(HeuristicParams):
        line_punct_thr: float | None = 0.12
        line_punct_exclude_zero: bool = False
        stop_chars: list[str] | None = None
        short_line_thr: float | None = 0.67
        short_line_length: int = 30
        char_duplicates_ratio: float | None = 0.01
        new_line_ratio: float | None = 0.3


class CommonRules(_HeuristicStage):
    """The common ratio rules (NeMo Curator's English cascade, as used for Nemotron-CC)."""

    name = "common_rules"
    version = "1"
    description = "ratio rules: non-alnum, symbols, numbers, URLs, whitespace, repetition, word stats"
    default_prefix = "rules"
    rule = staticmethod(rules.common_rules)

    class Params(HeuristicParams):
        max_non_alnum_ratio: float | None = 0.25
        max_symbol_word_ratio: float | None = 0.1
        max_numbers_ratio: float | None = 0.15
        max_urls_ratio: float | None = 0.2
        max_whitespace_ratio: float | None = 0.25
        max_parentheses_ratio: float | None = 0.1
        max_boilerplate_ratio: float | None = 0.4
        boilerplate_at_top_or_bottom: bool = True
        # NeMo keeps a page when unique lines >= 70% (chars >= 80%): duplicates <= 30% (20%)
        max_dup_line_frac: float | None = 0.3
        max_dup_para_frac: float | None = 0.3
        max_dup_line_char_frac: float | None = 0.2
        max_dup_para_char_frac: float | None = 0.2
        min_words: int | None = 50
        max_words: int | None = 100_000
        max_no_end_mark_ratio: float | None = 0.85
        min_alpha_words_ratio: float | None = 0.8
        min_common_words: int | None = 2
        min_mean_word_length: float | None = 3
        max_mean_word_length: float | None = 10
        max_word_length: int | None = 1000
        max_ellipsis_lines_ratio: float | None = 0.3
        max_bullet_lines_ratio: float | None = 0.9
        top_n_grams: dict[int, float | None] = dict(GOPHER_TOP_NGRAMS)
        dup_n_grams: dict[int, float | None] = dict(GOPHER_DUP_NGRAMS)

        _ngrams = field_validator("top_n_grams", "dup_n_grams", mode="before")(classmethod(lambda cls, v: _ngram_dict(v)))


# -- presets ---------------------------------------------------------------------------

#: preset -> the family stages (name, params) it runs. Published thresholds are the
#: families' defaults; FineWeb runs C4 without the terminal-punctuation line rule.
PRESETS: dict[str, list[tuple[str, dict]]] = {
    "gopher": [("gopher_quality", {}), ("gopher_repetition", {})],
    "c4": [("c4_quality", {})],
    "fineweb": [
        ("gopher_repetition", {}),
        ("gopher_quality", {}),
        ("c4_quality", {"prefix": "fineweb_c4", "filter_no_terminal_punct": False}),
        ("fineweb_quality", {}),
    ],
    "nemotron-cc": [("common_rules", {})],
}

_FAMILIES = {cls.name: cls for cls in (GopherQuality, GopherRepetition, C4Quality, FineWebQuality, CommonRules)}


def preset_pass_column(preset: str) -> str:
    return "heuristics_" + preset.replace("-", "_") + "_pass"


class Heuristics(Stage):
    """Several presets in one stage: the text is split into lines and words once, for all rules."""

    name = "heuristics"
    version = "1"
    description = "heuristic presets (gopher, c4, fineweb, nemotron-cc) sharing one text analysis"
    inputs = ("text",)

    class Params(StageParams):
        presets: list[str] = ["gopher", "c4", "fineweb", "nemotron-cc"]
        language_column: str = "language"
        default_language: str = "en"

        @field_validator("presets", mode="before")
        @classmethod
        def _known(cls, value):
            value = [value] if isinstance(value, str) else list(value)
            unknown = [v for v in value if v not in PRESETS]
            if unknown:
                raise ValueError(f"unknown preset(s) {unknown}; known: {sorted(PRESETS)}")
            return value

    def __init__(self, params=None):
        super().__init__(params)
        self.families: list[_HeuristicStage] = []
        self.members: dict[str, list[str]] = {}
        seen: dict[str, _HeuristicStage] = {}
        common = {"language_column": self.params.language_column, "default_language": self.params.default_language}
        for preset in self.params.presets:
            passes = []
            for stage_name, extra in PRESETS[preset]:
                stage = _FAMILIES[stage_name]({**extra, **common})
                key = f"{stage_name}:{stage.params.model_dump_json()}"
                stage = seen.setdefault(key, stage)
                if stage not in self.families:
                    self.families.append(stage)
                passes.append(f"{stage.prefix}_pass")
            self.members[preset] = passes

    def __setstate__(self, state):
        self.__init__(state["params"])

    def output_columns(self):
        out = {}
        for stage in self.families:
            out.update(stage.output_columns())
        for preset in self.params.presets:
            out[preset_pass_column(preset)] = pa.bool_()
        return out

    def process(self, batch: pa.Table) -> pa.Table:
        features = TextFeatures.from_batch(batch, self.params.language_column, self.params.default_language)
        columns: dict[str, pa.Array] = {}
        for stage in self.families:
            columns.update(stage.compute(features))
        for preset, passes in self.members.items():
            ok = np.ones(batch.num_rows, dtype=bool)
            for col in passes:
                ok &= columns[col].to_numpy(zero_copy_only=False).astype(bool)
            columns[preset_pass_column(preset)] = pa.array(ok)
        return set_columns(batch, columns)
