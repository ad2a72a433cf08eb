"""`dataengine report TARGET --html FILE`, `dataengine runs` and `dataengine ui`."""

from __future__ import annotations

import typer

from dataengine import api
from dataengine.cli.common import open_cli_warehouse, out, print_arrow, warn
from dataengine.core.progress import console


def report(
    target: str = typer.Argument(..., help="TABLE[@SNAPSHOT], BLEND@VERSION or a run id "
                                            "(prefix table:, blend: or run: when a name is ambiguous)"),
    html: str = typer.Option(..., "--html", help="write the report to this HTML file (self-contained, offline)"),
):
    """Write the report of a table, a blend version or a run (pipeline or training) as one HTML file with plots."""
    path = api.write_report(open_cli_warehouse(), target, html)
    out(f"report written to {path}")


def runs(limit: int = typer.Option(50, help="rows shown")):
    """Committed pipeline runs, newest first (`dataengine report RUN_ID --html FILE` draws one)."""
    print_arrow(api.list_runs(open_cli_warehouse()), limit)


def ui(
    port: int = typer.Option(8765, "--port", "-p", help="TCP port (0: any free port)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind; anything but loopback exposes the "
                                                          "warehouse to the network and must be asked for here"),
    log: bool = typer.Option(False, "--log", help="print one line per request"),
):
    """Serve a read-only web UI of the warehouse: tables, blends, runs, their reports, and a SQL box."""
    from dataengine.ui.server import is_loopback, make_server, serve

    wh = open_cli_warehouse()
    if not is_loopback(host):
        warn(f"binding {host}: anyone who can reach this address can read the whole warehouse")
    try:
        server = make_server(wh, host, port, log=console.print if log else None)
    except OSError as exc:
        raise api.DataEngineError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    serve(server, on_ready=lambda url: out(f"serving {wh.config.root} read-only at {url} (Ctrl-C stops)"))
    out("stopped")


def register(app: typer.Typer) -> None:
    for fn in (report, runs, ui):
        app.command()(fn)
