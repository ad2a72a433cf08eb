"""Vendi scores: the identities every order must satisfy, and d x d vs N x N agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dataengine.filters.vendi import (
    CovarianceAccumulator,
    unit_rows,
    vendi_from_covariance,
    vendi_from_eigenvalues,
    vendi_from_kernel,
    vendi_score,
)

ORDERS = [0.0, 0.5, 1.0, 2.0, math.inf]


@pytest.mark.parametrize("q", ORDERS)
def test_identical_vectors_score_one(q):
    v = np.random.default_rng(0).standard_normal(64)
    x = np.tile(v, (50, 1))
    assert vendi_score(x, q) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("q", ORDERS)
@pytest.mark.parametrize("n,d", [(10, 10), (7, 64), (64, 64)])
def test_orthonormal_vectors_score_n(q, n, d):
    basis, _ = np.linalg.qr(np.random.default_rng(n).standard_normal((d, d)))
    x = basis[:n] * 3.0  # scale does not matter: rows are normalised
    assert vendi_score(x, q) == pytest.approx(n, rel=1e-9)


@pytest.mark.parametrize("q", ORDERS)
def test_permutation_invariance(q):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((120, 32)) + rng.standard_normal(32)  # correlated rows
    perm = rng.permutation(120)
    assert vendi_score(x[perm], q) == pytest.approx(vendi_score(x, q), rel=1e-12)


@pytest.mark.parametrize("q", ORDERS)
@pytest.mark.parametrize("n,d", [(20, 64), (200, 16), (40, 40)])
def test_covariance_and_kernel_agree(q, n, d):
    rng = np.random.default_rng(n + d)
    x = unit_rows(rng.standard_normal((n, d)) + 0.7 * rng.standard_normal(d))
    by_kernel = vendi_from_kernel(x @ x.T / n, q)
    by_covariance = vendi_from_covariance(x.T @ x / n, q)
    assert by_covariance == pytest.approx(by_kernel, rel=1e-8)


def test_streamed_accumulator_equals_one_shot_and_skips_missing_rows():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 24)) + rng.standard_normal(24)
    acc = CovarianceAccumulator()
    for start in range(0, 500, 37):
        acc.add(x[start : start + 37])
    with_gaps = x[:10].copy()
    with_gaps[3] = np.nan
    with_gaps[4] = 0.0
    acc.add(with_gaps)  # NaN and zero rows carry no direction: not counted
    assert acc.n == 508
    expected = vendi_score(np.concatenate([x, x[[0, 1, 2, 5, 6, 7, 8, 9]]]))
    assert acc.score() == pytest.approx(expected, rel=1e-10)
    other = CovarianceAccumulator()
    other.add(x[:5])
    acc.merge(other)
    assert acc.n == 513
    with pytest.raises(ValueError):
        acc.add(np.ones((2, 7)))


def test_orders_are_ordered_and_bounded():
    lam = np.array([0.5, 0.2, 0.2, 0.1, 0.0])
    scores = [vendi_from_eigenvalues(lam, q) for q in ORDERS]
    assert scores[0] == 4  # q = 0 counts the non-zero eigenvalues
    assert all(a >= b - 1e-12 for a, b in zip(scores, scores[1:]))  # Hill numbers fall with q
    assert scores[-1] == pytest.approx(2.0)  # 1 / max
    assert scores[2] == pytest.approx(math.exp(-(lam[:4] * np.log(lam[:4])).sum()))
    with pytest.raises(ValueError):
        vendi_from_eigenvalues(np.zeros(3))
    with pytest.raises(ValueError):
        vendi_from_eigenvalues(lam, -1)
