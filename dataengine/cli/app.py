"""The `dataengine` command line: parse, call :mod:`dataengine.api`, print.

Every user error ends in one line on stderr: usage errors (an unknown command or flag)
with the usage hint and exit code 2, everything else with exit code 1. No tracebacks.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from dataengine.cli.common import state
from dataengine.core.errors import DataEngineError, one_line
from dataengine.core.progress import console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="dataengine: a lakehouse for LLM training data.",
)


@app.callback()
def _global(
    warehouse: Optional[str] = typer.Option(
        None, "--warehouse", "-w", envvar="DATAENGINE_WAREHOUSE", help="warehouse folder (default ./warehouse)"
    ),
):
    state.warehouse_path = warehouse


def _register() -> None:
    """Attach every command group (each module holds one group's commands)."""
    from dataengine.cli import blend, dedup, diversity, generate, ingest, pipelines, quality, report, train, translate, warehouse

    for module in (warehouse, pipelines, train, report):
        module.register(app)
    app.add_typer(ingest.ingest_app, name="ingest")
    app.add_typer(quality.classifier_app, name="classifier")
    app.add_typer(quality.quality_app, name="quality")
    app.add_typer(dedup.dedup_app, name="dedup")
    app.command("generate")(generate.generate)
    app.command("translate")(translate.translate)
    app.command("diversity")(diversity.diversity)
    app.add_typer(blend.blend_app, name="blend")
    app.add_typer(blend.tokenizer_app, name="tokenizer")


_register()


def _usage_error(exc) -> int:
    """One or two lines: what was wrong, and how to get help."""
    ctx = getattr(exc, "ctx", None)
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    console.print(f"[red]error:[/red] {_escape(message)}", highlight=False, soft_wrap=True)
    if ctx is not None:
        console.print(f"{_escape(ctx.get_usage())}; try '{ctx.command_path} --help'", highlight=False, soft_wrap=True)
    return getattr(exc, "exit_code", 2)


def _escape(text: str) -> str:
    from rich.markup import escape  # messages hold [brackets]: extras, SQL, lists

    return escape(text)


def main() -> None:
    """Entry point: user errors print one line, no traceback."""
    import duckdb

    try:
        app(standalone_mode=False, prog_name="dataengine")
    except DataEngineError as exc:
        console.print(f"[red]error:[/red] {_escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except duckdb.Error as exc:
        console.print(f"[red]error:[/red] {_escape(one_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        console.print("interrupted; re-run the same command to resume")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except typer.TyperException as exc:  # typer's bundled click: usage errors, no-args help
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # the command's help text
            sys.exit(2)
        if hasattr(exc, "exit_code") and hasattr(exc, "format_message"):
            sys.exit(_usage_error(exc))
        raise


if __name__ == "__main__":
    main()
