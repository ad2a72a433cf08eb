"""Small lxml helpers shared by the math detectors and the renderer."""

from __future__ import annotations

import re

from lxml import etree, html as lxml_html

# MathML empty elements written as <x/>: the HTML parser does not know them and would
# nest every following sibling inside them.
_SELF_CLOSING = re.compile(r"<(mspace|none|mprescripts|maligngroup|malignmark|mglyph)(\s[^<>]*?)?/>", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_NOT_CONTENT = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object", "embed",
                "canvas", "button", "input", "select", "textarea", "option", "img", "video", "audio", "map",
                "link", "meta")


DISPLAY_CLASS = "dataengine-display-math"


def inline_display_blocks(root) -> None:
    """Turn display-math paragraphs back into text in their parent paragraph.

    A <p> nested in a <p> is fine for the layout renderers, but trafilatura drops the text
    that follows it; for main-content extraction the $$...$$ stays inline.
    """
    for block in list(root.iter("p")):
        if block.get("class") == DISPLAY_CLASS and block.getparent() is not None:
            replace_with_text(block, f" {block.text or ''} ", display=False)


def parse_page(html: str):
    """The page as an lxml.html document (MathML empty elements closed first)."""
    if html.lstrip().startswith("<?xml"):  # XHTML (LaTeXML): lxml refuses str with an encoding declaration
        html = _XML_DECLARATION.sub("", html, count=1)
    if "/>" in html:
        html = _SELF_CLOSING.sub(lambda m: f"<{m.group(1)}{m.group(2) or ''}></{m.group(1)}>", html)
    return lxml_html.document_fromstring(html)


def classes(el) -> list[str]:
    value = el.get("class")
    return value.split() if value else []


def replace_with_text(el, text: str, display: bool) -> None:
    """Put ``text`` where ``el`` was (its own paragraph when ``display``), keeping el's tail."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail or ""
    if display:
        block = lxml_html.Element("p", {"class": DISPLAY_CLASS})
        block.text = text
        block.tail = tail
        parent.replace(el, block)
        return
    previous = el.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + text + tail
    else:
        parent.text = (parent.text or "") + text + tail
    parent.remove(el)


def remove_keep_tail(el) -> None:
    """Drop an element but not the text that follows it."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    if tail:
        previous = el.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


def strip_non_content(root) -> None:
    """Remove elements that carry no readable text (scripts, styles, media, form controls)."""
    for el in list(root.iter(*_NOT_CONTENT)):
        remove_keep_tail(el)
    for el in list(root.iter(etree.Comment, etree.ProcessingInstruction)):
        remove_keep_tail(el)


def body_of(doc):
    body = doc.find("body")
    return body if body is not None else doc
