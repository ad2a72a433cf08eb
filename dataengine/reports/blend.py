"""A blend version's report: what it samples, from which snapshots, what changed, what trained on it."""

from __future__ import annotations

from pathlib import Path

import duckdb

from dataengine.reports import charts
from dataengine.reports.links import Links
from dataengine.reports.page import Page, Section, table_html, write_page
from dataengine.reports.training import loss_rows, training_runs_on
from dataengine.warehouse.blends import Blends

COLUMNS = ("component", "phase", "weight", "max_epochs", "rows", "tokens", "effective_epochs")


def planned_shares(version: dict) -> dict[str, float]:
    """Component -> share (%) of the sampled tokens: its phase's share times its weight within the phase."""
    phases = {p["name"]: p["token_share"] for p in version.get("phases") or []} or {"main": 1.0}
    comps = version["components"]
    out = {}
    for c in comps:
        phase_weight = sum(x["weight"] for x in comps if x["phase"] == c["phase"]) or 1.0
        out[c["component"]] = 100.0 * phases.get(c["phase"], 1.0) * c["weight"] / phase_weight
    return out


def source_snapshots(wh, version: dict) -> list[dict]:
    """Per component, the tables its SQL reads and the snapshot of each that the version pinned."""
    snap = version["snapshot_id"]
    histories: dict[str, list[dict]] = {}
    rows = []
    for c in version["components"]:
        try:
            tables = sorted(duckdb.get_table_names(c["sql"]))
        except duckdb.Error:
            tables = []
        for t in tables:
            if t not in histories:
                try:
                    histories[t] = wh.history(t).to_pylist()
                except Exception:  # a CTE name or a table dropped since: nothing to pin
                    histories[t] = []
            changed = [h for h in histories[t] if h["snapshot_id"] <= snap]
            if changed:
                rows.append({"component": c["component"], "table": t, "table snapshot": changed[-1]["snapshot_id"],
                             "changed at": str(changed[-1]["snapshot_time"])[:19]})
    return rows


def blend_page(wh, version: dict, links: Links | None = None) -> Page:
    """The report of one blend version (as returned by ``Blends.version``)."""
    links = links or Links()
    comps = version["components"]
    ref = f"{version['blend']}@{version['version']}"
    shares = planned_shares(version)
    total_tokens = sum(c["tokens"] for c in comps) or 1
    share_rows = []
    for c in comps:
        share_rows.append({"component": c["component"], "share": shares[c["component"]], "of": "sampled (weights)"})
        share_rows.append({"component": c["component"], "share": 100.0 * c["tokens"] / total_tokens,
                           "of": "available tokens"})
    figs = [
        charts.bar("token share per component (%)", share_rows, "component", "share", color="of", percent=True,
                   value_title="% of tokens", sort=None),
        charts.bar("tokens available per component", [{"component": c["component"], "tokens": c["tokens"]}
                                                      for c in comps], "component", "tokens", sort=None),
        charts.bar("documents per component", [{"component": c["component"], "documents": c["rows"]} for c in comps],
                   "component", "documents", sort=None),
    ]
    phases = version.get("phases") or []
    if len(phases) > 1:
        per_phase = []
        for p in phases:
            available = sum(c["tokens"] for c in comps if c["phase"] == p["name"])
            per_phase.append({"phase": p["name"], "share": 100.0 * p["token_share"], "of": "sampled (phase share)"})
            per_phase.append({"phase": p["name"], "share": 100.0 * available / total_tokens, "of": "available tokens"})
        figs.append(charts.bar("token share per phase (%)", per_phase, "phase", "share", color="of", percent=True,
                               sort=None, value_title="% of tokens"))
    comp_rows = [{**{k: c[k] for k in COLUMNS}, "sampled share %": round(shares[c["component"]], 2),
                  "content hash": c["content_hash"]} for c in comps]
    sections = [
        Section("Composition", figs, blocks=[table_html(comp_rows)]),
        Section("Source snapshots", blocks=[table_html(
            source_snapshots(wh, version), {"table snapshot": lambda s, row: links.table(row["table"], s)})],
            note=f"Every component reads the lake pinned at snapshot {version['snapshot_id']}: "
                 "re-reading this version later returns exactly these rows."),
        Section("Component SQL", blocks=[table_html([{"component": c["component"], "sql": c["sql"]} for c in comps])]),
    ]
    diff = previous_diff(wh, version)
    if diff is not None:
        prev = f"{version['blend']}@{version['version'] - 1}"
        sections.append(Section(f"Changes since {prev}", blocks=[table_html(diff["components"])],
                                note=f"{prev} read snapshot {diff['snapshots'][0]}, {ref} reads {diff['snapshots'][1]}"))
    runs = training_runs_on(wh, version["blend"], version["version"])
    if runs:
        curves = []
        for r in runs:
            for row in loss_rows(r):
                curves.append({**row, "run": f"{r['run_id']} {row['series']}"})
        figs = [charts.lines("loss of the training runs on this version", curves, "step", "loss", series="run",
                             y_title="loss")] if curves else []
        table = [{"run": r["run_id"], "optimizer": r["optimizer"], "steps": r["steps"], "tokens": r["tokens"],
                  "final loss": r["final_loss"], "final val loss": r["final_val_loss"],
                  "tokens/s": r["tokens_per_s"], "finished": str(r["finished_at"])[:19]} for r in runs]
        paths = {r["run_id"]: r.get("report_path") for r in runs}
        sections.append(Section("Training runs on this version", figs, blocks=[table_html(
            table, {"run": lambda run_id, row: links.training_run(run_id, paths.get(run_id))})]))
    warnings = version.get("warnings") or []
    if warnings:
        sections.append(Section("Warnings", blocks=["<ul>" + "".join(f"<li>{_esc(w)}</li>" for w in warnings) + "</ul>"]))
    facts = [("documents", version["rows"]), ("tokens", version["tokens"]), ("components", len(comps)),
             ("lake snapshot", version["snapshot_id"]), ("content hash", version["content_hash"]),
             ("tokenizer", f"{version['tokenizer']} ({version['tokenizer_hash']})")]
    return Page(f"blend {ref}", subtitle=f"frozen {str(version['created_at'])[:19]} from revision "
                                         f"{version.get('revision')}", facts=facts, sections=sections)


def previous_diff(wh, version: dict) -> dict | None:
    """The diff against version N-1, or None for a first version."""
    if version["version"] <= 1:
        return None
    name = version["blend"]
    return Blends(wh).diff(f"{name}@{version['version'] - 1}", f"{name}@{version['version']}")


def blend_report(wh, version: dict, path: str | Path) -> Path:
    """Write the report of one blend version to ``path``."""
    return write_page(blend_page(wh, version), path)


def _esc(text: str) -> str:
    import html

    return html.escape(str(text))
