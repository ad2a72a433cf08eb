"""The resiliparse depth guard: the cheap two-step check gives the same answer as one long chain."""

from __future__ import annotations

import pytest
from resiliparse.parse.html import HTMLTree

from dataengine.connectors.extract import TooDeep
from dataengine.connectors.extractors import ResiliparseExtractor, _child_chain


def _nested(levels: int) -> str:
    # html (depth 1) > body (2) > div ... : the innermost div is at depth levels + 2
    return "<html><body>" + "<div>" * levels + "deep text" + "</div>" * levels + "</body></html>"


@pytest.mark.parametrize("max_depth", [12, 100, 101, 1000])
def test_two_step_guard_agrees_with_the_full_chain(max_depth):
    ex = ResiliparseExtractor(max_depth=max_depth)
    for depth in sorted({3, 50, 98, 99, 100, 101, 102, max_depth - 1, max_depth, max_depth + 1}):
        if depth < 3:
            continue
        tree = HTMLTree.parse(_nested(depth - 2))
        reference = tree.document.query_selector(_child_chain(max_depth)) is not None
        assert reference == (depth >= max_depth)
        assert ex.is_too_deep(tree) == reference, (max_depth, depth)


def test_str_and_utf8_bytes_give_the_same_text():
    page = "<html><head><title>Tïtle</title></head><body><article><p>" + "Ünïcödé wörds here. " * 40 + "</p></article></body></html>"
    ex = ResiliparseExtractor()
    assert ex(page) == ex(page.encode("utf-8"))
    assert ex(page)[1] == "Tïtle"


def test_too_deep_page_is_refused():
    with pytest.raises(TooDeep):
        ResiliparseExtractor(max_depth=1000)(_nested(1200))
    assert ResiliparseExtractor(max_depth=1000)(_nested(900))[0] == "deep text"
