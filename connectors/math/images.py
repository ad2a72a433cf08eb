"""Formula images whose URL or alt text carries the TeX: CodeCogs, Wikimedia, WordPress, ...

Only images that are known formula renderers, or whose class says math/tex/latex and whose
alt text looks like TeX, count: an arbitrary alt text is not an equation.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

from dataengine.connectors.math.dom import classes, replace_with_text
from dataengine.connectors.math.equations import EquationSink
from dataengine.connectors.math.forms import unwrap_style

_CODECOGS = re.compile(r"latex\.codecogs\.com/[a-z]+(?:\.(?:latex|image|download))?\?(.+)$", re.I)
_CGI_TEX = re.compile(r"/(?:mathtex|mimetex)\.cgi\?(.+)$", re.I)
_WIKIMEDIA = re.compile(r"wikimedia\.org/api/rest_v1/media/math/render", re.I)
# CodeCogs options written before the formula: \dpi{150}, \bg_white, \inline, \large, ...
_RENDER_OPTIONS = re.compile(
    r"^(?:\s*\\(?:dpi\{\d+\}|bg_\w+|bg\{\w+\}|fg_\w+|inline|tiny|small|normalsize|large|Large|LARGE|huge|Huge"
    r"|fn_\w+|png|gif|svg))+\s*"
)
_LOOKS_LIKE_TEX = re.compile(r"\\[A-Za-z]+|[\^_]\{|[\^_][A-Za-z0-9]")
_MATH_CLASS = re.compile(r"\b(?:tex|latex|math|equation|formula)\b", re.I)


def tex_from_image(src: str, alt: str, css_classes: list[str]) -> str | None:
    """The TeX an <img> stands for, or None when it is not a formula image."""
    src = src or ""
    match = _CODECOGS.search(src) or _CGI_TEX.search(src)
    if match:
        return _RENDER_OPTIONS.sub("", unquote(match.group(1))).strip() or None
    parts = urlsplit(src)
    query = parse_qs(parts.query)
    if parts.path.endswith("latex.php") and "latex" in query:  # WordPress.com
        return query["latex"][0].strip() or None  # parse_qs has decoded it already
    if "chart" in parts.path and query.get("cht") == ["tx"] and "chl" in query:  # Google Chart TeX
        return query["chl"][0].strip() or None
    wiki = _WIKIMEDIA.search(src) or any(c.startswith("mwe-math-fallback-image") for c in css_classes)
    if alt and (wiki or (any(_MATH_CLASS.search(c) for c in css_classes) and _LOOKS_LIKE_TEX.search(alt))):
        return unwrap_style(alt.strip().strip("$").strip())
    return None


def formula_images(root, sink: EquationSink) -> None:
    for img in list(root.iter("img")):
        css = classes(img)
        tex = tex_from_image(img.get("src") or img.get("data-src") or "", img.get("alt") or "", css)
        if not tex:
            continue
        display = any("display" in c for c in css)
        replace_with_text(img, sink.add(tex, display, "image"), display)
