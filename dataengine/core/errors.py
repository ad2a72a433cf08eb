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
