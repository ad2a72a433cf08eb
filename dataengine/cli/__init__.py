"""The `dataengine` command line: a thin face over :mod:`dataengine.api`."""

from __future__ import annotations


def main() -> None:
    """Console-script entry point (``dataengine``)."""
    from dataengine.cli.app import main as run

    run()
