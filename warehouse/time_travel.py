"""``table@N`` in user SQL: the table at snapshot N (``table@N AS a`` and ``table@N a`` too)."""

from __future__ import annotations

import re

_TIME_TRAVEL = re.compile(
    r"(?<![\w@.])([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)@(\d+)\b"
    r"(\s+(?:AS\s+)?([A-Za-z_]\w*))?",
    re.IGNORECASE,
)
#: Words that may follow ``table@N`` and are not an alias of it.
_NOT_ALIAS = frozenset(
    """where join on using group order limit offset union except intersect left right inner outer full cross
    natural positional asof anti semi lateral having window qualify select from at tablesample sample
    returning pivot unpivot fetch for with values and or not is in as by set into when then else end""".split()
)


def _time_travel(match: re.Match) -> str:
    table, version, tail, alias = match.group(1), match.group(2), match.group(3), match.group(4)
    if alias and alias.lower() not in _NOT_ALIAS:
        # DuckDB wants the alias before AT: ``t AS a AT (VERSION => n)``
        return f"{table} AS {alias} AT (VERSION => {version})"
    return f"{table} AT (VERSION => {version})" + (tail or "")


def rewrite_time_travel(query: str) -> str:
    """Turn ``table@7`` into ``table AT (VERSION => 7)`` outside string literals."""
    out, i, n = [], 0, len(query)
    while i < n:
        ch = query[i]
        if ch in ("'", '"'):
            j = i + 1
            while j < n:
                if query[j] == ch:
                    if j + 1 < n and query[j + 1] == ch:  # escaped quote
                        j += 2
                        continue
                    break
                j += 1
            out.append(query[i : j + 1])
            i = j + 1
            continue
        j = i
        while j < n and query[j] not in ("'", '"'):
            j += 1
        out.append(_TIME_TRAVEL.sub(_time_travel, query[i:j]))
        i = j
    return "".join(out)
