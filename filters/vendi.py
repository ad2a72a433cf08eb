"""Vendi scores: the effective number of distinct samples, from a similarity spectrum.

For unit vectors x_1..x_N (cosine similarity ``K = X X^T``), the Vendi score (Friedman &
Dieng, 2023) is ``exp(H(lambda))`` where ``lambda`` are the eigenvalues of ``K / N``. Those
are also the non-zero eigenvalues of the d x d covariance ``C = (1/N) sum x x^T = X^T X / N``,
so for N > d the score comes from C, which a stream of batches accumulates in O(d^2) memory:
the N x N kernel is never formed. G-Vendi (Jung et al., 2025) is this score over normalised,
projected proxy-model gradients; the embedding Vendi score is the same over sentence
embeddings.

Order q (Hill numbers of the spectrum): ``VS_q = (sum lambda^q)^(1 / (1 - q))``; q = 1 is the
Shannon limit (the default), q = 2 weights dominant directions more, q = inf is
``1 / max lambda``, q = 0 counts the non-zero eigenvalues. Every order is 1 for N copies of
one vector and N for N orthonormal vectors.
"""

from __future__ import annotations

import math

import numpy as np

#: Eigenvalues below this fraction of the largest are rounding noise, not directions.
RANK_TOLERANCE = 1e-9


def spectrum(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues normalised to sum 1, with rounding noise (negative, or below
    ``RANK_TOLERANCE`` of the largest) set to zero: orders q < 1 would magnify it."""
    lam = np.asarray(eigenvalues, dtype=np.float64).copy()
    top = lam.max(initial=0.0)
    if top <= 0:
        raise ValueError("a Vendi score needs at least one non-zero vector")
    lam[lam < RANK_TOLERANCE * top] = 0.0
    return lam / lam.sum()


def vendi_from_eigenvalues(eigenvalues: np.ndarray, q: float = 1.0) -> float:
    """The order-q Vendi score of a similarity spectrum (any scale: it is normalised here)."""
    lam = spectrum(eigenvalues)
    if q < 0:
        raise ValueError(f"the order q must be >= 0, not {q}")
    if q == 0:
        return float((lam > 0).sum())
    if math.isinf(q):
        return float(1.0 / lam.max())
    nz = lam[lam > 0]
    if abs(q - 1.0) < 1e-12:
        return float(math.exp(-(nz * np.log(nz)).sum()))
    return float(math.exp(math.log((nz ** q).sum()) / (1.0 - q)))


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows are dropped (they have no direction)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1)
    keep = norms > 0
    return x[keep] / norms[keep, None]


def vendi_from_covariance(cov: np.ndarray, q: float = 1.0) -> float:
    """Order-q Vendi score from C = (1/N) X^T X (d x d, symmetric)."""
    return vendi_from_eigenvalues(np.linalg.eigvalsh(cov), q)


def vendi_from_kernel(kernel: np.ndarray, q: float = 1.0) -> float:
    """Order-q Vendi score from the N x N similarity matrix (unit diagonal)."""
    return vendi_from_eigenvalues(np.linalg.eigvalsh(kernel), q)


def vendi_score(x: np.ndarray, q: float = 1.0, normalize: bool = True) -> float:
    """Vendi score of the rows of ``x`` under cosine similarity, through the smaller of the
    d x d covariance and the N x N kernel (they share their non-zero spectrum)."""
    x = unit_rows(x) if normalize else np.asarray(x, dtype=np.float64)
    n, d = x.shape
    if n == 0:
        raise ValueError("a Vendi score needs at least one non-zero vector")
    if n > d:
        return vendi_from_covariance(x.T @ x / n, q)
    return vendi_from_kernel(x @ x.T / n, q)


class CovarianceAccumulator:
    """Streams rows into ``sum x x^T`` (float64, d x d): any number of rows, fixed memory."""

    def __init__(self, dim: int | None = None):
        self.dim = dim
        self.sum = None if dim is None else np.zeros((dim, dim))
        self.n = 0

    def add(self, x: np.ndarray) -> None:
        """Add unit rows (rows with NaN or zero norm are skipped and not counted)."""
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            return
        x = x[~np.isnan(x).any(axis=1)]
        x = unit_rows(x)
        if not len(x):
            return
        if self.sum is None:
            self.dim = x.shape[1]
            self.sum = np.zeros((self.dim, self.dim))
        elif x.shape[1] != self.dim:
            raise ValueError(f"vectors of {x.shape[1]} dimensions added to a {self.dim}-dimensional score")
        self.sum += x.T @ x
        self.n += len(x)

    def merge(self, other: "CovarianceAccumulator") -> None:
        if other.n == 0:
            return
        if self.sum is None:
            self.dim, self.sum = other.dim, other.sum.copy()
        else:
            self.sum += other.sum
        self.n += other.n

    def covariance(self) -> np.ndarray:
        return self.sum / self.n

    def score(self, q: float = 1.0) -> float | None:
        """The order-q Vendi score of the rows added so far (None before any)."""
        if self.n == 0:
            return None
        return vendi_from_covariance(self.covariance(), q)
