"""Quality of the math pass (issue 9): TeX recovery, MathML -> LaTeX, LaTeXML, vs trafilatura.

    .venv/bin/python benchmarks/math_quality.py [--data tests/data/math] [--show FORM]

1. TeX recovery on the rendered set (451 TeX strings rendered by KaTeX 0.19.1 and
   MathJax 3.2.2): each form is put in a page, run through the math pass and the Python
   renderer; an equation counts when the recovered TeX equals the source after whitespace
   normalisation (annotated KaTeX forms) - the MathJax forms carry no TeX, so their
   converted TeX is scored like the MathML pairs (canonical match, render-back).
   The page text must hold the equation exactly once, with nothing of its rendering.
2. MathML -> LaTeX on the pairs sets: exact, canonical and render-back (latex2mathml) rates.
3. LaTeXML pages: every alttext equation exactly once in the output.
4. Equations preserved on math pages: trafilatura alone vs math_extract.
5. Exactly-once rate per page form (issue 18): pages whose equations are written as raw TeX
   containers (pandoc --katex, Sphinx), forum BBCode (also broken over <br> lines), CodeCogs
   URLs with &space; escapes, pandoc's real output (tests/data/math/pages) and a forum
   thread; an equation counts when its ``$tex$`` occurs in the text exactly as often as
   the page holds it. Pages holding only empty equations (``$$   $$``) must give none.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataengine.connectors.math.compare import canonical_tex, renders_equal, squash_whitespace, strip_delimiters  # noqa: E402
from dataengine.connectors.math.detect import normalise_math  # noqa: E402
from dataengine.connectors.math.dom import body_of, parse_page, strip_non_content  # noqa: E402
from dataengine.connectors.math.mathml_to_latex import mathml_to_latex  # noqa: E402
from dataengine.connectors.math.equations import is_empty_tex  # noqa: E402
from dataengine.connectors.math.render import render_text  # noqa: E402

FORMS = ("katex_html", "katex_mathml", "mathjax3_chtml", "mathjax3_mathml")
ANNOTATED = ("katex_html", "katex_mathml")
PAIR_SETS = {
    "mathml-to-latex": "mathml-to-latex_tests.jsonl.gz",
    "latex2mathml": "latex2mathml_snapshots.jsonl.gz",
    "mathpix": "mathpix_mathjax_mathml.jsonl.gz",
}


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def rendered_records(data: Path) -> list[dict]:
    return read_jsonl(data / "rendered" / "katex_mathjax3_rendered.jsonl.gz")


def form_markup(record: dict, form: str) -> str | None:
    """The record's markup for ``form``, or None where that renderer failed on the TeX."""
    if form.startswith("katex") and record.get("katex_error"):
        return None
    if form.startswith("mathjax") and record.get("mathjax_error"):
        return None
    markup = record.get(form)
    if form == "mathjax3_mathml" and markup:
        display = ' display="block"' if record["display"] else ""
        markup = f'<mjx-container class="MathJax" jax="CHTML"{display}><mjx-assistive-mml>{markup}</mjx-assistive-mml></mjx-container>'
    return markup


def recover(markup: str) -> tuple[list[str], str]:
    """(TeX of every equation found, rendered page text) for one form embedded in a page."""
    doc = parse_page(f"<html><body><p>Before {markup} after.</p></body></html>")
    sink = normalise_math(doc)
    strip_non_content(doc)
    text, _ = sink.substitute(render_text(body_of(doc)))
    return [e.tex for e in sink.equations], text


def only_once(text: str, tex: str) -> bool:
    """The page text is the sentence with the equation once and nothing of its rendering."""
    squashed = squash_whitespace(text)
    for inline in (f"Before ${tex}$ after.", f"Before\n\n$${tex}$$\n\nafter."):
        if squashed == squash_whitespace(inline):
            return True
    return False


def tex_recovery(records: list[dict]) -> dict:
    stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    failures: dict[str, list] = defaultdict(list)
    for record in records:
        source = record["tex"]
        for form in FORMS:
            markup = form_markup(record, form)
            if markup is None:
                continue
            s = stats[form]
            s["n"] += 1
            texes, text = recover(markup)
            got = texes[0] if len(texes) == 1 else None
            s["one_equation"] += len(texes) == 1
            s["once_in_text"] += got is not None and only_once(text, got)
            if got is None:
                failures[form].append((source, texes))
                continue
            exact = squash_whitespace(got) == squash_whitespace(source)
            s["exact"] += exact
            canonical = exact or canonical_tex(got) == canonical_tex(source)
            s["canonical"] += canonical
            if form not in ANNOTATED:
                same = True if canonical else renders_equal(got, source)
                if same is not None:
                    s["renderback_n"] += 1
                    s["renderback"] += bool(same)
            if not exact:
                failures[form].append((source, got))
    return {"stats": stats, "failures": failures}


def _shared_testdata() -> Path:
    """../shared/testdata beside the checkout (a worktree sits one level deeper)."""
    for parent in ROOT.parents:
        if (parent / "shared" / "testdata").is_dir():
            return parent / "shared" / "testdata"
    return ROOT.parent / "shared" / "testdata"


# TeXZilla's pairs are MPL-2.0: read from ../shared when present, never copied into the project.
TEXZILLA = _shared_testdata() / "math" / "pairs" / "texzilla_unit_tests.jsonl"


def svg_rates(data: Path) -> dict:
    """MathJax 3 SVG without assistive MathML (mathpix): TeX rebuilt from the SVG glyph tree."""
    n = one = canonical = rb = rb_n = 0
    for record in read_jsonl(data / "pairs" / "mathpix_mathjax_svg.jsonl.gz"):
        reference = strip_delimiters(record["latex"])
        texes, _ = recover(record["mathjax_svg_html"])
        n += 1
        one += len(texes) == 1
        got = texes[0] if texes else ""
        same = canonical_tex(got) == canonical_tex(reference)
        canonical += same
        equal = True if same else renders_equal(got, reference)
        if equal is not None:
            rb_n += 1
            rb += bool(equal)
    return {"n": n, "one_equation": one / n, "canonical": canonical / n, "renderback": rb / max(rb_n, 1), "renderback_n": rb_n}


def pair_rates(data: Path) -> dict:
    out = {}
    sets = {name: data / "pairs" / file for name, file in PAIR_SETS.items()}
    if TEXZILLA.exists():
        sets["texzilla (../shared)"] = TEXZILLA
    for name, path in sets.items():
        n = exact = canonical = rb = rb_n = 0
        for record in read_jsonl(path):
            reference = strip_delimiters(record["latex"] if "latex" in record else record["tex"])
            try:
                ours = mathml_to_latex(record["mathml"])
            except Exception:  # noqa: BLE001 - a crash is a miss
                ours = ""
            n += 1
            exact += squash_whitespace(ours) == squash_whitespace(reference)
            same_canonical = canonical_tex(ours) == canonical_tex(reference)
            canonical += same_canonical
            same = True if same_canonical else renders_equal(ours, reference)
            if same is not None:
                rb_n += 1
                rb += bool(same)
        out[name] = {"n": n, "exact": exact / n, "canonical": canonical / n, "renderback": rb / max(rb_n, 1),
                     "renderback_n": rb_n}
    return out


def latexml_once(data: Path, renderer: str = "python") -> dict:
    """Per LaTeXML file: alttext equations, and how many appear exactly once in the text."""
    from lxml import etree

    from dataengine.connectors.math.page import PageRenderer

    pages = PageRenderer(renderer)
    out = {}
    for path in sorted((data / "latexml").glob("*.xml")):
        raw = path.read_text(encoding="utf-8")
        alts = [el.get("alttext") for el in etree.fromstring(raw.encode()).iter("{*}math") if el.get("alttext")]
        page = pages.render([raw])[0]
        text = page.text or ""
        once = alttext_exactly_once(text, alts)
        out[path.name] = {"alttext": len(alts), "exactly_once": once, "equations_in_text": page.equations}
    return out


PAGE_FORMS = ("katex_html", "mathjax3_chtml", "mathjax2_script", "stackexchange", "tex_delimiters", "wikipedia_image")


def equation_markup(record: dict, form: str, index: int) -> str | None:
    """One equation as a web page of ``form`` carries it (the MathJax 2 / SE / delimiter /
    image forms are written the way those pages look before or after typesetting)."""
    tex, display = record["tex"], record["display"]
    if form in ("katex_html", "mathjax3_chtml"):
        return form_markup(record, form)
    escaped = tex.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if form == "mathjax2_script":
        mode = "; mode=display" if display else ""
        return (f'<span class="MathJax_Preview">{escaped}</span><span class="MathJax" id="MathJax-Element-{index}-Frame">'
                f'<span class="math"><span class="mi">x</span></span></span>'
                f'<script type="math/tex{mode}" id="MathJax-Element-{index}">{tex}</script>')  # script text is raw
    if form == "stackexchange":
        return f'<span class="math-container">${escaped}$</span>'
    if form == "tex_delimiters":
        return f"\\({escaped}\\)"
    if form == "wikipedia_image":
        alt = escaped.replace('"', "&quot;")
        return (f'<img class="mwe-math-fallback-image-inline" alt="{{\\displaystyle {alt}}}" '
                f'src="https://wikimedia.org/api/rest_v1/media/math/render/svg/{index:040x}">')
    raise ValueError(form)


def math_page(markups: list[str]) -> str:
    """An article page (menu, title, paragraphs, footer) with one equation per paragraph."""
    paragraphs = "".join(
        f"<p>In step {k + 1} of the derivation we use the relation {m} which follows from the previous "
        f"step, and we check that every term is accounted for before moving on to the next one.</p>"
        for k, m in enumerate(markups)
    )
    return (
        "<html><head><title>Worked derivation</title>"
        '<script src="https://cdn.example.org/mathjax/tex-chtml.js"></script></head><body>'
        '<nav><ul><li><a href="/">Home</a></li><li><a href="/notes">Notes</a></li></ul></nav>'
        f"<article><h1>Worked derivation</h1>{paragraphs}</article>"
        "<footer><p>Copyright 2024. All rights reserved.</p></footer></body></html>"
    )


def preserved_vs_trafilatura(records: list[dict], per_page: int = 8) -> dict:
    """Per page form: equations whose source TeX survives, trafilatura alone vs math_extract."""
    import trafilatura

    from dataengine.connectors.math.page import PageRenderer

    ours = {name: PageRenderer(name) for name in ("trafilatura", "python")}
    usable = [r for r in records if not r.get("katex_error") and not r.get("mathjax_error") and "\n" not in r["tex"]
              and "$" not in r["tex"] and "%" not in r["tex"]]
    out = {}
    for form in PAGE_FORMS:
        counts = defaultdict(int)
        for start in range(0, len(usable), per_page):
            group = usable[start:start + per_page]
            page = math_page([equation_markup(r, form, start + k) for k, r in enumerate(group)])
            plain = trafilatura.extract(page, fast=True, include_comments=False, deduplicate=False) or ""
            rendered = {name: r.render([page])[0] for name, r in ours.items()}
            alone = _relation_spans(plain)
            spans = {name: _relation_spans(result.text or "") for name, result in rendered.items()}
            for k, record in enumerate(group):
                source = squash_whitespace(record["tex"])
                counts["equations"] += 1
                counts["trafilatura"] += source in squash_whitespace(plain)
                counts["trafilatura_clean"] += _clean(alone, k, source, delimited=False)
                for name, result in rendered.items():
                    counts[f"ours_{name}"] += source in squash_whitespace(result.text or "")
                    counts[f"ours_{name}_clean"] += _clean(spans[name], k, source, delimited=True)
            for name, result in rendered.items():
                counts[f"ours_{name}_latex"] += result.equations
        out[form] = dict(counts)
    return out


_RELATION = re.compile(r"we use the relation(.*?)which follows", re.S)


def _relation_spans(text: str) -> list[str]:
    """What stands in each paragraph where the equation was (in page order)."""
    return [squash_whitespace(m.group(1)) for m in _RELATION.finditer(text)]


def _clean(spans: list[str], k: int, source: str, delimited: bool) -> bool:
    """The k-th paragraph holds the equation once and nothing else (no rendering left over).

    trafilatura is not asked for delimiters: the bare TeX counts for it.
    """
    if k >= len(spans):
        return False
    if delimited:
        return spans[k] in (f"${source}$", f"$${source}$$")
    return spans[k] in (source, f"${source}$", f"\\({source}\\)", f"$${source}$$")


ONCE_FORMS = ("raw_tex_span", "sphinx_span", "bbcode_itex", "bbcode_tex_over_br", "codecogs_escaped", "empty_only")


def once_markup(tex: str, form: str) -> str:
    """One equation written the way ``form`` stores it before a typesetter runs."""
    escaped = tex.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if form == "raw_tex_span":  # pandoc --katex, jsMath
        return f'<span class="math inline">{escaped}</span>'
    if form == "sphinx_span":
        return f'<span class="math notranslate nohighlight">\\({escaped}\\)</span>'
    if form == "bbcode_itex":
        return f"[itex]{escaped}[/itex]"
    if form == "bbcode_tex_over_br":  # a forum post: the poster's line break became <br />
        head, _, rest = escaped.partition(" ")
        return f"[tex]{head}<br />\n{rest}[/tex]" if rest else f"[tex]{escaped}[/tex]"
    if form == "codecogs_escaped":  # CodeCogs' editor: spaces as &space;, + as &plus; (HTML-escaped in src)
        url = "\\inline&space;" + tex.replace(" ", "&space;").replace("+", "&plus;")
        return f'<img src="https://latex.codecogs.com/gif.latex?{url.replace("&", "&amp;")}" />'
    if form == "empty_only":
        return "$$   $$"
    raise ValueError(form)


def _count_delimited(text: str, tex: str) -> int:
    """Occurrences of ``tex`` as one equation ($..$ or $$..$$) in whitespace-squashed ``text``."""
    squashed = squash_whitespace(text)
    tex = squash_whitespace(tex)
    return squashed.count(f"${tex}$")  # "$$x$$" holds "$x$" once: inline and display alike


def exactly_once_rates(records: list[dict], renderer: str = "python", per_page: int = 8) -> dict:
    """Per form: equations whose $tex$ occurs exactly as often as the page has them."""
    from dataengine.connectors.math.page import PageRenderer

    pages = PageRenderer(renderer)
    usable = [r["tex"] for r in records if not r.get("katex_error") and "\n" not in r["tex"] and "$" not in r["tex"]
              and "%" not in r["tex"] and "&" not in r["tex"] and "#" not in r["tex"] and not is_empty_tex(r["tex"])]
    out = {}
    for form in ONCE_FORMS:
        n = once = counted = 0
        for start in range(0, len(usable), per_page):
            group = usable[start:start + per_page]
            page = math_page([once_markup(t, form) for t in group])
            result = pages.render([page])[0]
            counted += result.equations
            text = result.text or ""
            for tex, times in Counter(group).items():
                if form == "empty_only":
                    continue
                n += times
                once += times if _count_delimited(text, tex) == times else 0
        out[form] = {"n": n, "exactly_once": once / n if n else None, "equations_counted": counted}
    return out


def real_page_rates(data: Path, renderer: str = "python") -> dict:
    """Exactly-once rate on pandoc's real output for notes.md and on the forum thread."""
    import re

    from dataengine.connectors.math.page import PageRenderer

    folder = data / "pages"
    if not folder.is_dir():
        return {}
    source = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)
    wanted = Counter(squash_whitespace(m.group(1) or m.group(2)) for m in source.finditer((folder / "notes.md").read_text()))
    forum = Counter({r"\sum_{n=1}^\infty \frac{1}{n^2}": 3, r"\int_1^\infty \frac{dx}{x^2} = 1": 1, r"n \ge 2": 1,
                     r"\frac{1}{n^2} \le \int_{n-1}^{n} \frac{dx}{x^2}": 1,
                     r"\sum_{n=2}^N \frac{1}{n^2} \le \int_1^N \frac{dx}{x^2} < 1.": 1,
                     r"\sum_{n=1}^\infty \frac{1}{n^2} = \frac{\pi^2}{6}": 1, r"a_n = O(n^{-2})": 1})
    pages = PageRenderer(renderer)
    out = {}
    for name, expected in (("pandoc-katex.html", wanted), ("pandoc-mathjax.html", wanted),
                           ("pandoc-webtex.html", wanted), ("pandoc-mathml.html", None), ("forum-thread.html", forum)):
        result = pages.render([(folder / name).read_text()])[0]
        text = result.text or ""
        if expected is None:  # MathML without TeX: count, and render-back of the converted TeX
            got = [squash_whitespace(m.group(1) or m.group(2)) for m in source.finditer(text)]
            refs = list(wanted.elements()) if False else [squash_whitespace(m.group(1) or m.group(2)) for m in
                                                          source.finditer((folder / "notes.md").read_text())]
            same = sum(bool(renders_equal(g, r)) for g, r in zip(got, refs)) if len(got) == len(refs) else 0
            out[name] = {"n": len(refs), "equations_counted": result.equations, "renderback": same / len(refs)}
            continue
        n = sum(expected.values())
        once = sum(times for tex, times in expected.items() if _count_delimited(text, tex) == times)
        out[name] = {"n": n, "exactly_once": once / n, "equations_counted": result.equations}
    return out


def alttext_exactly_once(text: str, alts: list[str]) -> int:
    """How many alttext equations occur in ``text`` as many times as the page has them.

    ``$$x$$`` contains ``$x$`` once, so counting ``$x$`` counts inline and display alike.
    """
    from collections import Counter

    wanted = Counter(alts)
    return sum(n for alt, n in wanted.items() if text.count(f"${alt}$") == n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / "tests" / "data" / "math"))
    parser.add_argument("--show", default=None, help="print failures of one form")
    args = parser.parse_args()
    data = Path(args.data)
    result = tex_recovery(rendered_records(data))
    print("TeX recovery on the rendered set (per form):")
    for form, s in result["stats"].items():
        line = (f"  {form:16s} n={s['n']:3d} one-equation={s['one_equation'] / s['n']:.3f} "
                f"once-in-text={s['once_in_text'] / s['n']:.3f} exact(ws)={s['exact'] / s['n']:.3f} "
                f"canonical={s['canonical'] / s['n']:.3f}")
        if s.get("renderback_n"):
            line += f" renderback={s['renderback'] / s['renderback_n']:.3f} (of {s['renderback_n']})"
        print(line)
    if args.show:
        for source, got in result["failures"][args.show][:60]:
            print("SRC", source[:160].replace("\n", " "))
            print("GOT", str(got)[:160].replace("\n", " "))
    print("MathML -> LaTeX on the pairs sets:")
    for name, r in pair_rates(data).items():
        print(f"  {name:16s} n={r['n']:3d} exact={r['exact']:.3f} canonical={r['canonical']:.3f} "
              f"renderback={r['renderback']:.3f} (of {r['renderback_n']})")
    r = svg_rates(data)
    print(f"MathJax 3 SVG without MathML (mathpix, n={r['n']}): one-equation={r['one_equation']:.3f} "
          f"canonical={r['canonical']:.3f} renderback={r['renderback']:.3f} (of {r['renderback_n']}) "
          "(records often hold several formulas: one-equation < 1 is expected)")
    print("LaTeXML alttext equations exactly once:")
    for name, r in latexml_once(data).items():
        print(f"  {name:28s} {r['exactly_once']}/{r['alttext']} (equations in text {r['equations_in_text']})")
    print("Exactly once per page form (issue 18; python renderer, 8 equations a page):")
    for form, r in exactly_once_rates(rendered_records(data)).items():
        rate = "-" if r["exactly_once"] is None else f"{r['exactly_once']:.3f}"
        print(f"  {form:20s} n={r['n']:3d} exactly-once={rate} equations counted={r['equations_counted']}")
    print("Real pages (pandoc 2.17 output of tests/data/math/pages/notes.md, forum thread):")
    for name, r in real_page_rates(data).items():
        extra = f"exactly-once={r['exactly_once']:.3f}" if "exactly_once" in r else f"render-back={r['renderback']:.3f}"
        print(f"  {name:22s} n={r['n']:3d} {extra} equations counted={r['equations_counted']}")
    print("Equations whose source TeX is in the output, trafilatura alone vs ours (8 per page):")
    for form, c in preserved_vs_trafilatura(rendered_records(data)).items():
        print(f"  {form:16s} n={c['equations']:3d} | TeX present: trafilatura={c['trafilatura']:3d} "
              f"ours+trafilatura={c['ours_trafilatura']:3d} ours+python={c['ours_python']:3d} "
              f"| once and clean: trafilatura={c['trafilatura_clean']:3d} ours+trafilatura={c['ours_trafilatura_clean']:3d} "
              f"ours+python={c['ours_python_clean']:3d} | $LaTeX$ out: {c['ours_trafilatura_latex']} / {c['ours_python_latex']}")


if __name__ == "__main__":
    main()
