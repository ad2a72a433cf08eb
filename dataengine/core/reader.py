"""Readers turn one input file into document batches (Arrow tables in the document schema).

A reader never raises on one bad record: it counts it in ``self.skipped`` by reason and
goes on, so the rest of the file is still read. A file it cannot read at all (not the
format it claims, corrupt beyond recovery) is reported with :meth:`Reader.fail_file`: one
line naming the file and the cause. The counts and lines are stored with the run.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar, Iterator

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, ValidationError

from dataengine.core.errors import PipelineConfigError


class ReaderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reader:
    format: ClassVar[str] = ""
    Options: ClassVar[type[ReaderOptions]] = ReaderOptions

    def __init__(self, options: dict | None = None):
        try:
            self.options = self.Options(**(options or {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise PipelineConfigError(f"reader {self.format!r}: bad option {problems}") from None
        self.skipped: Counter[str] = Counter()
        self.file_errors: list[str] = []

    def fail_file(self, path: str, cause: str, reason: str = "unreadable_file") -> None:
        """Record that ``path`` could not be read (or not to its end, or held nothing):
        counted under ``reason``, and one line naming the file and the cause."""
        self.skipped[reason] += 1
        self.file_errors.append(f"{path}: {cause}")

    def columns(self, path: str) -> list[str]:
        """Columns the documents of ``path`` will have (for validating a pipeline up front)."""
        raise NotImplementedError

    def plan(self, files: list[str]) -> list[str]:
        """Called once when a run is planned, before any shard: fix what every shard must share
        (e.g. an inferred schema) and return the columns the documents will have.

        By default the columns of the first file that opens: one bad file must not stop the
        run here (its shard reports it); when none of the first few opens, that is the error."""
        problems = []
        for path in files[:5]:
            try:
                return self.columns(path)
            except (OSError, ValueError, EOFError, pa.ArrowException) as exc:
                text = " ".join(str(exc).split()) or type(exc).__name__
                problems.append(f"{path}: {text}")
        raise PipelineConfigError("no readable input file: " + "; ".join(problems))

    def read(self, path: str, batch_size: int) -> Iterator[pa.Table]:
        raise NotImplementedError

    def __getstate__(self):
        return {"options": self.options, "planned": getattr(self, "planned", None)}

    def __setstate__(self, state):
        self.options = state["options"]
        self.planned = state.get("planned")
        self.skipped = Counter()
        self.file_errors = []


def open_input(path: str, mode: str = "rb"):
    """Open a local path or fsspec URL, transparently decompressing .gz/.zst/.bz2."""
    import fsspec

    return fsspec.open(path, mode, compression="infer").open()
