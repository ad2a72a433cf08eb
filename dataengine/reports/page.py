"""The HTML around the charts: one self-contained page, readable in light and dark themes.

Reports written to a file and the pages of ``dataengine ui`` share this shell: the same
stylesheet (CSS variables switched by ``prefers-color-scheme``), figures laid out in a
grid that fits a laptop screen, tables that scroll inside themselves instead of
widening the page. Nothing is loaded from the network; there is no script.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from dataengine.reports.charts import Figure

STYLE = """
:root{color-scheme:light dark;--bg:#ffffff;--fg:#1d1f23;--muted:#5b616b;--line:#d9dce1;--head:#f2f4f7;
--accent:#2f6db3;--card:#fafbfc;--bad:#b3261e}
@media (prefers-color-scheme: dark){:root{--bg:#16181c;--fg:#e6e8eb;--muted:#a3a9b3;--line:#3a3f47;--head:#22262c;
--accent:#7fb1f0;--card:#1c1f24;--bad:#ff8a80}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
header{padding:.8rem 1.5rem;border-bottom:1px solid var(--line);display:flex;gap:1.2rem;align-items:baseline;flex-wrap:wrap}
header a{font-weight:600}
main{padding:1rem 1.5rem 3rem;max-width:1280px}
h1{font-size:1.45rem;margin:.4rem 0 .2rem}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}
a{color:var(--accent)}
.subtitle{color:var(--muted);margin:0 0 1rem}
.facts{display:flex;flex-wrap:wrap;gap:.6rem;margin:.6rem 0}
.fact{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.35rem .7rem}
.fact b{display:block;font-size:1.1rem}.fact span{color:var(--muted);font-size:.85rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,580px),1fr));gap:1rem}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.5rem;overflow:hidden}
figure svg{max-width:100%;height:auto;display:block}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.9rem;margin:.3rem 0}
th,td{border:1px solid var(--line);padding:.25rem .55rem;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:var(--head)}
code,pre,textarea{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.88rem}
pre{background:var(--card);border:1px solid var(--line);padding:.6rem;overflow-x:auto}
textarea{width:100%;min-height:7rem;background:var(--card);color:var(--fg);border:1px solid var(--line);padding:.5rem}
button{font:inherit;padding:.3rem 1rem}
.error{color:var(--bad);font-weight:600}
.note{color:var(--muted)}
"""


@dataclass
class Section:
    """A heading with figures (drawn in a grid) and HTML blocks under it."""

    title: str
    figures: list[Figure] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Page:
    """A whole report: title, a line under it, key facts, sections."""

    title: str
    subtitle: str = ""
    facts: list[tuple[str, object]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]


def figure_html(fig: Figure) -> str:
    return (f'<figure data-chart="{html.escape(fig.title)}" data-mark="{fig.mark}" data-points="{fig.points}">'
            f"{fig.svg}</figure>")


def section_html(section: Section) -> str:
    parts = [f"<section><h2>{html.escape(section.title)}</h2>"]
    if section.note:
        parts.append(f'<p class="note">{html.escape(section.note)}</p>')
    if section.figures:
        parts.append('<div class="grid">' + "".join(figure_html(f) for f in section.figures) + "</div>")
    parts.extend(section.blocks)
    parts.append("</section>")
    return "".join(parts)


def page_body(page: Page) -> str:
    """The report's content (title, facts, sections), to put in a document or a UI page."""
    facts = ""
    if page.facts:
        facts = '<div class="facts">' + "".join(
            f'<div class="fact"><b>{html.escape(fmt(v))}</b><span>{html.escape(k)}</span></div>' for k, v in page.facts
        ) + "</div>"
    sub = f'<p class="subtitle">{html.escape(page.subtitle)}</p>' if page.subtitle else ""
    return f"<h1>{html.escape(page.title)}</h1>{sub}{facts}" + "".join(section_html(s) for s in page.sections)


def document(title: str, body: str, nav: str = "") -> str:
    """A complete HTML document around ``body`` (``nav``: links shown in a header bar)."""
    header = f"<header>{nav}</header>" if nav else ""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<link rel='icon' href='data:,'>"  # no favicon request (a 404 in the browser console)
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{header}<main>{body}</main></body></html>")


def write_page(page: Page, path: str | Path) -> Path:
    """Write ``page`` as one self-contained HTML file; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document(page.title, page_body(page)), encoding="utf-8")
    return path


def table_html(rows: list[dict], links: dict | None = None) -> str:
    """Rows as an HTML table (scrolls inside itself); ``links``: column -> f(value, row) -> URL or None."""
    if not rows:
        return '<p class="note">(no rows)</p>'
    links = links or {}
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            text = html.escape(fmt(v))
            url = links[c](v, r) if c in links and v is not None else None
            if url:
                text = f'<a href="{html.escape(url)}">{text}</a>'
            cls = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def fmt(v) -> str:
    """Numbers with thousands separators and 4 significant digits; None as an empty cell."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if v != v:
            return "NaN"
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)
