"""Prismatic Synthesis (Jung et al., 2025): generate new samples where gradient space is sparse.

    result = de.generate_prismatic(wh, "SELECT id, text FROM seeds", to="prism", rounds=3,
                                   per_round=64, clusters=16, model="smollm2")

Each round: cluster the pool's normalised proxy gradients with k-means; the smallest
clusters are *sparse*; samples drawn from one sparse cluster are the few-shot seeds of a
generation request (the ``fewshot`` recipe, through any backend); a new sample is kept only
if its own gradient lands in a sparse cluster, and joins the pool for the next round.
G-Vendi of the pool is measured after every round.

Every generated sample goes to ``to`` (the provenance columns of every synthetic row, plus
the round, the cluster its gradient landed in, ``prismatic_kept``, the seed ids and the
gradient; select the pool's new rows with ``WHERE prismatic_kept``), and one row per round to
``dataengine.prismatic_rounds``, together with the run record, in ONE snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dataengine.core.errors import DataEngineError
from dataengine.core.pipeline import fingerprint
from dataengine.core.schema import META_SCHEMA
from dataengine.api.warehouse import as_warehouse

ROUNDS_TABLE = f"{META_SCHEMA}.prismatic_rounds"
ROUNDS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("round", pa.int64()), ("pool_before", pa.int64()), ("clusters", pa.int64()),
    ("sparse_clusters", pa.int64()), ("requests", pa.int64()), ("generated", pa.int64()), ("scored", pa.int64()),
    ("kept", pa.int64()), ("pool_after", pa.int64()), ("g_vendi_before", pa.float64()),
    ("g_vendi_after", pa.float64()), ("g_vendi_kept", pa.float64()), ("seconds", pa.float64()),
])


@dataclass
class PrismaticResult:
    run_id: str
    output_table: str
    snapshot_id: int
    source_rows: int
    generated: int
    kept: int
    rounds: list[dict] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _Pool:
    ids: list[str]
    texts: list[str]
    vectors: np.ndarray  # (n, d) unit rows


def generate_prismatic(
    wh,
    source: str,
    to: str,
    rounds: int = 3,
    per_round: int = 64,
    clusters: int = 16,
    sparse_fraction: float = 0.5,
    shots: int = 3,
    proxy: str = "smollm2",
    proxy_params: list[str] | None = None,
    dim: int = 1024,
    max_tokens: int = 512,
    grad_batch_size: int = 8,
    recipe: str = "fewshot",
    backend: str = "transformers",
    model: str | None = None,
    backend_options: dict | None = None,
    sampling: dict | None = None,
    seed: int = 0,
    mode: str = "overwrite",
    cache: bool = True,
    progress: bool = True,
    **recipe_params,
) -> PrismaticResult:
    """Run ``rounds`` of Prismatic Synthesis over the rows of ``source`` (SQL or a table with
    ``id`` and ``text``) and commit the kept samples to ``to`` as one snapshot.

    ``clusters``: k of k-means; ``sparse_fraction``: the share of clusters (smallest first)
    that count as sparse; ``shots``: seeds per request; ``proxy``: the gradient model
    (``smollm2``, a model folder, a ``.gguf``); ``recipe`` (default ``fewshot``) must read an
    ``examples`` list column. Backend, model and sampling are those of ``generate``.
    """
    from dataengine.core.progress import row_progress
    from dataengine.core.registry import stages
    from dataengine.filters.kmeans import fit_kmeans
    from dataengine.filters.proxy_model import DEFAULT_PARAMS, ProxyModel
    from dataengine.filters.vendi import vendi_score
    from dataengine.api.generate import recipe_params as make_recipe_params
    from dataengine.api.generation import source_query
    from dataengine.warehouse.lake import rewrite_time_travel

    if mode not in ("append", "overwrite"):
        raise DataEngineError(f"unknown mode {mode!r}: use append or overwrite")
    if not 0 < sparse_fraction <= 1:
        raise DataEngineError("sparse_fraction must be in (0, 1]")
    if rounds < 1 or per_round < 1 or clusters < 1 or shots < 1:
        raise DataEngineError("rounds, per_round, clusters and shots must be at least 1")
    wh = as_warehouse(wh)
    started = time.time()
    query = source_query(source)
    snapshot = wh.current_snapshot()
    seeds = wh.sql(f"SELECT * FROM ({rewrite_time_travel(query)}) AS s")
    missing = [c for c in ("id", "text") if c not in seeds.column_names]
    if missing:
        raise DataEngineError(f"the source has no column(s) {', '.join(missing)} (it has: {', '.join(seeds.column_names)})")
    settings = {"proxy": proxy, "params": list(proxy_params or DEFAULT_PARAMS), "dim": dim, "max_tokens": max_tokens}
    config = {"query": query, "snapshot": snapshot, "to": to, "rounds": rounds, "per_round": per_round,
              "clusters": clusters, "sparse_fraction": sparse_fraction, "shots": shots, "recipe": recipe,
              "backend": backend, "model": model, "sampling": sampling, "seed": seed, **settings,
              "recipe_params": recipe_params}
    run_id = "prismatic-" + fingerprint(config)
    run_dir = os.path.join(wh.config.runs_path, run_id)
    os.makedirs(run_dir, exist_ok=True)

    proxy_model = ProxyModel.load(proxy, settings["params"], dim, seed, max_tokens)
    stage = stages.get(recipe)(make_recipe_params(wh, backend, model, seed, backend_options, sampling, cache,
                                                  **recipe_params))
    if "examples" not in stage.required_columns():
        raise DataEngineError(f"recipe {recipe!r} does not read an `examples` column; use fewshot or a recipe like it")
    stage.ensure_setup()

    texts = seeds.column("text").to_pylist()
    ids = [str(i) for i in seeds.column("id").to_pylist()]
    keep = [i for i, t in enumerate(texts) if t]
    with row_progress(len(keep), "proxy gradients of the seed pool", enabled=progress) as bar:
        vectors = _gradients(proxy_model, [texts[i] for i in keep], grad_batch_size, bar)
    valid = ~np.isnan(vectors).any(axis=1)
    pool = _Pool([ids[i] for i, v in zip(keep, valid) if v], [texts[i] for i, v in zip(keep, valid) if v], vectors[valid])
    if len(pool.ids) < 2:
        raise DataEngineError("Prismatic Synthesis needs at least 2 seed rows with text")

    rng = random.Random(seed)
    out_rows: list[pa.Table] = []
    round_rows: list[dict] = []
    for r in range(1, rounds + 1):
        t0 = time.time()
        fitted = fit_kmeans(pool.vectors, clusters, seed + r)
        sizes = np.bincount(fitted.labels, minlength=fitted.k)
        order = sorted(range(fitted.k), key=lambda c: (sizes[c], c))
        sparse = order[: max(1, math.ceil(sparse_fraction * fitted.k))]
        members = {c: np.flatnonzero(fitted.labels == c).tolist() for c in sparse}
        requests = []
        for j in range(per_round):
            c = sparse[j % len(sparse)]
            picks = rng.sample(members[c], min(shots, len(members[c])))
            requests.append({"id": f"{run_id}-r{r}-{j}", "examples": [pool.texts[i] for i in picks],
                             "seed_ids": [pool.ids[i] for i in picks], "cluster": c})
        batch = pa.table({"id": [q["id"] for q in requests], "examples": [q["examples"] for q in requests]})
        with row_progress(per_round, f"round {r}: generate", enabled=progress) as bar:
            stage.on_result = lambda _i, _res: bar.advance(1)
            generated = stage.process(batch)
            stage.on_result = None
        by_source = {q["id"]: q for q in requests}
        usable = [i for i, (k, t) in enumerate(zip(generated.column("keep").to_pylist(),
                                                    generated.column("text").to_pylist())) if k and t]
        new_texts = [generated.column("text")[i].as_py() for i in usable]
        with row_progress(len(new_texts), f"round {r}: score", enabled=progress) as bar:
            new_vectors = _gradients(proxy_model, new_texts, grad_batch_size, bar)
        scored = ~np.isnan(new_vectors).any(axis=1)
        landed = np.full(len(new_texts), -1, dtype=np.int32)
        if scored.any():
            landed[scored] = fitted.assign(new_vectors[scored])
        kept_mask = scored & np.isin(landed, sparse)
        before = vendi_score(pool.vectors)
        out_rows.append(_annotated(generated, usable, new_vectors, scored, landed, kept_mask, r, by_source, dim))
        if kept_mask.any():
            kept_ids = [generated.column("id")[usable[i]].as_py() for i in np.flatnonzero(kept_mask)]
            pool = _Pool(pool.ids + kept_ids, pool.texts + [new_texts[i] for i in np.flatnonzero(kept_mask)],
                         np.concatenate([pool.vectors, new_vectors[kept_mask]]))
        kept = int(kept_mask.sum())
        round_rows.append({
            "run_id": run_id, "round": r, "pool_before": len(pool.ids) - kept, "clusters": fitted.k,
            "sparse_clusters": len(sparse), "requests": per_round, "generated": len(usable),
            "scored": int(scored.sum()), "kept": kept, "pool_after": len(pool.ids),
            "g_vendi_before": before, "g_vendi_after": vendi_score(pool.vectors),
            "g_vendi_kept": vendi_score(new_vectors[kept_mask]) if kept else None, "seconds": time.time() - t0,
        })
    return _commit(wh, run_id, run_dir, to, mode, query, snapshot, config, out_rows, round_rows, len(seeds), started,
                   stage)


def _annotated(generated: pa.Table, usable: list[int], vectors: np.ndarray, scored: np.ndarray, landed: np.ndarray,
               kept: np.ndarray, round_no: int, requests: dict, dim: int) -> pa.Table:
    """Every generated row of a round with its verdict: where its gradient landed, whether it
    was kept (annotate, don't delete: ``WHERE prismatic_kept`` selects the pool's new rows)."""
    n = generated.num_rows
    cluster = [None] * n
    is_kept = [False] * n
    grads = [None] * n
    for k, i in enumerate(usable):
        if scored[k]:
            cluster[i] = int(landed[k])
            grads[i] = vectors[k].tolist()
        is_kept[i] = bool(kept[k])
    seed_ids = [requests[s]["seed_ids"] for s in generated.column("source_id").to_pylist()]
    return (generated
            .append_column("prismatic_round", pa.array([round_no] * n, pa.int32()))
            .append_column("prismatic_cluster", pa.array(cluster, pa.int32()))
            .append_column("prismatic_kept", pa.array(is_kept, pa.bool_()))
            .append_column("prismatic_seed_ids", pa.array(seed_ids, pa.list_(pa.string())))
            .append_column("proxy_grad", pa.array(grads, pa.list_(pa.float32(), dim))))


def _gradients(proxy_model, texts: list[str], batch_size: int, bar) -> np.ndarray:
    """Unit gradient vectors of ``texts`` (NaN rows for texts with nothing to score), in steps
    of a few micro-batches so the bar moves."""
    out = np.full((len(texts), proxy_model.dim), np.nan, dtype=np.float32)
    step = batch_size * 4
    for start in range(0, len(texts), step):
        chunk = texts[start : start + step]
        vectors, _ = proxy_model.gradients([proxy_model.encoder.text(t) for t in chunk], batch_size=batch_size)
        out[start : start + len(chunk)] = vectors
        bar.advance(len(chunk))
    return out


def _output_schema(dim: int) -> pa.Schema:
    from dataengine.generators.recipes.base import SYNTHETIC_SCHEMA

    return pa.schema(list(SYNTHETIC_SCHEMA) + [
        ("prismatic_round", pa.int32()), ("prismatic_cluster", pa.int32()), ("prismatic_kept", pa.bool_()),
        ("prismatic_seed_ids", pa.list_(pa.string())), ("proxy_grad", pa.list_(pa.float32(), dim)),
    ])


def _commit(wh, run_id, run_dir, to, mode, query, snapshot, config, out_rows, round_rows, source_rows, started,
            stage) -> PrismaticResult:
    schema = _output_schema(config["dim"])
    generated = sum(t.num_rows for t in out_rows)
    kept = sum(row["kept"] for row in round_rows)
    files = []
    if generated:
        path = os.path.join(run_dir, f"prismatic-{int(time.time() * 1000)}.parquet")
        pq.write_table(pa.concat_tables(out_rows).cast(schema), path + ".tmp", compression="zstd")
        os.replace(path + ".tmp", path)
        files.append(path)
    with wh.connect() as con:
        con.execute(f"CREATE TABLE IF NOT EXISTS lake.{ROUNDS_TABLE} (run_id VARCHAR, round BIGINT, pool_before BIGINT, "
                    "clusters BIGINT, sparse_clusters BIGINT, requests BIGINT, generated BIGINT, scored BIGINT, "
                    "kept BIGINT, pool_after BIGINT, g_vendi_before DOUBLE, g_vendi_after DOUBLE, "
                    "g_vendi_kept DOUBLE, seconds DOUBLE)")
    now = dt.datetime.now(dt.timezone.utc)
    record = {
        "run_id": run_id, "pipeline": f"generate:prismatic:{config['recipe']}", "output_table": to, "mode": mode,
        "executor": f"generate:{config['backend']}", "source": query, "rows_out": generated,
        "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc), "finished_at": now,
        "config": json.dumps({**config, "recipe_fingerprint": stage.fingerprint(), "model_id": stage.generator.model_id},
                             default=str),
        "stats": json.dumps({"rounds": round_rows, "source_rows": source_rows, "source_snapshot": snapshot}),
    }
    meta = [(f"{META_SCHEMA}.runs", record)] + [(ROUNDS_TABLE, row) for row in round_rows]
    snapshot_id = wh.commit_files(to, files, schema, mode=mode, meta_rows=meta,
                                  message=f"generate prismatic: {generated} samples, {kept} kept, over {len(round_rows)} rounds")
    return PrismaticResult(run_id, to, snapshot_id, source_rows, generated, kept, round_rows, time.time() - started)


def prismatic_rounds(wh, run_id: str | None = None) -> pa.Table:
    """``dataengine.prismatic_rounds``: one row per round (G-Vendi before and after), all runs or one."""
    wh = as_warehouse(wh)
    if not wh.table_exists(ROUNDS_TABLE):
        return ROUNDS_SCHEMA.empty_table()
    where = "WHERE run_id = ?" if run_id else ""
    return wh.sql(f"SELECT * FROM {ROUNDS_TABLE} {where} ORDER BY run_id, round", [run_id] if run_id else None)
