"""Charts for every report: Vega-Lite specs rendered to static SVG by ``vl-convert-python``.

One plotting approach for all reports (docs/decisions.md): a chart is a Vega-Lite spec
built from a few aggregated rows (never documents), rendered in-process to an SVG string
that is inlined in the page. No JavaScript, no network: a report opens from disk anywhere.
Text and axes are drawn in ``currentColor``, so the page's light or dark theme colours them.

A :class:`Figure` also says which Vega mark it draws and how many data points it holds,
so a test (or a reader of the HTML) can check that every point was drawn.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

#: colours that read on white and on near-black backgrounds (Tableau 10)
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

THEME = {
    "background": None,  # transparent: the page's background shows through
    "font": "system-ui, sans-serif",
    "view": {"stroke": None},
    "axis": {"labelColor": "currentColor", "titleColor": "currentColor", "domainColor": "currentColor",
             "tickColor": "currentColor", "gridColor": "#8886", "labelFontSize": 11, "titleFontSize": 12,
             "labelLimit": 220},
    "legend": {"labelColor": "currentColor", "titleColor": "currentColor", "labelLimit": 220},
    "title": {"color": "currentColor", "fontSize": 14, "anchor": "start"},
    "range": {"category": PALETTE},
    "text": {"color": "currentColor"},
}

WIDTH = 560  # px: two charts side by side on a 1366 px laptop screen, one on a narrow window
_RENDER_LOCK = threading.Lock()  # one V8 runtime behind vl-convert: render one chart at a time


@dataclass(frozen=True)
class Figure:
    """A rendered chart: its title, the SVG, the Vega mark it draws and the points it holds."""

    title: str
    svg: str
    mark: str  # the Vega scenegraph mark type drawn per point: rect, line, symbol, arc
    points: int  # data points (bars, dots); lines count their vertices


def render(spec: dict) -> str:
    """A Vega-Lite spec -> SVG markup (the theme above applied)."""
    import vl_convert  # ~80 MB native module: loaded only when a report is drawn

    full = copy.deepcopy(spec)
    full["config"] = {**THEME, **full.get("config", {})}
    with _RENDER_LOCK:
        svg = vl_convert.vegalite_to_svg(full, allowed_base_urls=[])  # inline data only: never the network
    return svg


def bar(title: str, rows: list[dict], category: str, value: str, *, value_title: str | None = None,
        category_title: str | None = None, color: str | None = None, stack: bool = False, percent: bool = False,
        sort: str | list | None = "-x", horizontal: bool = True) -> Figure:
    """One bar per row (``category`` -> ``value``); ``color`` splits bars by a field, side by side
    (``stack=True``: stacked, for parts of a whole)."""
    top = max((abs(r[value]) for r in rows if isinstance(r.get(value), (int, float))), default=0)
    # a horizontal chart's categories are named by its title: an axis title there only crowds the labels
    cat = {"field": category, "type": "nominal", "title": None if horizontal else category_title, "sort": sort}
    val = {"field": value, "type": "quantitative", "title": value_title or value, "axis": {"format": axis_format(top)}}
    if percent:
        val["scale"] = {"domain": [0, 100]}
    if not horizontal:
        cat["sort"] = None if sort == "-x" else sort
        cat["axis"] = {"labelAngle": 0}
    enc = {"y": cat, "x": val} if horizontal else {"x": cat, "y": val}
    if color:
        enc["color"] = {"field": color, "type": "nominal", "title": None, "legend": {"orient": "bottom"}}
        if not stack:
            enc["yOffset" if horizontal else "xOffset"] = {"field": color}
        else:
            val["stack"] = "zero"
    if not stack and color is None:
        val["stack"] = None
    enc["tooltip"] = [{"field": category}, {"field": value}] + ([{"field": color}] if color else [])
    groups = len({r[color] for r in rows}) if color and not stack else 1
    step = 16 if groups == 1 else max(8, 24 // groups)
    size = ({"width": WIDTH - 180, "height": {"step": step}} if horizontal
            else {"width": WIDTH - 80, "height": 220})
    spec: dict = {"title": title, "data": {"values": _clean(rows)}, **size}
    if horizontal and not color:  # the value at the end of each bar
        spec["layer"] = [
            {"mark": {"type": "bar"}, "encoding": enc},
            {"mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 10},
             "encoding": {"y": cat, "x": val, "text": {"field": value, "type": "quantitative", "format": ",.4~r"}}},
        ]
    else:
        spec["mark"] = {"type": "bar"}
        spec["encoding"] = enc
    return Figure(title, render(spec), "rect", len(rows))


def axis_format(top: float) -> str:
    """SI prefixes (12k, 3.4M) for large numbers; plain for small ones (no 'm' for milli)."""
    return "~s" if top >= 10_000 else ",~r"


def histogram(title: str, rows: list[dict], start: str, end: str, count: str, *, x_title: str,
              y_title: str = "documents", log_x: bool = False, label: str | None = None) -> Figure:
    """Pre-binned counts (``start``..``end`` -> ``count``): bins are computed in SQL, drawn here."""
    x = {"field": start, "type": "quantitative", "title": x_title, "bin": {"binned": True}}
    if log_x:
        x["scale"] = {"type": "log"}
    top = max((r[count] for r in rows), default=0)
    enc = {"x": x, "x2": {"field": end}, "y": {"field": count, "type": "quantitative", "title": y_title,
                                                "axis": {"format": axis_format(top)}},
           "tooltip": [{"field": label or start}, {"field": count}]}
    spec = {"title": title, "data": {"values": _clean(rows)}, "width": WIDTH - 80, "height": 200,
            "mark": {"type": "bar", "binSpacing": 1}, "encoding": enc}
    return Figure(title, render(spec), "rect", len(rows))


def lines(title: str, rows: list[dict], x: str, y: str, *, series: str | None = None, x_title: str | None = None,
          y_title: str | None = None, points: bool = False, log_y: bool = False, rule: float | None = None,
          rule_label: str = "") -> Figure:
    """A line per ``series`` value (or one line) through (x, y); ``rule``: a dashed reference level."""
    top = max((abs(r[y]) for r in rows if isinstance(r.get(y), (int, float))), default=0)
    yy: dict = {"field": y, "type": "quantitative", "title": y_title or y, "scale": {"zero": False},
                "axis": {"format": axis_format(top)}}
    if log_y:
        yy["scale"] = {"type": "log"}
    enc: dict = {"x": {"field": x, "type": "quantitative", "title": x_title or x}, "y": yy,
                 "tooltip": [{"field": x}, {"field": y}] + ([{"field": series}] if series else [])}
    if series:
        enc["color"] = {"field": series, "type": "nominal", "title": None, "legend": {"orient": "top"}}
    layers = [{"mark": {"type": "line", "point": points, "strokeWidth": 1.8}, "encoding": enc}]
    if rule is not None:
        layers.append({"data": {"values": [{"level": rule, "label": rule_label}]},
                       "mark": {"type": "rule", "strokeDash": [5, 4], "color": "#999"},
                       "encoding": {"y": {"field": "level", "type": "quantitative"},
                                    "tooltip": [{"field": "label"}, {"field": "level"}]}})
    spec = {"title": title, "data": {"values": _clean(rows)}, "width": WIDTH - 80, "height": 240, "layer": layers}
    n_series = len({r.get(series) for r in rows}) if series else (1 if rows else 0)
    mark = "symbol" if points else "line"
    return Figure(title, render(spec), mark, len(rows) if points else n_series)


def _clean(rows: list[dict]) -> list[dict]:
    """JSON-safe values (Decimals, dates and NaN from SQL results)."""
    import datetime as dt
    import decimal
    import math

    out = []
    for r in rows:
        clean = {}
        for k, v in r.items():
            if isinstance(v, decimal.Decimal):
                v = float(v)
            elif isinstance(v, (dt.date, dt.datetime)):
                v = v.isoformat()
            elif isinstance(v, float) and not math.isfinite(v):
                v = None
            clean[k] = v
        out.append(clean)
    return out
