"""Stage `math_extract`: WARC -> text with $LaTeX$, math annotations, renderers, classifier hook."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest

from dataengine.connectors.extract import Extract
from dataengine.connectors.math.lynx import lynx_path
from dataengine.connectors.math.stage import MathExtract
from dataengine.connectors.warc import WarcReader
from dataengine.connectors.warc_write import write_html_warc
from dataengine.core.errors import StageError
from dataengine.core.registry import get_stage

MATH_PAGE = """<html><head><title>Quadratics</title></head><body>
<nav><a href="/">Home</a></nav>
<article><h1>Solving quadratics</h1>
<p>The roots of <span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>a</mi><msup><mi>x</mi><mn>2</mn></msup></mrow>
<annotation encoding="application/x-tex">ax^2+bx+c=0</annotation></semantics></math></span><span class="katex-html" aria-hidden="true">ax2+bx+c=0</span></span>
are given by the quadratic formula, which every student of algebra meets early and uses for years afterwards.</p>
<p><script type="math/tex; mode=display">x=\\frac{-b\\pm\\sqrt{b^2-4ac}}{2a}</script></p>
<p>The discriminant <mjx-container class="MathJax" jax="CHTML"><mjx-math aria-hidden="true"><mjx-mi>Δ</mjx-mi></mjx-math><mjx-assistive-mml><math><mi>Δ</mi><mo>=</mo><msup><mi>b</mi><mn>2</mn></msup><mo>−</mo><mn>4</mn><mi>a</mi><mi>c</mi></math></mjx-assistive-mml></mjx-container>
tells how many real roots there are, and its sign is all that matters for that question in practice.</p>
<pre>def roots(a, b, c):
    d = b * b - 4 * a * c
    return d</pre>
</article></body></html>"""
PLAIN_PAGE = """<html><head><title>Travel</title></head><body><article><h1>A trip</h1>
<p>We took the train along the river and stopped in three small towns, each with its own market and church.</p>
<p>The weather held for the whole week, which made the long walks between the villages a pleasure.</p></article></body></html>"""
EXPECTED = ("$ax^2+bx+c=0$", "$$x=\\frac{-b\\pm\\sqrt{b^2-4ac}}{2a}$$", "$\\Delta=b^2-4ac$")

RENDERERS = ["python", "trafilatura"] + (["lynx"] if lynx_path() else [])


@pytest.fixture(scope="module")
def pages_warc(tmp_path_factory):
    path = tmp_path_factory.mktemp("math") / "pages.warc.gz"
    write_html_warc(str(path), [("https://ex.org/math", MATH_PAGE.encode()), ("https://ex.org/plain", PLAIN_PAGE.encode())])
    return str(path)


def _run(stage, warc: str) -> dict[str, dict]:
    rows = {}
    for batch in WarcReader().read(warc, 100):
        for row in stage(batch).to_pylist():
            rows[row["url"]] = row
    return rows


@pytest.mark.parametrize("renderer", RENDERERS)
def test_stage_keeps_every_equation_once(pages_warc, renderer):
    rows = _run(MathExtract({"renderer": renderer}), pages_warc)
    math, plain = rows["https://ex.org/math"], rows["https://ex.org/plain"]
    assert math["extract_status"] == "ok" and math["title"] == "Quadratics"
    for tex in EXPECTED:
        assert math["text"].count(tex) == 1, (renderer, tex, math["text"])
    assert "ax2+bx+c=0" not in math["text"]  # KaTeX's HTML rendering is gone
    assert (math["math_equations"], math["math_has_math"]) == (3, True)
    assert (plain["math_equations"], plain["math_has_math"]) == (0, False)
    assert "html" not in rows["https://ex.org/math"] and math["math_score"] is None
    if renderer != "trafilatura":  # the layout renderers keep the whole page, code indentation included
        assert "Home" in math["text"] and "    d = b * b - 4 * a * c" in math["text"]


def test_fast_skip_gives_plain_extraction_on_math_free_pages(pages_warc):
    """Without math markers the trafilatura path is exactly the `extract` stage."""
    ours = _run(MathExtract({"renderer": "trafilatura"}), pages_warc)
    plain = _run(Extract({}), pages_warc)
    assert ours["https://ex.org/plain"]["text"] == plain["https://ex.org/plain"]["text"]


def test_statuses_and_registry():
    stage = get_stage("math_extract")({"renderer": "python", "max_html_bytes": 200})
    table = pa.table({
        "id": ["a", "b", "c", "d"],
        "html": [None, "<p>x</p>", "<html><head><title>Big</title></head><body>" + "y" * 300 + "</body></html>", "<p>ok \\(x\\)</p>"],
        "content_type": ["text/html", "image/png", "text/html", "text/html"],
    })
    out = pickle.loads(pickle.dumps(stage))(table).to_pylist()
    assert [r["extract_status"] for r in out] == ["no_html", "not_html", "too_large", "ok"]
    assert out[2]["title"] == "Big" and out[3]["text"] == "ok $x$" and out[3]["math_equations"] == 1
    assert out[0]["math_equations"] is None and out[0]["math_has_math"] is None


def test_lynx_renderer_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("dataengine.connectors.math.lynx.lynx_path", lambda: None)
    with pytest.raises(StageError, match="apt-get install lynx"):
        MathExtract({"renderer": "lynx"})
    assert MathExtract({"renderer": "auto"}).renderer == "python"


# -- math classifier hook --------------------------------------------------------------------

MATH_LINES = ["the integral of x squared is x cubed over three", "solve the equation for x and check the roots",
              "the derivative of the function is zero at the minimum", "prove the theorem by induction on n"]
OTHER_LINES = ["the train left the station in the morning", "we ate bread and cheese at the market",
               "the weather was warm and the river was calm", "the museum opens at nine on sundays"]


def test_fasttext_math_classifier_scores_math_higher(tmp_path, pages_warc):
    import fasttext

    train = tmp_path / "train.txt"
    lines = [f"__label__math {t}" for t in MATH_LINES] + [f"__label__other {t}" for t in OTHER_LINES]
    train.write_text("\n".join(lines * 20) + "\n")
    model = fasttext.train_supervised(str(train), epoch=20, lr=0.5, dim=64, wordNgrams=2, minCount=1, seed=0, thread=1, verbose=0)
    path = tmp_path / "math.bin"
    model.save_model(str(path))
    stage = MathExtract({"renderer": "python", "classifier": str(path), "classifier_label": "math"})
    table = pa.table({"id": ["m", "o"], "html": [f"<p>{MATH_LINES[0]} \\(x^2\\)</p>", f"<p>{OTHER_LINES[0]}</p>"]})
    out = stage(table)
    scores = out["math_score"].to_pylist()
    assert scores[0] > 0.5 > scores[1]
    with pytest.raises(StageError):
        MathExtract({"classifier": str(path), "classifier_label": "physics"})


def test_hf_regression_classifier_from_a_local_folder(tmp_path):
    """A FineMath-style regressor (one output) built from a config: scores equal the model's own output."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(0)
    folder = tmp_path / "finemath-tiny"
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + "the of x is a equation solve root integral train river".split()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=1)
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    stage = MathExtract({"renderer": "python", "classifier": str(folder), "classifier_max_length": 32})
    texts = ["solve the equation x", "the train of the river"]
    out = stage(pa.table({"id": ["a", "b"], "html": [f"<p>{t}</p>" for t in texts]}))
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.inference_mode():
        expected = [float(model(**tok(t, return_tensors="pt", truncation=True, max_length=32)).logits[0, 0]) for t in texts]
    np.testing.assert_allclose(out["math_score"].to_numpy(), expected, atol=1e-4)


@pytest.mark.slow
def test_cli_ingest_then_math_extract_into_the_warehouse(pages_warc, tmp_path):
    """The real CLI: WARC -> raw html table -> `run --stage math_extract` -> a DuckLake table."""
    from conftest import run_cli
    from dataengine.warehouse import Warehouse

    wh = tmp_path / "wh"
    run_cli("init", warehouse=wh, check=True)
    run_cli("ingest", "warc", pages_warc, "-t", "raw", "--extractor", "none", "--no-langid", "-q",
            warehouse=wh, check=True)
    run_cli("run", "--from", "raw", "--stage", "math_extract:renderer=python", "--to", "math", warehouse=wh, check=True)
    rows = Warehouse(str(wh)).sql("SELECT url, math_equations, math_has_math, text FROM math ORDER BY url").to_pylist()
    assert [(r["url"], r["math_equations"], r["math_has_math"]) for r in rows] == [
        ("https://ex.org/math", 3, True), ("https://ex.org/plain", 0, False)]
    assert all(tex in rows[0]["text"] for tex in EXPECTED)


def _article(markups: list[str]) -> str:
    paragraphs = "".join(
        f"<p>In step {k} of the derivation we use the relation {m} which follows from the previous step, and we "
        "check that every term is accounted for before moving on.</p>" for k, m in enumerate(markups)
    )
    return (f'<html><head><title>Derivation</title></head><body><nav><a href="/">Home</a></nav>'
            f"<article><h1>Derivation</h1>{paragraphs}</article><footer><p>All rights reserved.</p></footer></body></html>")


def test_math_pages_keep_every_equation_where_trafilatura_loses_them():
    import gzip
    import json
    from pathlib import Path

    import trafilatura

    with gzip.open(Path(__file__).parent / "data" / "math" / "rendered" / "katex_mathjax3_rendered.jsonl.gz", "rt") as fh:
        records = [json.loads(line) for line in fh]
    records = [r for r in records if not r.get("mathjax_error") and not r["display"] and not set("<&") & set(r["tex"])][:8]
    texes = [r["tex"].strip() for r in records]
    alt = [t.replace("&", "&amp;").replace('"', "&quot;") for t in texes]
    pages = {
        "mathjax3": _article([r["mathjax3_chtml"] for r in records]),
        "mathjax2": _article([f'<span class="MathJax_Preview">{t}</span><span class="MathJax" id="MathJax-Element-{i}-Frame">'
                              f'<span>glyphs</span></span><script type="math/tex">{t}</script>' for i, t in enumerate(texes)]),
        "image": _article([f'<img class="mwe-math-fallback-image-inline" alt="{{\\displaystyle {a}}}" '
                           f'src="https://wikimedia.org/api/rest_v1/media/math/render/svg/{i}">' for i, a in enumerate(alt)]),
    }
    table = pa.table({"id": list(pages), "html": list(pages.values())})
    ours = {row["id"]: row for row in MathExtract({"renderer": "python"})(table).to_pylist()}
    for name, html in pages.items():
        plain = trafilatura.extract(html, fast=True, include_comments=False, deduplicate=False) or ""
        assert ours[name]["math_equations"] == 8, name
        if name == "mathjax3":  # no TeX on the page: converted, so only the count can be compared
            assert sum(t in plain for t in texes) < 8
        elif name == "mathjax2":  # trafilatura keeps the preview TeX and the rendered glyphs: twice
            assert all(f"${t}$" in ours[name]["text"] for t in texes)
            assert "glyphs" in plain and "glyphs" not in ours[name]["text"]
        else:
            assert all(f"${t}$" in ours[name]["text"] for t in texes)
            assert sum(t in plain for t in texes) < 8
