"""Target languages of translation: name, culture, and the expected length of a translation.

``expansion`` is the usual length in characters of a text in the language relative to the
same text in English, from software-localisation practice (German and the Romance
languages run ~15-25% longer than English; Chinese about a third as long, Japanese and
Korean under half). A translation whose length ratio is far outside ``expansion`` scaled
by the source language's own factor is likely truncated, padded or not a translation.
These are rough centres, not measurements on our data: ``translation_quality`` takes
per-language ranges that override them (``length_ranges``) and a tolerance factor.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataengine.core.errors import PipelineConfigError


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    culture: str  # who the adaptation step writes for
    expansion: float  # characters per English character


_TABLE = [
    ("ar", "Arabic", "the Arab world (the Gulf states, Egypt, the Levant and the Maghreb)", 0.95),
    ("bn", "Bengali", "Bangladesh and West Bengal (India)", 1.0),
    ("cs", "Czech", "the Czech Republic", 1.05),
    ("da", "Danish", "Denmark", 1.05),
    ("de", "German", "Germany, Austria and Switzerland", 1.2),
    ("el", "Greek", "Greece and Cyprus", 1.2),
    ("en", "English", "the United States and the United Kingdom", 1.0),
    ("es", "Spanish", "Spain and Latin America", 1.2),
    ("fa", "Persian", "Iran", 0.95),
    ("fi", "Finnish", "Finland", 1.1),
    ("fr", "French", "France, Belgium, Switzerland and Quebec", 1.2),
    ("he", "Hebrew", "Israel", 0.85),
    ("hi", "Hindi", "India", 1.05),
    ("hu", "Hungarian", "Hungary", 1.15),
    ("id", "Indonesian", "Indonesia", 1.15),
    ("it", "Italian", "Italy", 1.15),
    ("ja", "Japanese", "Japan", 0.45),
    ("ko", "Korean", "South Korea", 0.45),
    ("ms", "Malay", "Malaysia", 1.15),
    ("nl", "Dutch", "the Netherlands and Flanders", 1.15),
    ("no", "Norwegian", "Norway", 1.05),
    ("pl", "Polish", "Poland", 1.15),
    ("pt", "Portuguese", "Brazil and Portugal", 1.2),
    ("ro", "Romanian", "Romania and Moldova", 1.15),
    ("ru", "Russian", "Russia", 1.15),
    ("sv", "Swedish", "Sweden", 1.05),
    ("sw", "Swahili", "East Africa (Kenya, Tanzania)", 1.1),
    ("ta", "Tamil", "Tamil Nadu (India) and Sri Lanka", 1.25),
    ("th", "Thai", "Thailand", 1.0),
    ("tr", "Turkish", "Turkey", 1.1),
    ("uk", "Ukrainian", "Ukraine", 1.1),
    ("ur", "Urdu", "Pakistan", 0.95),
    ("vi", "Vietnamese", "Vietnam", 1.15),
    ("zh", "Chinese", "mainland China", 0.33),
]

LANGUAGES: dict[str, Language] = {code: Language(code, name, culture, exp) for code, name, culture, exp in _TABLE}


def base_code(code: str) -> str:
    """``zh-Hans`` / ``pt_BR`` -> ``zh`` / ``pt`` (what language id models report)."""
    return code.replace("_", "-").split("-")[0].lower()


def language(code: str) -> Language:
    """The table entry for ``code`` (region suffixes allowed); a clear error for an unknown one."""
    found = LANGUAGES.get(base_code(code))
    if found is None:
        raise PipelineConfigError(f"unknown language {code!r}; known: {', '.join(sorted(LANGUAGES))}")
    return found


def parse_languages(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"ar,de, es"`` or a list -> checked, de-duplicated codes in the given order."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    codes = list(dict.fromkeys(c.strip() for c in items if c and c.strip()))
    if not codes:
        raise PipelineConfigError("no target languages given (e.g. --languages de,fr)")
    for code in codes:
        language(code)
    return codes


def expected_length_range(source: str, target: str, tolerance: float,
                          overrides: dict[str, tuple[float, float]] | None = None) -> tuple[float, float]:
    """The (low, high) target/source character ratio accepted for a translation."""
    if overrides and target in overrides:
        low, high = overrides[target]
        return float(low), float(high)
    centre = language(target).expansion / language(source).expansion
    return centre / tolerance, centre * tolerance
