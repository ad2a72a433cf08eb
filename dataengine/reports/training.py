"""A training run's report: loss and throughput curves from its ``metrics.jsonl``, summary, config.

The trainer writes one JSON line per logged step into its run folder; the run's row in
``dataengine.training_runs`` says where that folder is. The same page is written as the
run's ``report.html`` when training ends, shown by ``dataengine report RUN_ID`` and in the UI.
"""

from __future__ import annotations

import json
from pathlib import Path

from dataengine.reports import charts
from dataengine.reports.links import Links
from dataengine.reports.page import Page, Section, table_html

TABLE = "dataengine.training_runs"
SUMMARY_KEYS = ("run_id", "blend_ref", "optimizer", "steps", "tokens", "parameters", "world_size", "device",
                "final_loss", "final_val_loss", "unigram_val_loss", "tokens_per_s", "mfu", "resumed_from",
                "checkpoint_path", "model_path")


def run_folder(run: dict) -> Path | None:
    """The run's output folder (where metrics.jsonl is), from its recorded report or model path."""
    for key in ("report_path", "model_path"):
        if run.get(key):
            return Path(run[key]).parent
    return None


def read_metrics(folder: Path | None) -> list[dict]:
    """The logged steps of a run (empty when its folder is gone)."""
    path = folder / "metrics.jsonl" if folder else None
    if path is None or not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill: the rest is still worth drawing
                continue
    return rows


def loss_rows(run: dict, metrics: list[dict] | None = None) -> list[dict]:
    """(step, loss, series) for train and validation loss."""
    metrics = read_metrics(run_folder(run)) if metrics is None else metrics
    out = [{"step": m["step"], "loss": m["loss"], "series": "train"} for m in metrics if "loss" in m]
    out += [{"step": m["step"], "loss": m["val_loss"], "series": "validation"} for m in metrics if "val_loss" in m]
    return out


def training_page(summary: dict, metrics: list[dict], config: dict | str | None, links: Links | None = None) -> Page:
    """Curves (loss with the unigram baseline, throughput, learning rate), summary and config."""
    links = links or Links()
    figs = []
    losses = loss_rows(summary, metrics)
    if losses:
        baseline = summary.get("unigram_val_loss")
        figs.append(charts.lines("loss", losses, "step", "loss", series="series", y_title="cross-entropy",
                                 rule=baseline, rule_label="unigram baseline"))
    throughput = [{"step": m["step"], "tokens_per_s": m["tokens_per_s"]} for m in metrics
                  if m.get("tokens_per_s") is not None]
    if throughput:
        figs.append(charts.lines("throughput", throughput, "step", "tokens_per_s", y_title="tokens / s"))
    lrs = [{"step": m["step"], "lr": m["lr"]} for m in metrics if m.get("lr") is not None]
    if lrs:
        figs.append(charts.lines("learning rate", lrs, "step", "lr", y_title="learning rate"))
    norms = [{"step": m["step"], "grad_norm": m["grad_norm"]} for m in metrics if m.get("grad_norm") is not None]
    if norms:
        figs.append(charts.lines("gradient norm", norms, "step", "grad_norm", y_title="gradient norm", log_y=True))
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError:
            pass
    summary_rows = [{"key": k, "value": summary[k]} for k in SUMMARY_KEYS if summary.get(k) is not None]
    ref = summary.get("blend_ref") or ""
    sections = [Section("Curves", figs, note="" if figs else "no metrics recorded (the run folder is gone)")]
    sections.append(Section("Summary", blocks=[table_html(summary_rows,
                                                          {"value": lambda v, row: links.blend(v) if row["key"] == "blend_ref" else None})]))
    if config is not None:
        import html

        sections.append(Section("Config", blocks=[f"<pre>{html.escape(json.dumps(config, indent=1))}</pre>"]))
    facts = [("steps", summary.get("steps")), ("final loss", summary.get("final_loss")),
             ("final val loss", summary.get("final_val_loss")), ("unigram val loss", summary.get("unigram_val_loss")),
             ("tokens / s", summary.get("tokens_per_s"))]
    return Page(f"training run {summary.get('run_id', '')}", subtitle=f"on blend version {ref}",
                facts=[(k, v) for k, v in facts if v is not None], sections=sections)


def training_run(wh, run_id: str) -> dict | None:
    """The recorded run with this id, or None."""
    if not wh.table_exists(TABLE):
        return None
    rows = wh.sql(f"SELECT * FROM {TABLE} WHERE run_id = ? ORDER BY finished_at DESC LIMIT 1", [run_id]).to_pylist()
    return rows[0] if rows else None


def training_runs_on(wh, blend: str, version: int) -> list[dict]:
    """Every recorded run that trained on ``blend@version``, oldest first."""
    if not wh.table_exists(TABLE):
        return []
    return wh.sql(f"SELECT * FROM {TABLE} WHERE blend = ? AND blend_version = ? ORDER BY finished_at",
                  [blend, version]).to_pylist()
