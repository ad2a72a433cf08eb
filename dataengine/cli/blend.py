"""`dataengine blend ...` and `dataengine tokenizer ...` commands."""

from __future__ import annotations

from typing import List, Optional

import typer
from rich.table import Table

from dataengine import api
from dataengine.cli.common import diversity_table, open_cli_warehouse, out, print_arrow, version_table, warn
from dataengine.core.errors import DataEngineError

blend_app = typer.Typer(no_args_is_help=True, help="Define, freeze, inspect and export blends.")
tokenizer_app = typer.Typer(no_args_is_help=True, help="Train and list tokenizers.")


@blend_app.command("create")
def create(
    name: Optional[str] = typer.Argument(None, help="blend name (or give --file)"),
    component: List[str] = typer.Option([], "--component", "-c", help="name=SQL:weight[:max_epochs], repeatable"),
    file: Optional[str] = typer.Option(None, "--file", "-f", help="blend YAML (name, components, phases)"),
    description: str = typer.Option("", help="what this blend is for"),
    replace: bool = typer.Option(False, help="store a new revision of an existing blend"),
    reasoning: List[str] = typer.Option([], "--reasoning",
                                        help="COMPONENT=on|off: a 'detailed thinking on/off' system line on its rows"),
):
    """Create a blend from --component specs or a YAML file (SQL is checked now).

    Components return the columns of one row shape: id, text (pretraining); id, messages (chat);
    prompt, chosen, rejected (preference); prompt, answer, reward_kind (verifiable)."""
    wh = open_cli_warehouse()
    toggles = {}
    for item in reasoning:
        comp, sep, mode = item.partition("=")
        if not sep or mode not in ("on", "off"):
            raise DataEngineError(f"--reasoning needs COMPONENT=on or COMPONENT=off, got {item!r}")
        toggles[comp] = mode
    if file:
        definition = api.read_blend_file(file)
        revision = api.create_blend(wh, definition, replace=replace, reasoning=toggles or None)
        out(f"blend {definition.name} revision {revision}: {len(definition.components)} component(s)")
        return
    if not name or not component:
        raise DataEngineError("give NAME and at least one --component name=SQL:weight, or --file")
    revision = api.create_blend(wh, name, component, description=description, replace=replace,
                                reasoning=toggles or None)
    out(f"blend {name} revision {revision}: {len(component)} component(s)")


@blend_app.command("freeze")
def freeze(
    name: str,
    tokenizer: str = typer.Option("gpt2", help="gpt2, a tokenizer.json path, or a warehouse tokenizer name"),
    target_tokens: Optional[int] = typer.Option(None, help="token budget, for effective epochs and cap warnings"),
    workers: int = typer.Option(1, help="tokenization worker processes"),
    g_vendi: bool = typer.Option(False, "--g-vendi", help="also measure and record G-Vendi per component "
                                                         "(`dataengine diversity NAME@V --by component --record`)"),
    proxy: Optional[str] = typer.Option(None, "--proxy", help="with --g-vendi: the gradient model (default smollm2)"),
):
    """Resolve a blend at the current snapshot into an immutable version."""
    result = api.freeze_blend(open_cli_warehouse(), name, tokenizer=tokenizer, target_tokens=target_tokens,
                              workers=workers, g_vendi=g_vendi, proxy=proxy)
    out(version_table(result))
    if result.get("diversity"):
        out(diversity_table(result))
    for w in result["warnings"]:
        warn(w)
    out(f"frozen {name}@{result['version']} (snapshot {result['snapshot_id']}, content {result['content_hash']})")


@blend_app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME@V (or NAME for the latest version)"),
    html: Optional[str] = typer.Option(None, "--html", help="also write the composition as an HTML report"),
):
    """Show a blend version: snapshot, components, counts, hash."""
    wh = open_cli_warehouse()
    v = api.blend_version(wh, ref)
    out(version_table(v))
    out(f"content hash {v['content_hash']}; {v['rows']:,} rows, {v['tokens']:,} tokens; created {v['created_at']}")
    if v.get("diversity"):
        out(diversity_table(v))
    for w in v["warnings"]:
        warn(w)
    if html:
        out(f"report written to {api.blend_report(wh, ref, html)}")


@blend_app.command("list")
def list_():
    """All blends with their latest revision and versions."""
    t = Table()
    for c in ("blend", "revision", "versions", "latest tokens", "latest hash", "description"):
        t.add_column(c)
    for r in api.list_blends(open_cli_warehouse()):
        t.add_row(r["name"], str(r["revision"]), str(r["versions"]),
                  "-" if r["latest_tokens"] is None else f"{r['latest_tokens']:,}", r["latest_hash"] or "-",
                  r["description"] or "")
    out(t)


@blend_app.command("diff")
def diff(a: str, b: str):
    """Compare two versions: components, counts, ids added/removed."""
    d = api.diff_blends(open_cli_warehouse(), a, b)
    t = Table(title=f"{a} (snapshot {d['snapshots'][0]}) -> {b} (snapshot {d['snapshots'][1]})")
    for c in ("component", "status", "weight", "rows", "tokens", "ids added", "ids removed"):
        t.add_column(c)
    for r in d["components"]:
        t.add_row(r["component"], r["status"], r["weight"], r["rows"], r["tokens"], f"{r['ids_added']:,}", f"{r['ids_removed']:,}")
    out(t)


@blend_app.command("export")
def export(
    ref: str,
    tokenizer: Optional[str] = typer.Option(None, help="default: the tokenizer the version was frozen with"),
    workers: int = typer.Option(1),
):
    """Token shards (Megatron .bin/.idx per component) + manifest; cached."""
    manifest = api.export_blend(open_cli_warehouse(), ref, tokenizer, workers=workers)
    total = sum(c["tokens"] for c in manifest["components"])
    out(f"{manifest['blend']}@{manifest['version']}: {total:,} tokens in {len(manifest['components'])} component(s); "
        f"manifest {manifest['manifest_path']}")


@tokenizer_app.command("train")
def train(
    blend: str = typer.Option(..., "--blend", help="NAME@V to train on"),
    vocab_size: int = typer.Option(..., "--vocab-size"),
    name: Optional[str] = typer.Option(None, help="name to store it under (default: <blend>-bpe<vocab>)"),
):
    """Train a byte-level BPE tokenizer on a blend version's text."""
    stored = api.train_tokenizer(open_cli_warehouse(), blend, vocab_size, name=name)
    out(f"tokenizer {stored.name} ({stored.hash}), vocab {stored.vocab_size:,}")


@tokenizer_app.command("list")
def list_tokenizers():
    """Tokenizers stored in the warehouse."""
    table = api.list_tokenizers(open_cli_warehouse())
    if not table.num_rows:
        out("no tokenizers stored yet (gpt2 is always available)")
        return
    print_arrow(table)
