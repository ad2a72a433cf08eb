"""Training runs recorded in the warehouse catalog (``dataengine.training_runs``).

One row per finished run: which blend version it trained on, the config, final metrics and
where its checkpoint, model and report are. ``dataengine sql`` then answers questions like
"every run on web@3, best validation loss first".
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa

TABLE = "dataengine.training_runs"

SCHEMA = pa.schema([
    ("run_id", pa.string()), ("blend", pa.string()), ("blend_version", pa.int64()), ("blend_ref", pa.string()),
    ("manifest_hash", pa.string()), ("tokenizer_hash", pa.string()), ("optimizer", pa.string()),
    ("steps", pa.int64()), ("tokens", pa.int64()), ("parameters", pa.int64()), ("world_size", pa.int64()),
    ("device", pa.string()), ("final_loss", pa.float64()), ("final_val_loss", pa.float64()),
    ("unigram_val_loss", pa.float64()), ("tokens_per_s", pa.float64()), ("mfu", pa.float64()),
    ("checkpoint_path", pa.string()), ("model_path", pa.string()), ("report_path", pa.string()),
    ("resumed_from", pa.string()), ("config", pa.string()), ("started_at", pa.timestamp("us", tz="UTC")),
    ("finished_at", pa.timestamp("us", tz="UTC")),
    # post-training (docs/posttraining.md): the stage, the model it started from, its own final metrics
    ("stage", pa.string()), ("init_model", pa.string()), ("stage_metrics", pa.string()),
])


def record_run(warehouse, summary: dict, config: dict, started_at: dt.datetime) -> int:
    """Append the run to the catalog (one snapshot); returns the snapshot id."""
    row = {name: summary.get(name) for name in SCHEMA.names}
    row["config"] = json.dumps(config, sort_keys=True)
    row["stage"] = summary.get("stage") or "pretrain"
    row["stage_metrics"] = json.dumps(summary["stage_metrics"], default=str) if summary.get("stage_metrics") else None
    row["started_at"] = started_at
    row["finished_at"] = dt.datetime.now(dt.timezone.utc)
    return warehouse.write_table(TABLE, pa.Table.from_pylist([row], schema=SCHEMA))
