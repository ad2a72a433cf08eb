"""`dataengine train`: pretrain a decoder on a blend version (one process or under torchrun).

Single process:  dataengine train --blend web@3 --config train.yaml
Several:         torchrun --nproc_per_node=8 -m dataengine.cli train --blend web@3 --config train.yaml
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import List, Optional

import typer

from dataengine.core.errors import DataEngineError


def _parse_overrides(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DataEngineError(f"--set needs key=value (dotted keys, YAML values), got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _tokenizer_for(manifest: dict, warehouse):
    """The exact tokenizer the blend was exported with (by hash), for the model folder."""
    from dataengine.warehouse.tokenizers import load_tokenizer

    for spec in (manifest["tokenizer"], f"{manifest['tokenizer']}@{manifest['tokenizer_hash']}"):
        try:
            tok = load_tokenizer(spec, warehouse)
        except DataEngineError:
            continue
        if tok.hash == manifest["tokenizer_hash"]:
            return tok
    raise DataEngineError(f"tokenizer {manifest['tokenizer']} ({manifest['tokenizer_hash']}) of the export is not available")


def train_command(
    blend: str = typer.Option(..., "--blend", help="blend version NAME@V (NAME alone: the latest version)"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="training config YAML (trainer/config.py)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="run folder (default WAREHOUSE/training/NAME@V-<config hash>)"),
    tokenizer: Optional[str] = typer.Option(None, help="export with this tokenizer (default: the version's)"),
    steps: Optional[int] = typer.Option(None, help="override the config's steps"),
    set_: List[str] = typer.Option([], "--set", help="config override, e.g. optimizer.name=muon (repeatable)"),
    force: bool = typer.Option(False, "--force", help="resume even if the checkpoint used another blend/tokenizer"),
    fresh: bool = typer.Option(False, "--fresh", help="ignore existing checkpoints in the run folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Train a Llama-style model on exactly the tokens of a blend version; resumes from the run folder."""
    from dataengine.cli.common import _open, _out
    from dataengine.trainer.config import load_config
    from dataengine.trainer.data import load_manifest
    from dataengine.trainer.distributed import barrier, init_distributed
    from dataengine.trainer.loop import train
    from dataengine.trainer.runs import record_run
    from dataengine.warehouse.blends import Blends
    from dataengine.warehouse.export import export_version

    overrides = _parse_overrides(set_)
    if steps is not None:
        overrides["steps"] = steps
    if quiet:
        overrides["progress"] = False
    cfg = load_config(config, overrides)
    started = dt.datetime.now(dt.timezone.utc)
    env = init_distributed(cfg.runtime.device)  # before the export: rank 0 exports, the others wait
    wh = _open()
    blends = Blends(wh)
    if env.is_main:
        manifest_path = export_version(blends, blend, tokenizer)
    barrier(env)
    if not env.is_main:
        manifest_path = export_version(blends, blend, tokenizer)  # a cache hit now
    manifest = load_manifest(manifest_path)
    tok = _tokenizer_for(manifest, wh)
    if output is None:
        cfg_hash = hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:8]
        output = Path(wh.config.root) / "training" / f"{manifest['blend']}@{manifest['version']}-{cfg_hash}"
    summary = train(manifest, cfg, output, tok.tokenizer, blend_ref=f"{manifest['blend']}@{manifest['version']}",
                    force=force, resume=not fresh)
    if summary is None:  # not rank 0
        return
    record_run(wh, summary, cfg.model_dump(mode="json"), started)
    _out(
        f"trained {summary['parameters']:,}-parameter model on {summary['blend_ref']} for {summary['steps']} steps "
        f"({summary['tokens']:,} tokens): loss {summary['final_loss']:.4f}, validation {summary['final_val_loss']:.4f} "
        f"(unigram baseline {summary['unigram_val_loss']:.4f}); model {summary['model_path']}; "
        f"report {summary['report_path']}"
    )
