"""G-Vendi and embedding Vendi of row streams, per group, in bounded memory.

:class:`DiversityScorer` takes Arrow batches (from a table, a SQL query or a blend
version's components) and keeps, per group, one d x d gradient covariance and one 384 x 384
embedding covariance (:class:`~dataengine.filters.vendi.CovarianceAccumulator`): memory does
not grow with the number of rows. Gradients come from a gradient column the rows already
have (the ``proxy_gradients`` stage's output) or from a proxy model run on the fly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyarrow as pa

from dataengine.filters.proxy_model import ProxyModel, RowColumns
from dataengine.filters.vendi import CovarianceAccumulator


def vectors_from_column(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A list or fixed-size-list float column as (n, d) float32; null rows are NaN rows."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if not valid.any():
        return np.full((n, 1), np.nan, dtype=np.float32)
    filled = column.filter(pa.array(valid))
    flat = filled.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    dim = len(flat) // len(filled)
    if dim * len(filled) != len(flat):
        raise ValueError("gradient vectors of different lengths in one column")
    out = np.full((n, dim), np.nan, dtype=np.float32)
    out[valid] = flat.reshape(-1, dim)
    return out


@dataclass
class GroupScore:
    gradients: CovarianceAccumulator = field(default_factory=CovarianceAccumulator)
    embeddings: CovarianceAccumulator = field(default_factory=CovarianceAccumulator)
    rows: int = 0

    def result(self, q: float, embedding: bool) -> dict:
        """Exactly the keys the CLI prints: n (rows with a gradient), g_vendi, vendi_embedding."""
        return {
            "n": self.gradients.n,
            "g_vendi": self.gradients.score(q),
            "vendi_embedding": self.embeddings.score(q) if embedding else None,
        }


#: The group name of the whole stream when a scorer also keeps a total beside its groups.
TOTAL = "(all)"


class DiversityScorer:
    """Per-group covariances of gradients (and embeddings) over a stream of batches;
    ``total=True`` also keeps the whole stream's (group :data:`TOTAL`)."""

    def __init__(self, rows: RowColumns, proxy: ProxyModel | None = None, gradient_column: str | None = None,
                 embedder=None, by: str | None = None, batch_size: int = 8,
                 on_rows: Callable[[int], None] | None = None, total: bool = False):
        if proxy is None and gradient_column is None:
            raise ValueError("give a proxy model or the name of a gradient column")
        self.rows, self.proxy, self.gradient_column = rows, proxy, gradient_column
        self.embedder, self.by, self.batch_size = embedder, by, batch_size
        self.groups: dict[str, GroupScore] = {}
        self.skipped: dict[str, int] = {}
        self.on_rows = on_rows
        self.total = GroupScore() if total else None

    def _skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def gradients(self, batch: pa.Table) -> np.ndarray:
        if self.gradient_column is not None:
            return vectors_from_column(batch.column(self.gradient_column))
        samples = []
        for i in range(batch.num_rows):  # row by row: one malformed row is skipped, not fatal
            try:
                samples.append(self.rows.encode(self.proxy.encoder, batch.slice(i, 1))[0])
            except ValueError:
                samples.append(None)
                self._skip("malformed row")
        vectors, _ = self.proxy.gradients(samples, batch_size=self.batch_size)
        return vectors

    def add(self, batch: pa.Table, group: str | None = None) -> None:
        """Score a batch; its groups are ``group``, or the values of the ``by`` column."""
        if batch.num_rows == 0:
            return
        vectors = self.gradients(batch)
        missing = np.isnan(vectors).any(axis=1)
        self._skip("no gradient (empty or null text)", int(missing.sum()))
        embeddings = None
        if self.embedder is not None:
            texts = self.rows.texts(batch)
            keep = [i for i, t in enumerate(texts) if t]
            embeddings = np.full((batch.num_rows, self.embedder.dim), np.nan, dtype=np.float32)
            if keep:
                embeddings[keep] = self.embedder.embed([texts[i] for i in keep])
        labels = ([group] * batch.num_rows if self.by is None or group is not None
                  else [_label(v) for v in batch.column(self.by).to_pylist()])
        for label in dict.fromkeys(labels):
            idx = np.array([i for i, g in enumerate(labels) if g == label])
            score = self.groups.setdefault(label, GroupScore())
            score.rows += len(idx)
            score.gradients.add(vectors[idx])
            if embeddings is not None:
                score.embeddings.add(embeddings[idx])
        if self.total is not None:
            self.total.rows += batch.num_rows
            self.total.gradients.add(vectors)
            if embeddings is not None:
                self.total.embeddings.add(embeddings)
        if self.on_rows:
            self.on_rows(batch.num_rows)

    def results(self, q: float = 1.0) -> dict[str, dict]:
        embedding = self.embedder is not None
        out = {g: s.result(q, embedding) for g, s in sorted(self.groups.items(), key=lambda kv: str(kv[0]))}
        if self.total is not None:
            out[TOTAL] = self.total.result(q, embedding)
        return out


def _label(value) -> str:
    return "NULL" if value is None else str(value)
