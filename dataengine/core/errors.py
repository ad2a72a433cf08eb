"""Errors that the CLI turns into one clear line (no traceback)."""


class DataEngineError(Exception):
    """Base for every error a user can fix: bad config, bad SQL, missing table or file."""


class PipelineConfigError(DataEngineError):
    """The pipeline definition is invalid; raised before any work starts."""


class WarehouseError(DataEngineError):
    """The warehouse is missing, unreadable, or a query against it failed."""


class StageError(DataEngineError):
    """A stage could not be set up (missing model file, wrong labels, ...)."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (DuckDB errors span several)."""
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines) if lines else exc.__class__.__name__


class CommitConflict(WarehouseError):
    """Another writer changed a table this commit replaces since the run read it; nothing was committed."""


class RunAlreadyCommitted(WarehouseError):
    """The run id is already in ``dataengine.runs`` (a concurrent copy of the same run won)."""

    def __init__(self, run_id: str, snapshot_id: int | None):
        super().__init__(f"run {run_id} was already committed as snapshot {snapshot_id}")
        self.run_id = run_id
        self.snapshot_id = snapshot_id
