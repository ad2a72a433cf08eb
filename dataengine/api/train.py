"""Training on a blend version: exactly its tokens, resumable, recorded in the warehouse.

    summary = de.train(wh, "web@1", config="train.yaml", overrides={"steps": 2000})

Works in one process or under ``torchrun`` (rank 0 exports the blend, the others wait and
reuse the cached export; only rank 0 returns a summary and records the run).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

from dataengine.core.errors import DataEngineError
from dataengine.warehouse.blends import Blends
from dataengine.warehouse.export import export_version
from dataengine.warehouse.tokenizers import load_tokenizer
from dataengine.api.warehouse import as_warehouse


def parse_overrides(items: list[str]) -> dict:
    """``key=value`` strings (dotted keys, YAML values) -> an overrides dict."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DataEngineError(f"--set needs key=value (dotted keys, YAML values), got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _tokenizer_for(manifest: dict, wh):
    """The exact tokenizer the blend was exported with (by hash), for the model folder."""
    for spec in (manifest["tokenizer"], f"{manifest['tokenizer']}@{manifest['tokenizer_hash']}"):
        try:
            tok = load_tokenizer(spec, wh)
        except DataEngineError:
            continue
        if tok.hash == manifest["tokenizer_hash"]:
            return tok
    raise DataEngineError(f"tokenizer {manifest['tokenizer']} ({manifest['tokenizer_hash']}) of the export is not available")


def default_run_folder(wh, manifest: dict, cfg) -> Path:
    """WAREHOUSE/training/NAME@V-<config hash>: the same config on the same version resumes."""
    cfg_hash = hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:8]
    return Path(wh.config.root) / "training" / f"{manifest['blend']}@{manifest['version']}-{cfg_hash}"


def train(
    wh,
    blend: str,
    config: str | os.PathLike | None = None,
    overrides: dict | None = None,
    output: str | os.PathLike | None = None,
    tokenizer: str | None = None,
    force: bool = False,
    fresh: bool = False,
    progress: bool = True,
) -> dict | None:
    """Pretrain a Llama-style model on a blend version (``NAME@V``; NAME alone: the latest).

    ``config``: a training YAML (see docs/trainer.md); ``overrides``: dotted keys over it.
    Resumes from the run folder's checkpoints unless ``fresh``; ``force`` resumes even if
    the checkpoint used another blend or tokenizer. Returns the run summary (None on
    ranks other than 0), which is also stored in ``dataengine.training_runs``.
    """
    # torch loads here, not when the API is imported (every CLI call imports the API)
    from dataengine.trainer.config import load_config
    from dataengine.trainer.data import load_manifest
    from dataengine.trainer.distributed import barrier, init_distributed
    from dataengine.trainer.loop import train as train_loop
    from dataengine.trainer.runs import record_run

    wh = as_warehouse(wh)
    overrides = dict(overrides or {})
    if not progress:
        overrides["progress"] = False
    cfg = load_config(config, overrides)
    started = dt.datetime.now(dt.timezone.utc)
    env = init_distributed(cfg.runtime.device)  # before the export: rank 0 exports, the others wait
    catalog = Blends(wh)
    if env.is_main:
        manifest_path = export_version(catalog, blend, tokenizer)
    barrier(env)
    if not env.is_main:
        manifest_path = export_version(catalog, blend, tokenizer)  # a cache hit now
    manifest = load_manifest(manifest_path)
    tok = _tokenizer_for(manifest, wh)
    folder = Path(output) if output is not None else default_run_folder(wh, manifest, cfg)
    summary = train_loop(manifest, cfg, folder, tok.tokenizer, blend_ref=f"{manifest['blend']}@{manifest['version']}",
                         force=force, resume=not fresh)
    if summary is None:  # not rank 0
        return None
    from dataengine.api.reports import training_report_file

    training_report_file(summary, folder, cfg.model_dump(mode="json"))
    record_run(wh, summary, cfg.model_dump(mode="json"), started)
    return summary


def training_runs(wh):
    """Every recorded training run (pretraining and later stages), newest last."""
    wh = as_warehouse(wh)
    if not wh.table_exists("dataengine.training_runs"):
        import pyarrow as pa

        return pa.table({"run_id": pa.array([], pa.string())})
    return wh.sql("SELECT * FROM dataengine.training_runs ORDER BY finished_at")
