"""State and helpers shared by the CLI modules.

Kept apart from `dataengine.cli` so sub-command modules see the same state whether the
CLI runs as the `dataengine` script or as `python -m dataengine.cli` (where cli.py is
`__main__` and a second import of it would hold a second, empty state).
"""

from __future__ import annotations

from rich.table import Table

from dataengine.core.progress import console

DEFAULT_WAREHOUSE = "./warehouse"


class _State:
    warehouse_path: str = DEFAULT_WAREHOUSE


state = _State()


def _open():
    from dataengine.warehouse import Warehouse

    return Warehouse(state.warehouse_path)


def _out(text) -> None:
    from rich.console import Console

    Console().print(text)


def _print_arrow(result, limit: int = 50) -> None:
    t = Table(show_lines=False)
    for name in result.column_names:
        t.add_column(name, overflow="fold", max_width=60)
    for row in result.slice(0, limit).to_pylist():
        t.add_row(*[_cell(v) for v in row.values()])
    _out(t)
    if result.num_rows > limit:
        console.print(f"({result.num_rows:,} rows, {limit} shown; use --limit or --format csv)")


def _cell(value) -> str:
    if value is None:
        return "NULL"
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
