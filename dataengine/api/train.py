"""Training on a blend version: exactly its tokens (or rows), resumable, recorded in the warehouse.

    summary = de.train(wh, "web@1", config="train.yaml", overrides={"steps": 2000})        # pretraining
    sft = de.train(wh, "chat@1", stage="sft", init=summary["model_path"])                   # post-training
    rm = de.train(wh, "prefs@1", stage="rm", init=sft["model_path"])
    dpo = de.train(wh, "prefs@1", stage="dpo", init=sft["model_path"], overrides={"dpo.loss": "rpo_sq"})
    rl = de.train(wh, "math@1", stage="grpo", init=sft["model_path"])

Pretraining works in one process or under ``torchrun`` (rank 0 exports the blend, the others
wait and reuse the cached export; only rank 0 returns a summary and records the run).
Post-training (``stage`` sft, rm, dpo, grpo) runs in one process (docs/posttraining.md).
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


STAGES = ("pretrain", "sft", "rm", "dpo", "grpo")


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
    stage: str = "pretrain",
    init: str | os.PathLike | None = None,
) -> dict | None:
    """Train on a blend version (``NAME@V``; NAME alone: the latest).

    ``stage``: ``pretrain`` (a Llama-style model from scratch on the version's tokens), or
    post-training from ``init`` on the version's rows: ``sft`` (chat), ``rm`` (reward model,
    preference), ``dpo`` (DPO/IPO/SimPO/RPO, preference) or ``grpo`` (verifiable prompts).
    ``init``: a model folder (a training run's ``model/``), a ``.gguf`` file, ``smollm2``
    (the default) or the ``run_id`` of a recorded training run.
    ``config``: a training YAML (see docs/trainer.md, docs/posttraining.md); ``overrides``:
    dotted keys over it. Resumes from the run folder's checkpoints unless ``fresh``; ``force``
    resumes even if the checkpoint used another blend, tokenizer or init model. Returns the
    run summary (None on ranks other than 0), which is also stored in ``dataengine.training_runs``.
    """
    if stage not in STAGES:
        raise DataEngineError(f"unknown training stage {stage!r}: use {', '.join(STAGES)}")
    if stage != "pretrain":
        return _post_train(wh, blend, stage, init, config, overrides, output, tokenizer, force, fresh, progress)
    if init is not None:
        raise DataEngineError("--init applies to post-training stages (sft, rm, dpo, grpo); pretraining starts "
                              "from a fresh model")
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


def resolve_init(wh, spec: str | os.PathLike | None):
    """``--init`` -> the model folder (and GGUF file) it names; see :func:`train`."""
    from dataengine.core.errors import StageError
    from dataengine.generators.backends.models import DEFAULT_MODEL, resolve_model
    from dataengine.trainer.post.models import InitModel

    spec = str(spec) if spec is not None else DEFAULT_MODEL
    try:
        where = resolve_model(spec)
    except StageError as exc:
        run = _recorded_run_model(wh, spec)
        if run is None:
            raise DataEngineError(f"--init {spec}: {exc}; or give the run_id of a recorded training run") from None
        where = resolve_model(run)
    folder = str(Path(where.folder).resolve())
    return InitModel(spec=spec, folder=folder, gguf_file=where.gguf_file)


def _recorded_run_model(wh, run_id: str) -> str | None:
    if not wh.table_exists("dataengine.training_runs"):
        return None
    rows = wh.sql("SELECT model_path FROM dataengine.training_runs WHERE run_id = ? ORDER BY finished_at DESC LIMIT 1",
                  [run_id]).to_pylist()
    return rows[0]["model_path"] if rows else None


def _post_train(wh, blend, stage, init, config, overrides, output, tokenizer, force, fresh, progress) -> dict:
    from dataengine.core.registry import stages as stage_registry
    from dataengine.trainer.post.config import load_post_config
    from dataengine.trainer.post.data import load_manifest
    from dataengine.trainer.post.loop import train_post
    from dataengine.trainer.runs import record_run

    wh = as_warehouse(wh)
    overrides = dict(overrides or {})
    if not progress:
        overrides["progress"] = False
    cfg = load_post_config(stage, config, overrides)
    started = dt.datetime.now(dt.timezone.utc)
    manifest = load_manifest(export_version(Blends(wh), blend, tokenizer))
    init_model = resolve_init(wh, init)
    if output is None:
        key = json.dumps([stage, init_model.spec, init_model.fingerprint(), cfg.model_dump(mode="json")], sort_keys=True)
        output = (Path(wh.config.root) / "training"
                  / f"{manifest['blend']}@{manifest['version']}-{stage}-{hashlib.sha256(key.encode()).hexdigest()[:8]}")
    scorer = stage_registry.get("reward")(cfg.grpo.reward).score if stage == "grpo" else None
    summary = train_post(stage, manifest, cfg, Path(output), init_model,
                         blend_ref=f"{manifest['blend']}@{manifest['version']}", force=force, resume=not fresh,
                         scorer=scorer)
    record_run(wh, summary, cfg.model_dump(mode="json"), started)
    return summary


def describe_post_training(summary: dict) -> str:
    """One paragraph on a finished post-training run (what the CLI prints)."""
    m = summary.get("stage_metrics") or {}
    parts = [f"{summary['stage']} of {summary['init_model']} on {summary['blend_ref']}: {summary['steps']} steps, "
             f"loss {_num(summary.get('final_loss'))}"]
    if summary.get("final_val_loss") is not None:
        parts.append(f"held-out loss {_num(summary['final_val_loss'])}")
    if m.get("val_accuracy") is not None:
        parts.append(f"held-out accuracy {_num(m['val_accuracy'])}")
    if m.get("val_margin") is not None:
        parts.append(f"held-out margin {_num(m.get('first_val_margin'))} -> {_num(m['val_margin'])}")
    if summary["stage"] == "grpo":
        parts.append(f"reward {_num(m.get('first_reward'))} -> {_num(m.get('final_reward'))}, held-out "
                     f"{_num(m.get('val_reward'))}; {m.get('reference_resets', 0)} reference reset(s); rollouts "
                     f"{_num(m.get('rollout_share'))} of the time ({m.get('rollout_engine')})")
    skipped = {k: v for k, v in (m.get("skipped") or {}).items() if v}
    if skipped:
        parts.append("skipped/cut: " + ", ".join(f"{k} {v:,}" for k, v in skipped.items()))
    return "; ".join(parts) + f". Model {summary['model_path']}; report {summary['report_path']}"


def _num(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def training_runs(wh):
    """Every recorded training run (pretraining and later stages), newest last."""
    wh = as_warehouse(wh)
    if not wh.table_exists("dataengine.training_runs"):
        import pyarrow as pa

        return pa.table({"run_id": pa.array([], pa.string())})
    return wh.sql("SELECT * FROM dataengine.training_runs ORDER BY finished_at")
