"""Diversity of any table, SQL selection or blend version: G-Vendi and embedding Vendi.

    report = de.diversity(wh, "docs", by="source")                  # proxy: SmolLM2-135M-Instruct
    report = de.diversity(wh, "SELECT * FROM docs WHERE lang = 'en'", proxy="./my-model")
    report = de.diversity(wh, "web@2", by="component", record=True)  # stored; `blend show` prints it
    report.groups  # {"all": {"n": 400, "g_vendi": 57.3, "vendi_embedding": 121.9}}

Gradients come from the rows' ``proxy_grad`` column when they have one (the
``proxy_gradients`` stage's output) and no proxy is named; otherwise the proxy runs on the
fly. Memory stays bounded: rows stream in batches into per-group d x d covariances.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import pyarrow as pa

from dataengine.core.errors import DataEngineError
from dataengine.api.warehouse import as_warehouse

_BLEND_REF = re.compile(r"^(?:blend:)?([A-Za-z0-9_.-]+)@(\d+)$")
_TABLE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)?(@\d+)?$")
DEFAULT_PROXY = "smollm2"


@dataclass
class DiversityReport:
    """Per group: ``n`` (rows with a gradient), ``g_vendi``, ``vendi_embedding`` (None when skipped)."""

    source: str
    groups: dict[str, dict]
    gradients: str  # where the gradients came from: "column proxy_grad" or "proxy <spec> (...)"
    q: float
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    recorded: bool = False


# -- sources ---------------------------------------------------------------------------------

def _blend_ref(wh, source: str) -> tuple[str, int] | None:
    """(name, version) when ``source`` names a frozen blend version rather than a table."""
    from dataengine.warehouse.blends import Blends

    m = _BLEND_REF.match(source.strip())
    if not m:
        return None
    name, version = m.group(1), int(m.group(2))
    blends = Blends(wh)
    is_blend = blends.latest_version(name) is not None
    if source.strip().startswith("blend:"):
        if not is_blend:
            raise DataEngineError(f"no frozen blend named {name!r}")
        return name, version
    if is_blend and wh.table_exists(name):
        raise DataEngineError(f"{source!r} is both a table version and a blend version: write blend:{source} "
                              f"or 'SELECT * FROM {source}'")
    return (name, version) if is_blend else None


def _sql(source: str) -> str:
    source = source.strip().rstrip(";")
    return f"SELECT * FROM {source}" if _TABLE.match(source) else source


def _sampled(con, query: str, sample: int | None, seed: int) -> str:
    if not sample:
        return query
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM ({query})").fetchall()]
    if "id" in cols:  # a seeded hash order: the same rows whatever DuckDB's threads do
        return f"SELECT * FROM ({query}) AS s ORDER BY hash(CAST(id AS VARCHAR), {int(seed)}) LIMIT {int(sample)}"
    return f"SELECT * FROM ({query}) AS s USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE ({int(seed)})"


def _stream(con, query: str, batch_rows: int):
    import duckdb

    try:
        reader = con.execute(query).to_arrow_reader(batch_rows)
    except duckdb.Error as exc:
        raise DataEngineError(f"diversity source failed: {str(exc).strip().splitlines()[0]}") from None
    for batch in reader:
        if batch.num_rows:
            yield pa.Table.from_batches([batch])


def _columns(con, query: str) -> list[str]:
    import duckdb

    try:
        return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM ({query})").fetchall()]
    except duckdb.Error as exc:
        raise DataEngineError(f"diversity source failed: {str(exc).strip().splitlines()[0]}") from None


# -- the measurement ----------------------------------------------------------------------------

def diversity(
    wh,
    source: str,
    by: str | None = None,
    proxy: str | None = None,
    column: str = "proxy_grad",
    embedding: bool = True,
    q: float = 1.0,
    params: list[str] | None = None,
    dim: int = 1024,
    seed: int = 0,
    max_tokens: int = 512,
    batch_size: int = 8,
    text_column: str = "text",
    prompt_column: str | None = None,
    response_column: str | None = None,
    messages_column: str | None = None,
    sample: int | None = None,
    record: bool = False,
    gpu: bool = False,
    progress: bool = True,
) -> DiversityReport:
    """G-Vendi (and embedding Vendi) of ``source``: a table (``t``, ``t@N``), SQL, or a blend
    version ``NAME@V`` (``blend:NAME@V`` if a table has the same name), per ``by`` group
    (``by="component"`` for a blend's components).

    ``proxy``: the gradient model (``smollm2``, a model folder, a ``.gguf``); without one the
    rows' ``column`` is used if they have it, else ``smollm2``. ``sample``: score a seeded
    sample of this many rows (per component for a blend). ``record``: store the result with
    the blend version (blend sources only). ``q``: the order of the Vendi scores.
    """
    from dataengine.core.progress import row_progress
    from dataengine.filters.diversity import DiversityScorer
    from dataengine.filters.proxy_model import DEFAULT_PARAMS, RowColumns

    wh = as_warehouse(wh)
    started = time.time()
    blend = _blend_ref(wh, source)
    if record and blend is None:
        raise DataEngineError("record=True stores scores with a blend version: give NAME@V of a frozen blend")
    rows = RowColumns(text_column, prompt_column, response_column, messages_column)
    parts = _parts(wh, source, blend, sample, seed)  # [(group or None, snapshot or None, query)]
    if by == "component" and blend is None:
        raise DataEngineError("--by component groups a blend version's components; give NAME@V")
    with wh.connect(read_only=True, snapshot=parts[0][1]) as con:
        available = _columns(con, parts[0][2])
    use_column = proxy is None and column in available
    needed = ([column] if use_column else list(rows.required())) + ([by] if by and by != "component" else [])
    if embedding:
        needed += list(rows.required())
    missing = [c for c in dict.fromkeys(needed) if c not in available]
    if missing:
        raise DataEngineError(f"the source has no column(s) {', '.join(missing)} (it has: {', '.join(available)})")
    settings = {"params": list(params or DEFAULT_PARAMS), "dim": dim, "seed": seed, "max_tokens": max_tokens}
    proxy_model = None
    if use_column:
        method = f"column {column}"
    else:
        from dataengine.filters.proxy_model import ProxyModel

        spec = proxy or DEFAULT_PROXY
        proxy_model = ProxyModel.load(spec, settings["params"], dim, seed, max_tokens, _device(gpu))
        method = f"proxy {spec} (params {','.join(settings['params'])}; d={dim}; seed={seed})"
    embedder = None
    if embedding:
        from dataengine.filters.embeddings import MiniLMEmbedder

        embedder = MiniLMEmbedder(device=_device(gpu))
    # a recorded grouped measurement keeps the whole version's score too (group "(all)")
    scorer = DiversityScorer(rows, proxy_model, column if use_column else None, embedder,
                             by=None if by in (None, "component") else by, batch_size=batch_size,
                             total=record and by is not None)
    total = _count(wh, parts) if progress else None
    with row_progress(total, f"diversity of {source}", enabled=progress) as bar:
        scorer.on_rows = bar.advance
        for group, snapshot, query in parts:
            label = group if by == "component" else ("all" if by is None else None)
            with wh.connect(read_only=True, snapshot=snapshot) as con:
                for batch in _stream(con, query, max(batch_size * 8, 64)):
                    scorer.add(batch, group=label)
    report = DiversityReport(source, scorer.results(q), method, q, dict(scorer.skipped), time.time() - started)
    if record:
        from dataengine.warehouse.blends import Blends

        Blends(wh).record_diversity(blend[0], blend[1], [
            {"group_name": g, **r, "q": q, "method": method} for g, r in report.groups.items()])
        report.recorded = True
    return report


def _device(gpu: bool) -> str:
    if not gpu:
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise DataEngineError("gpu=True needs a CUDA device")
    return "cuda"


def _parts(wh, source: str, blend: tuple[str, int] | None, sample: int | None, seed: int) -> list[tuple]:
    """What to read: one query for a table or SQL, one per component for a blend version."""
    if blend is None:
        from dataengine.warehouse.lake import rewrite_time_travel

        query = rewrite_time_travel(_sql(source))
        with wh.connect(read_only=True) as con:
            _columns(con, query)
            return [(None, None, _sampled(con, query, sample, seed))]
    from dataengine.warehouse.blends import Blends

    version = Blends(wh).version(f"{blend[0]}@{blend[1]}")
    parts = []
    with wh.connect(read_only=True, snapshot=version["snapshot_id"]) as con:
        for comp in version["components"]:
            query = f"SELECT * FROM ({comp['sql'].rstrip().rstrip(';')}) AS component ORDER BY id"
            parts.append((comp["component"], version["snapshot_id"], _sampled(con, query, sample, seed)))
    return parts


def _count(wh, parts) -> int:
    total = 0
    for _, snapshot, query in parts:
        with wh.connect(read_only=True, snapshot=snapshot) as con:
            total += con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]
    return total


def blend_diversity(wh, ref: str) -> list[dict]:
    """The diversity measurements recorded for a blend version (latest per group and method)."""
    from dataengine.warehouse.blends import Blends

    v = Blends(as_warehouse(wh)).version(ref)
    return v["diversity"]
