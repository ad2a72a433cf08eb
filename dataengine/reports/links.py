"""Where a report links to: the pages of ``dataengine ui``, or nothing for a file on its own.

A report written to a file stands alone, so it links only to files that exist (a training
run's own report); in the UI every table, snapshot, blend version and run is a page.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote


class Links:
    """Links of a stand-alone report file: none, except to files on disk."""

    def table(self, name: str, snapshot: int | None = None) -> str | None:
        return None

    def blend(self, ref: str) -> str | None:
        return None

    def run(self, run_id: str) -> str | None:
        return None

    def training_run(self, run_id: str, report_path: str | None = None) -> str | None:
        if report_path and Path(report_path).exists():
            return Path(report_path).resolve().as_uri()
        return None


class UiLinks(Links):
    """Links between the pages of the local web UI."""

    def table(self, name: str, snapshot: int | None = None) -> str | None:
        return f"/table/{quote(name)}" + (f"@{int(snapshot)}" if snapshot is not None else "")

    def blend(self, ref: str) -> str | None:
        return f"/blend/{quote(ref)}"

    def run(self, run_id: str) -> str | None:
        return f"/run/{quote(run_id)}"

    def training_run(self, run_id: str, report_path: str | None = None) -> str | None:
        return f"/run/{quote(run_id)}"
