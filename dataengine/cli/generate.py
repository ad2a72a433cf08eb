"""`dataengine generate RECIPE --from SQL --to TABLE --backend ... [--model ...]`.

One sub-command per recipe (nemotron_cc, mind, beyondweb), all with the same options;
recipe-specific parameters go through ``--param key=value`` (values parsed as YAML).
"""

from __future__ import annotations

from typing import List, Optional

import typer

from dataengine.core.errors import DataEngineError

generate_app = typer.Typer(
    no_args_is_help=True,
    help="Generate synthetic data with an LLM: nemotron_cc, mind, beyondweb (one snapshot per run).",
)


def _generate(
    recipe_name: str,
    from_: str,
    to: str,
    backend: str,
    model: Optional[str],
    base_url: Optional[str],
    api_key: Optional[str],
    concurrency: Optional[int],
    timeout: Optional[float],
    retries: Optional[int],
    batch_size: Optional[int],
    max_tokens: Optional[int],
    temperature: Optional[float],
    top_p: Optional[float],
    seed: int,
    param: List[str],
    mode: str,
    batch_rows: int,
    no_cache: bool,
    quiet: bool,
) -> None:
    import yaml

    from dataengine.cli.common import _open, _out
    from dataengine.core.registry import get_stage
    from dataengine.generators.backends.base import SamplingParams
    from dataengine.api.generation import default_cache_path, run_generate

    wh = _open()
    params: dict = {"backend": backend, "seed": seed}
    if model:
        params["model"] = model
    options = {}
    for key, value in (("base_url", base_url), ("api_key", api_key), ("concurrency", concurrency),
                       ("timeout", timeout), ("retries", retries)):
        if value is not None:
            options[key] = value
    if batch_size is not None:
        options["batch_size"] = batch_size
    params["backend_options"] = options
    sampling = {k: v for k, v in (("max_tokens", max_tokens), ("temperature", temperature), ("top_p", top_p)) if v is not None}
    for item in param:
        key, eq, value = item.partition("=")
        if not eq:
            raise DataEngineError(f"--param {item!r} is not key=value")
        params[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    if sampling:
        params["sampling"] = SamplingParams(**{**dict(params.get("sampling") or {}), **sampling}).model_dump()
    if not no_cache:
        params.setdefault("cache_path", default_cache_path(wh))
    recipe = get_stage(recipe_name)(params)
    result = run_generate(wh, recipe, from_, to, mode=mode, batch_rows=batch_rows, progress=not quiet)
    _out(
        f"[green]committed[/green] {result.rows:,} synthetic rows to {result.output_table} as snapshot "
        f"{result.snapshot_id}: {result.kept:,} kept, {result.errors:,} with errors; {result.requests:,} requests, "
        f"{result.sent:,} sent to the model, {result.requests - result.sent:,} from the cache; "
        f"{result.completion_tokens:,} tokens generated ({result.tokens_per_second:,.1f} tok/s, {result.seconds:.1f}s)"
    )
    if result.errors:
        _out(f"[yellow]{result.errors:,} row(s) failed;[/yellow] re-run the same command to fill them in (only failed requests are sent)")


def _register(recipe_name: str, help_text: str) -> None:
    @generate_app.command(recipe_name, help=help_text)
    def command(
        from_: str = typer.Option(..., "--from", help="SQL (or a table name) giving the source rows (id, text, ...)"),
        to: str = typer.Option(..., "--to", help="output table for the synthetic rows"),
        backend: str = typer.Option("transformers", help="transformers | http | vllm"),
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
    ):
        _generate(recipe_name, from_, to, backend, model, base_url, api_key, concurrency, timeout, retries,
                  batch_size, max_tokens, temperature, top_p, seed, param, mode, batch_rows, no_cache, quiet)


_register("nemotron_cc", "Nemotron-CC rephrasing routed by a quality column (--param quality_column=..., threshold=...).")
_register("mind", "MIND math dialogues in seven conversation styles (--param styles=[...], mix_raw=prepend).")
_register("beyondweb", "BeyondWeb formats from high-quality seeds (--param 'format_mix={qa: 2, list: 1}').")
