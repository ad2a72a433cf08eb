"""DuckDB connections that never touch the network.

Extensions (DuckLake, the SQLite and PostgreSQL scanners) load from the files inside their
PyPI packages (``duckdb-extension-*``), never from DuckDB's extension repository, so every
connection works offline and with the exact extension build pinned next to ``duckdb``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from dataengine.core.errors import WarehouseError


def extension_file(name: str) -> Path | None:
    """Path of an extension shipped in its PyPI package (no network, no ~/.duckdb)."""
    import importlib.util

    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(list(spec.submodule_search_locations)[0]) / "extensions" / f"v{duckdb.__version__}"
    path = base / f"{name}.duckdb_extension"
    return path if path.exists() else None


def new_connection() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that never downloads: extensions load from their packages."""
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    return con


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    path = extension_file(name)
    if path is None:
        raise WarehouseError(
            f"DuckDB extension {name!r} is not installed: pip install duckdb-extension-{name.replace('_', '-')}"
        )
    con.execute(f"LOAD '{path}'")


def catalog_extension(catalog: str) -> str | None:
    """The scanner extension a DuckLake catalog spec needs (``sqlite:...``, ``postgres:...``)."""
    if catalog.startswith("sqlite:"):
        return "sqlite_scanner"
    if catalog.startswith("postgres:"):
        return "postgres_scanner"
    return None
