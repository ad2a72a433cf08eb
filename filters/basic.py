"""General-purpose stages that need nothing beyond Arrow and DuckDB."""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from dataengine.core.stage import Stage, StageParams


class TextStats(Stage):
    """Character, word and line counts of the text (vectorised Arrow compute)."""

    name = "text_stats"
    version = "1"
    description = "character, word and line counts of `text`"
    inputs = ("text",)

    class Params(StageParams):
        prefix: str = Field("text", description="column prefix: <prefix>_chars, _words, _lines")

    def output_columns(self):
        p = self.params.prefix
        return {f"{p}_chars": pa.int64(), f"{p}_words": pa.int64(), f"{p}_lines": pa.int64()}

    def process(self, batch: pa.Table) -> pa.Table:
        text = batch.column("text")
        p = self.params.prefix
        chars = pc.utf8_length(text).cast(pa.int64())
        # split on Unicode whitespace (about 2x faster than a \S+ regex, and it knows U+3000)
        trimmed = pc.utf8_trim_whitespace(text)
        pieces = pc.list_value_length(pc.utf8_split_whitespace(trimmed))
        words = pc.if_else(pc.equal(pc.binary_length(trimmed), 0), 0, pieces).cast(pa.int64())
        lines = pc.add(pc.count_substring(text, "\n"), pc.if_else(pc.greater(chars, 0), 1, 0)).cast(pa.int64())
        out = batch
        for name, col in ((f"{p}_chars", chars), (f"{p}_words", words), (f"{p}_lines", lines)):
            if name in out.column_names:
                out = out.drop_columns([name])
            out = out.append_column(name, col)
        return out


class SqlFilter(Stage):
    """Keep rows matching a DuckDB SQL predicate over the batch's columns.

    Selection normally happens later in SQL ("annotate, don't delete"); use this when a
    pipeline must drop rows early (e.g. empty text before an expensive model stage).
    """

    name = "sql_filter"
    version = "1"
    description = "keep rows where a DuckDB SQL predicate holds"
    drops_rows = True

    class Params(StageParams):
        where: str = Field(..., description="SQL predicate, e.g. \"text_words >= 50\"")

    def required_columns(self):
        return ()

    def setup(self) -> None:
        from dataengine.core.errors import StageError
        from dataengine.core.sql_guard import UnsafeSQL, check_sql, locked_memory_connection

        # The predicate is user SQL: one SELECT over the batch, no file or extension access.
        try:
            check_sql(self._query())
        except UnsafeSQL as exc:
            raise StageError(f"sql_filter: {exc}") from None
        self._con = locked_memory_connection()

    def _query(self) -> str:
        return f"SELECT * FROM batch WHERE {self.params.where}"

    def process(self, batch: pa.Table) -> pa.Table:
        self._con.register("batch", batch)
        try:
            return self._con.execute(self._query()).to_arrow_table()
        finally:
            self._con.unregister("batch")


class Throttle(Stage):
    """Sleep per batch. For rehearsing kill-and-resume and watching progress on small data."""

    name = "throttle"
    version = "1"
    description = "sleep a fixed time per batch (testing resume / progress)"

    class Params(StageParams):
        seconds: float = Field(0.1, ge=0, description="seconds to sleep per batch")

    def process(self, batch: pa.Table) -> pa.Table:
        time.sleep(self.params.seconds)
        return batch
