"""Which SQL a user may run: the checks behind every SQL text that comes from a user.

DuckDB's own switches do not stop everything: with the lake attached read-only and the
configuration locked, ``USE memory; DETACH lake; ATTACH '...' AS w`` still re-attaches
the catalog read-write, and a plain SELECT can call table functions that delete files
(``ducklake_delete_orphaned_files``) or run SQL given as a string (``query``,
``sqlite_query``). So user SQL is checked before it runs:

* statement types: reads are SELECT / EXPLAIN only (SHOW, DESCRIBE, SUMMARIZE, FROM-first
  and PIVOT-free queries parse as SELECT); deliberate writes add INSERT, UPDATE, DELETE,
  CREATE, ALTER, DROP, MERGE. Never ATTACH, DETACH, USE/SET, INSTALL/LOAD, COPY, EXPORT,
  CALL, PRAGMA, transactions or prepared statements;
* table functions in a read: only those on :data:`READ_TABLE_FUNCTIONS` (file readers,
  generators, catalog listings, DuckLake's read-only views), found in DuckDB's own parse
  tree (``json_serialize_sql``);
* functions that run SQL from a string or change the lake or the files
  (:data:`FORBIDDEN_CALLS`), found in DuckDB's own tokens, in every statement.

:func:`lock_down` then locks the connection: no extension install or load, no
configuration change, and in a sandbox no file outside the given paths.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import duckdb

from dataengine.core.errors import DataEngineError, one_line


class UnsafeSQL(DataEngineError):
    """User SQL that is not allowed on this path (it names what and why)."""


_T = duckdb.StatementType
READ_STATEMENTS = {_T.SELECT, _T.EXPLAIN}
WRITE_STATEMENTS = READ_STATEMENTS | {_T.INSERT, _T.UPDATE, _T.DELETE, _T.CREATE, _T.ALTER, _T.DROP, _T.MERGE_INTO}

#: Table functions a read may use: they only read (files, the catalog, generated rows).
READ_TABLE_FUNCTIONS = frozenset(
    """
    read_parquet parquet_scan parquet_metadata parquet_schema parquet_file_metadata parquet_kv_metadata
    read_csv read_csv_auto sniff_csv read_json read_json_auto read_ndjson read_ndjson_auto
    read_json_objects read_ndjson_objects read_text read_blob glob
    range generate_series unnest repeat repeat_row json_each json_tree
    duckdb_tables duckdb_columns duckdb_schemas duckdb_views duckdb_databases duckdb_functions
    duckdb_types duckdb_constraints duckdb_indexes duckdb_keywords duckdb_sequences duckdb_dependencies
    pragma_table_info pragma_show pragma_version pragma_database_size pragma_platform pragma_collations
    snapshots ducklake_snapshots table_info ducklake_table_info list_files ducklake_list_files
    table_changes ducklake_table_changes table_insertions ducklake_table_insertions
    table_deletions ducklake_table_deletions current_snapshot ducklake_current_snapshot
    last_committed_snapshot ducklake_last_committed_snapshot settings ducklake_settings
    options ducklake_options
    """.split()
)

#: Functions that execute SQL given as text, attach databases, or change the lake or its
#: files: refused in every statement, reads and writes alike.
FORBIDDEN_CALLS = frozenset(
    """
    query query_table json_execute_serialized_sql
    sqlite_query sqlite_attach postgres_query postgres_execute postgres_attach mysql_query mysql_execute
    add_data_files cleanup_old_files delete_orphaned_files merge_adjacent_files rewrite_data_files
    flush_inlined_data expire_snapshots set_option set_commit_message commit
    checkpoint force_checkpoint enable_logging disable_logging truncate_duckdb_logs
    install load
    """.split()
)

_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\s+", re.IGNORECASE)


@dataclass(frozen=True)
class CheckedStatement:
    kind: str  # "select", "insert", ...
    text: str


def check_sql(query: str, write: bool = False) -> list[CheckedStatement]:
    """Raise :class:`UnsafeSQL` unless every statement of ``query`` is allowed; returns them.

    ``write``: the deliberate-write path (DML/DDL on lake tables); otherwise reads only.
    """
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        try:
            statements = con.extract_statements(query)
        except duckdb.Error as exc:
            raise UnsafeSQL(one_line(exc)) from None
        if not statements:
            raise UnsafeSQL("no SQL statement given")
        allowed = WRITE_STATEMENTS if write else READ_STATEMENTS
        checked = []
        for st in statements:
            kind = st.type.name.lower().replace("_", " ")
            if st.type not in allowed:
                hint = "" if write else " (writes go through `dataengine sql --write -m MESSAGE`)"
                raise UnsafeSQL(f"{kind.upper()} statements are not allowed here{hint}: {_short(st.query)}")
            _check_calls(st.query)
            if st.type in READ_STATEMENTS:
                _check_table_functions(con, _EXPLAIN.sub("", st.query) if st.type == _T.EXPLAIN else st.query)
            checked.append(CheckedStatement(kind, st.query))
        return checked
    finally:
        con.close()


def _check_calls(text: str) -> None:
    """Refuse any forbidden function called by name (also quoted or catalog-qualified)."""
    tokens = duckdb.tokenize(text)
    for (pos, _kind), (next_pos, next_kind) in zip(tokens, tokens[1:]):
        if next_kind != duckdb.token_type.operator or not text[next_pos:].startswith("("):
            continue
        name = text[pos:next_pos].strip().strip('"').lower()
        bare = name.removeprefix("ducklake_")
        if name in FORBIDDEN_CALLS or bare in FORBIDDEN_CALLS:
            raise UnsafeSQL(f"function {name}() is not allowed in user SQL: it runs SQL from text or changes the lake or its files")


def _check_table_functions(con, select: str) -> None:
    """Every table function of a SELECT (anywhere in it, subqueries included) must only read."""
    literal = "'" + select.replace("'", "''") + "'"  # no bound parameter: it would import pandas
    raw = con.execute(f"SELECT json_serialize_sql({literal})").fetchone()[0]
    tree = json.loads(raw)
    if tree.get("error"):
        raise UnsafeSQL(f"cannot check this statement: {tree.get('error_message', 'unknown error')}")
    for name in _table_functions(tree):
        if name.lower() not in READ_TABLE_FUNCTIONS:
            raise UnsafeSQL(f"table function {name}() is not allowed in a read query")


def _table_functions(node) -> list[str]:
    found = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "TABLE_FUNCTION" and isinstance(item.get("function"), dict):
                found.append(str(item["function"].get("function_name", "")))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: Settings only a new instance can take: open user-SQL connections with these.
LOCKED_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_persistent_secrets": False,
}


def locked_memory_connection():
    """An in-memory DuckDB for user SQL over registered Arrow data (e.g. a filter predicate):
    no files, no extensions, configuration locked."""
    con = duckdb.connect(config=dict(LOCKED_CONFIG))
    lock_down(con, sandbox=True)
    return con


def lock_down(con, allowed_directories: list[str] | None = None, allowed_paths: list[str] | None = None,
              sandbox: bool = False) -> None:
    """Lock a connection that will run user SQL; call after everything it needs is attached.

    No extension can be installed or loaded from here on and no setting changed
    (``lock_configuration``). ``sandbox`` also turns off access to every file outside
    ``allowed_directories`` / ``allowed_paths`` (``enable_external_access=false``).
    """
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    if sandbox:
        if allowed_directories:
            con.execute(f"SET allowed_directories = {_list_literal(allowed_directories)}")
        if allowed_paths:
            con.execute(f"SET allowed_paths = {_list_literal(allowed_paths)}")
        con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _list_literal(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"
