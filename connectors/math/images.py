"""Formula images whose URL or alt text carries the TeX: CodeCogs, Wikimedia, WordPress, ...

Only images that are known formula renderers, or whose class says math/tex/latex and whose
alt text looks like TeX, count: an arbitrary alt text is not an equation.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, unquote, urlsplit

from dataengine.connectors.math.dom import classes, replace_with_text
from dataengine.connectors.math.equations import EquationSink
from dataengine.connectors.math.forms import unwrap_style

_CODECOGS = re.compile(r"latex\.codecogs\.com/[a-z]+(?:\.(?:latex|image|download))?\?(.+)$", re.I)
_CGI_TEX = re.compile(r"/(?:mathtex|mimetex)\.cgi\?(.+)$", re.I)
# the TeX is the URL path: upmath.me and its mirrors (/svg/<tex>, /png/<tex>)
_PATH_TEX = re.compile(r"(?:upmath\.me|tex\.s2cms\.ru)/(?:svg|png|gif)/(.+)$", re.I)
# CodeCogs' editor escapes characters of the formula as pseudo-entities in its URLs
_CODECOGS_ENTITIES = {"&space;": " ", "&plus;": "+", "&hash;": "#", "&amp;": "&"}
_WIKIMEDIA = re.compile(r"wikimedia\.org/api/rest_v1/media/math/render", re.I)
# CodeCogs options written before the formula: \dpi{150}, \bg_white, \inline, \large, ...
_RENDER_OPTIONS = re.compile(
    r"^(?:\s*\\(?:dpi\{\d+\}|bg_\w+|bg\{\w+\}|fg_\w+|inline|tiny|small|normalsize|large|Large|LARGE|huge|Huge"
    r"|fn_\w+|png|gif|svg|textstyle|displaystyle)(?![A-Za-z]))+\s*"
)
_DISPLAY_OPTION = re.compile(r"^\s*(?:\\\w+(?:\{\w+\})?\s*)*?\\displaystyle(?![A-Za-z])")
_LOOKS_LIKE_TEX = re.compile(r"\\[A-Za-z]+|[\^_]\{|[\^_][A-Za-z0-9]")
_MATH_CLASS = re.compile(r"\b(?:tex|latex|math|equation|formula)\b", re.I)


def url_tex(escaped: str) -> str:
    """TeX written into a URL: percent-escapes and CodeCogs' ``&space;``-style escapes undone."""
    tex = unquote(escaped)
    for entity, char in _CODECOGS_ENTITIES.items():
        tex = tex.replace(entity, char)
    return html.unescape(tex) if "&" in tex else tex


def image_formula(src: str, alt: str, css_classes: list[str]) -> tuple[str, bool] | None:
    """(TeX, display) for a formula <img>, or None when it is not one.

    Display comes from the image's class or a ``\\displaystyle`` render option in the URL
    (pandoc --webtex writes ``\\textstyle`` / ``\\displaystyle`` before the formula).
    """
    src = src or ""
    display = any("display" in c for c in css_classes)
    match = _CODECOGS.search(src) or _CGI_TEX.search(src) or _PATH_TEX.search(src)
    if match:
        tex = url_tex(match.group(1))
        display = display or bool(_DISPLAY_OPTION.match(tex))
        tex = _RENDER_OPTIONS.sub("", tex).strip()
        return (tex, display) if tex else None
    tex = tex_from_image(src, alt, css_classes)
    return (tex, display) if tex else None


def tex_from_image(src: str, alt: str, css_classes: list[str]) -> str | None:
    """The TeX an <img> stands for, or None when it is not a formula image."""
    src = src or ""
    match = _CODECOGS.search(src) or _CGI_TEX.search(src) or _PATH_TEX.search(src)
    if match:
        return _RENDER_OPTIONS.sub("", url_tex(match.group(1))).strip() or None
    parts = urlsplit(src)
    query = parse_qs(parts.query)
    if parts.path.endswith("latex.php") and "latex" in query:  # WordPress.com
        return query["latex"][0].strip() or None  # parse_qs has decoded it already
    if "chart" in parts.path and query.get("cht") == ["tx"] and "chl" in query:  # Google Chart TeX
        return query["chl"][0].strip() or None
    if parts.netloc.endswith("githubusercontent.com") and parts.path.endswith("/render/math") and "math" in query:
        return query["math"][0].strip() or None
    wiki = _WIKIMEDIA.search(src) or any(c.startswith("mwe-math-fallback-image") for c in css_classes)
    if alt and (wiki or (any(_MATH_CLASS.search(c) for c in css_classes) and _LOOKS_LIKE_TEX.search(alt))):
        return unwrap_style(alt.strip().strip("$").strip())
    return None


def formula_images(root, sink: EquationSink) -> None:
    for img in list(root.iter("img")):
        found = image_formula(img.get("src") or img.get("data-src") or "", img.get("alt") or "", classes(img))
        if found is None:
            continue
        tex, display = found
        replace_with_text(img, sink.add(tex, display, "image"), display)
