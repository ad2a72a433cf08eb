"""`dataengine blend ...` and `dataengine tokenizer ...` commands."""

from __future__ import annotations

import json
from typing import List, Optional

import typer
from rich.table import Table

from dataengine.core.errors import DataEngineError

blend_app = typer.Typer(no_args_is_help=True, help="Define, freeze, inspect and export blends.")
tokenizer_app = typer.Typer(no_args_is_help=True, help="Train and list tokenizers.")


def _blends():
    from dataengine.cli.common import _open
    from dataengine.warehouse.blends import Blends

    return Blends(_open())


def _out(x) -> None:
    from dataengine.cli.common import _out as out

    out(x)


@blend_app.command("create")
def create(
    name: Optional[str] = typer.Argument(None, help="blend name (or give --file)"),
    component: List[str] = typer.Option([], "--component", "-c", help="name=SQL:weight[:max_epochs], repeatable"),
    file: Optional[str] = typer.Option(None, "--file", "-f", help="blend YAML (name, components, phases)"),
    description: str = typer.Option("", help="what this blend is for"),
    replace: bool = typer.Option(False, help="store a new revision of an existing blend"),
):
    """Create a blend from --component specs or a YAML file (SQL is checked now)."""
    from dataengine.warehouse.blends import _validated, definition_from_yaml, parse_component_spec

    if file:
        definition = definition_from_yaml(file)
    else:
        if not name or not component:
            raise DataEngineError("give NAME and at least one --component name=SQL:weight, or --file")
        comps = [parse_component_spec(c).model_dump() for c in component]
        definition = _validated({"name": name, "description": description, "components": comps})
    revision = _blends().create(definition, replace=replace)
    _out(f"blend {definition.name} revision {revision}: {len(definition.components)} component(s)")


@blend_app.command("freeze")
def freeze(
    name: str,
    tokenizer: str = typer.Option("gpt2", help="gpt2, a tokenizer.json path, or a warehouse tokenizer name"),
    target_tokens: Optional[int] = typer.Option(None, help="token budget, for effective epochs and cap warnings"),
    workers: int = typer.Option(1, help="tokenization worker processes"),
):
    """Resolve a blend at the current snapshot into an immutable version."""
    from dataengine.core.progress import console

    result = _blends().freeze(name, tokenizer=tokenizer, target_tokens=target_tokens, workers=workers)
    _out(_version_table(result))
    for w in result["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")
    _out(f"frozen {name}@{result['version']} (snapshot {result['snapshot_id']}, content {result['content_hash']})")


def _version_table(v: dict) -> Table:
    t = Table(title=f"{v['blend']}@{v['version']}  snapshot {v['snapshot_id']}  tokenizer {v['tokenizer']} ({v['tokenizer_hash']})")
    for c in ("component", "phase", "weight", "max epochs", "rows", "tokens", "effective epochs"):
        t.add_column(c, justify="left" if c in ("component", "phase") else "right")
    for c in v["components"]:
        eff = c.get("effective_epochs")
        t.add_row(
            c["component"], c["phase"], f"{c['weight']:g}", "-" if c["max_epochs"] is None else f"{c['max_epochs']:g}",
            f"{c['rows']:,}", f"{c['tokens']:,}", "-" if eff is None else f"{eff:.2f}",
        )
    return t


@blend_app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME@V (or NAME for the latest version)"),
    html: Optional[str] = typer.Option(None, "--html", help="also write the composition as an HTML report"),
):
    """Show a blend version: snapshot, components, counts, hash."""
    v = _blends().version(ref)
    _out(_version_table(v))
    _out(f"content hash {v['content_hash']}; {v['rows']:,} rows, {v['tokens']:,} tokens; created {v['created_at']}")
    for w in v["warnings"]:
        _out(f"[yellow]warning:[/yellow] {w}")
    if html:
        _out(f"report written to {blend_report(v, html)}")


def blend_report(v: dict, path: str):
    """Blend composition as charts: weights, tokens and rows per component."""
    from dataengine.reports.svg import bar_chart, table_html, write_report

    names = [c["component"] for c in v["components"]]
    total_w = sum(c["weight"] for c in v["components"]) or 1.0
    sections = [
        ("Weights (share of sampled tokens)", bar_chart("weight share", names, [100 * c["weight"] / total_w for c in v["components"]], "%")),
        ("Tokens available", bar_chart("tokens", names, [float(c["tokens"]) for c in v["components"]])),
        ("Documents", bar_chart("rows", names, [float(c["rows"]) for c in v["components"]])),
        ("Components", table_html([{k: c[k] for k in ("component", "phase", "weight", "max_epochs", "rows", "tokens", "effective_epochs")} for c in v["components"]])),
    ]
    title = f"{v['blend']}@{v['version']} (snapshot {v['snapshot_id']}, content {v['content_hash']})"
    return write_report(path, title, sections)


@blend_app.command("list")
def list_():
    """All blends with their latest revision and versions."""
    rows = _blends().list()
    t = Table()
    for c in ("blend", "revision", "versions", "latest tokens", "latest hash", "description"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["name"], str(r["revision"]), str(r["versions"]),
                  "-" if r["latest_tokens"] is None else f"{r['latest_tokens']:,}", r["latest_hash"] or "-", r["description"] or "")
    _out(t)


@blend_app.command("diff")
def diff(a: str, b: str):
    """Compare two versions: components, counts, ids added/removed."""
    d = _blends().diff(a, b)
    t = Table(title=f"{a} (snapshot {d['snapshots'][0]}) -> {b} (snapshot {d['snapshots'][1]})")
    for c in ("component", "status", "weight", "rows", "tokens", "ids added", "ids removed"):
        t.add_column(c)
    for r in d["components"]:
        t.add_row(r["component"], r["status"], r["weight"], r["rows"], r["tokens"], f"{r['ids_added']:,}", f"{r['ids_removed']:,}")
    _out(t)


@blend_app.command("export")
def export(
    ref: str,
    tokenizer: Optional[str] = typer.Option(None, help="default: the tokenizer the version was frozen with"),
    workers: int = typer.Option(1),
):
    """Token shards (Megatron .bin/.idx per component) + manifest; cached."""
    from dataengine.warehouse.export import export_version

    path = export_version(_blends(), ref, tokenizer, workers=workers)
    manifest = json.loads(path.read_text())
    total = sum(c["tokens"] for c in manifest["components"])
    _out(f"{manifest['blend']}@{manifest['version']}: {total:,} tokens in {len(manifest['components'])} component(s); manifest {path}")


@tokenizer_app.command("train")
def train(
    blend: str = typer.Option(..., "--blend", help="NAME@V to train on"),
    vocab_size: int = typer.Option(..., "--vocab-size"),
    name: Optional[str] = typer.Option(None, help="name to store it under (default: <blend>-bpe<vocab>)"),
):
    """Train a byte-level BPE tokenizer on a blend version's text."""
    from dataengine.warehouse.tokenizers import register_tokenizer, train_tokenizer

    blends = _blends()
    v = blends.version(blend)

    def texts():
        for c in v["components"]:
            for batch in blends.iter_component(c["sql"], v["snapshot_id"]):
                yield from (t for t in batch.column("text").to_pylist() if t)

    tok = train_tokenizer(texts(), vocab_size)
    stored = register_tokenizer(blends.wh, name or f"{v['blend']}-bpe{vocab_size}", tok, source=f"{v['blend']}@{v['version']}")
    _out(f"tokenizer {stored.name} ({stored.hash}), vocab {stored.vocab_size:,}")


@tokenizer_app.command("list")
def list_tokenizers():
    """Tokenizers stored in the warehouse."""
    from dataengine.cli.common import _open, _print_arrow

    wh = _open()
    if not wh.table_exists("dataengine.tokenizers"):
        _out("no tokenizers stored yet (gpt2 is always available)")
        return
    _print_arrow(wh.sql("SELECT name, hash, vocab_size, source, created_at FROM dataengine.tokenizers ORDER BY created_at"))
