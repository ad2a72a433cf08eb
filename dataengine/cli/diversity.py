"""`dataengine diversity TABLE|BLEND@V|"SQL" [--by COLUMN] [--proxy MODEL] [--format table|json]`.

Prints, per group, ``n`` (rows with a gradient), ``g_vendi`` and ``vendi_embedding``. With
``--format json`` and no ``--by`` the output is one object with exactly those keys; with
``--by`` it is an object mapping each group value to such an object.
"""

from __future__ import annotations

import json
import math
from typing import Optional

import typer
from rich.table import Table

from dataengine import api
from dataengine.cli.common import open_cli_warehouse, out, warn
from dataengine.core.errors import DataEngineError


def diversity(
    source: str = typer.Argument(..., help="a table (t, t@N), a blend version NAME@V, or SQL in quotes"),
    by: Optional[str] = typer.Option(None, "--by", help="group by this column (`component` for a blend version)"),
    proxy: Optional[str] = typer.Option(None, "--proxy", help="gradient model: smollm2 (default), a model folder "
                                                               "(HF or `dataengine train`), a .gguf"),
    format: str = typer.Option("table", "--format", "-f", help="table | json"),
    q: float = typer.Option(1.0, "--q", help="order of the Vendi scores (1: Shannon; 2; inf; 0: rank)"),
    no_embedding: bool = typer.Option(False, "--no-embedding", help="skip the MiniLM embedding Vendi score"),
    column: str = typer.Option("proxy_grad", help="gradient column to use when the rows have one and no --proxy is given"),
    sample: Optional[int] = typer.Option(None, help="score a seeded sample of this many rows (per blend component)"),
    record: bool = typer.Option(False, "--record", help="store the scores with the blend version (`blend show` prints them)"),
    params: Optional[str] = typer.Option(None, help="proxy parameters, comma separated: last_block, head, or globs "
                                                    "(default last_block,head)"),
    dim: int = typer.Option(1024, help="projected gradient dimensions"),
    seed: int = typer.Option(0, help="projection (and sample) seed"),
    max_tokens: int = typer.Option(512, help="tokens per sample"),
    batch_size: int = typer.Option(8, help="rows per vmap call"),
    text_column: str = typer.Option("text"),
    prompt_column: Optional[str] = typer.Option(None, help="with --response-column: loss on the response given the prompt"),
    response_column: Optional[str] = typer.Option(None),
    messages_column: Optional[str] = typer.Option(None, help="conversations: loss on the last assistant message"),
    gpu: bool = typer.Option(False, "--gpu", help="run the proxy and the embedder on CUDA"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """G-Vendi (gradient diversity under a proxy LM) and embedding Vendi, per group."""
    if format not in ("table", "json"):
        raise DataEngineError(f"unknown format {format!r}: use table or json")
    report = api.diversity(
        open_cli_warehouse(), source, by=by, proxy=proxy, column=column, embedding=not no_embedding, q=q,
        params=[p.strip() for p in params.split(",") if p.strip()] if params else None, dim=dim, seed=seed,
        max_tokens=max_tokens, batch_size=batch_size, text_column=text_column, prompt_column=prompt_column,
        response_column=response_column, messages_column=messages_column, sample=sample, record=record, gpu=gpu,
        progress=not quiet,
    )
    for reason, count in report.skipped.items():
        warn(f"{count:,} row(s) skipped: {reason}")
    if format == "json":
        payload = report.groups["all"] if by is None else report.groups
        out(json.dumps(payload, indent=2, default=_number))
        return
    t = Table(title=f"diversity of {source} (q={q:g}; gradients: {report.gradients})")
    for c in ("group", "n", "g_vendi", "vendi_embedding"):
        t.add_column(c, justify="left" if c == "group" else "right")
    for group, r in report.groups.items():
        t.add_row(group, f"{r['n']:,}", _fmt(r["g_vendi"]), _fmt(r["vendi_embedding"]))
    out(t)
    if report.recorded:
        out(f"recorded with blend version {source} (see `dataengine blend show {source}`)")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
