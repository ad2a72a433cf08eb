"""`dataengine generate RECIPE --from SQL --to TABLE --backend ... [--model ...]`.

RECIPE is any installed recipe (entry-point group ``dataengine.recipes``: nemotron_cc,
mind, beyondweb, fewshot, and those of plugins); recipe parameters go through
``--param key=value`` (values parsed as YAML).

``dataengine generate prismatic --from SQL --to TABLE --rounds 3 --per-round 64 --clusters 16``
runs Prismatic Synthesis instead (:func:`dataengine.api.generate_prismatic`): rounds of
few-shot generation seeded by sparse gradient clusters, keeping the samples whose gradients
land in sparse clusters; G-Vendi per round goes to ``dataengine.prismatic_rounds``.
"""

from __future__ import annotations

from typing import List, Optional

import typer

from dataengine import api
from dataengine.cli.common import open_cli_warehouse, out
from dataengine.core.errors import DataEngineError


def _parse_params(items: list[str]) -> dict:
    import yaml

    params = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise DataEngineError(f"--param {item!r} is not key=value")
        params[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return params


def generate(
    recipe: str = typer.Argument(..., help="recipe: nemotron_cc | mind | beyondweb | fewshot | an installed "
                                            "plugin's | prismatic (Prismatic Synthesis rounds)"),
    from_: str = typer.Option(..., "--from", help="SQL (or a table name) giving the source rows (id, text, ...)"),
    to: str = typer.Option(..., "--to", help="output table for the synthetic rows"),
    backend: str = typer.Option("transformers", help="transformers | http | vllm | an installed plugin's"),
    model: Optional[str] = typer.Option(None, help="model: smollm2 (default for transformers), a folder, a .gguf, or the served name (http)"),
    base_url: Optional[str] = typer.Option(None, help="http: server URL, e.g. http://127.0.0.1:8000/v1"),
    api_key: Optional[str] = typer.Option(None, envvar="DATAENGINE_LLM_API_KEY", help="http: bearer token"),
    concurrency: Optional[int] = typer.Option(None, help="http: requests in flight"),
    timeout: Optional[float] = typer.Option(None, help="http: seconds per request"),
    retries: Optional[int] = typer.Option(None, help="http: retries on 429/5xx/timeouts/connection errors"),
    batch_size: Optional[int] = typer.Option(None, help="transformers: prompts per generate() call"),
    max_tokens: Optional[int] = typer.Option(None, help="most tokens generated per request"),
    temperature: Optional[float] = typer.Option(None, help="0 = greedy"),
    top_p: Optional[float] = typer.Option(None),
    seed: int = typer.Option(0, help="sampling seed, recorded on every row"),
    param: List[str] = typer.Option([], "--param", "-p", help="recipe parameter key=value (YAML value), repeatable"),
    mode: str = typer.Option("overwrite", help="overwrite (a re-run replaces the table: no duplicates) | append"),
    batch_rows: int = typer.Option(64, help="source rows per batch"),
    no_cache: bool = typer.Option(False, "--no-cache", help="do not read or write the request cache"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    rounds: int = typer.Option(3, help="prismatic: generation rounds"),
    per_round: int = typer.Option(64, help="prismatic: requests per round"),
    clusters: int = typer.Option(16, help="prismatic: k of the k-means over gradients"),
    sparse_fraction: float = typer.Option(0.5, help="prismatic: share of clusters (smallest first) that are sparse"),
    shots: int = typer.Option(3, help="prismatic: seed samples per request"),
    proxy: str = typer.Option("smollm2", help="prismatic: gradient proxy model (smollm2, a model folder, a .gguf)"),
    dim: int = typer.Option(1024, help="prismatic: projected gradient dimensions"),
):
    """Generate synthetic data with an LLM: one snapshot per run, full provenance on every row."""
    backend_options = {k: v for k, v in (("base_url", base_url), ("api_key", api_key), ("concurrency", concurrency),
                                         ("timeout", timeout), ("retries", retries), ("batch_size", batch_size))
                       if v is not None}
    sampling = {k: v for k, v in (("max_tokens", max_tokens), ("temperature", temperature), ("top_p", top_p))
                if v is not None}
    if recipe == "prismatic":
        _prismatic(from_, to, backend, model, backend_options, sampling, seed, mode, not no_cache, not quiet,
                   _parse_params(param), rounds=rounds, per_round=per_round, clusters=clusters,
                   sparse_fraction=sparse_fraction, shots=shots, proxy=proxy, dim=dim)
        return
    result = api.generate(open_cli_warehouse(), recipe, from_, to, backend=backend, model=model,
                          backend_options=backend_options, sampling=sampling, seed=seed, mode=mode,
                          batch_rows=batch_rows, cache=not no_cache, progress=not quiet, **_parse_params(param))
    out(
        f"[green]committed[/green] {result.rows:,} synthetic rows to {result.output_table} as snapshot "
        f"{result.snapshot_id}: {result.kept:,} kept, {result.errors:,} with errors; {result.requests:,} requests, "
        f"{result.sent:,} sent to the model, {result.requests - result.sent:,} from the cache; "
        f"{result.completion_tokens:,} tokens generated ({result.tokens_per_second:,.1f} tok/s, {result.seconds:.1f}s)"
    )
    if result.errors and result.errors >= result.rows:
        raise DataEngineError(
            f"every one of the {result.rows:,} rows failed (their errors are in {result.output_table}.error); "
            "fix the cause (server, model, options) and re-run the same command: only failed requests are sent")
    if result.errors:
        out(f"[yellow]{result.errors:,} row(s) failed;[/yellow] re-run the same command to fill them in (only failed requests are sent)")


def _prismatic(source, to, backend, model, backend_options, sampling, seed, mode, cache, progress, params, **options):
    from rich.table import Table

    recipe = params.pop("recipe", "fewshot")
    result = api.generate_prismatic(open_cli_warehouse(), source, to, recipe=recipe, backend=backend, model=model,
                                    backend_options=backend_options, sampling=sampling, seed=seed, mode=mode,
                                    cache=cache, progress=progress, **options, **params)
    t = Table(title=f"Prismatic Synthesis {result.run_id}: G-Vendi per round (dataengine.prismatic_rounds)")
    for c in ("round", "pool", "sparse clusters", "generated", "kept", "G-Vendi before", "G-Vendi after"):
        t.add_column(c, justify="right")
    for r in result.rounds:
        t.add_row(str(r["round"]), f"{r['pool_before']:,} -> {r['pool_after']:,}", str(r["sparse_clusters"]),
                  f"{r['generated']:,}", f"{r['kept']:,}", f"{r['g_vendi_before']:.2f}", f"{r['g_vendi_after']:.2f}")
    out(t)
    out(f"[green]committed[/green] {result.generated:,} generated samples ({result.kept:,} kept: WHERE prismatic_kept) "
        f"to {result.output_table} as snapshot {result.snapshot_id} ({result.seconds:.1f}s)")
