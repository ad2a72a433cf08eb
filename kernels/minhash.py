"""MinHash signatures and LSH band hashes over a batch, with no Python loop per shingle.

Written against the array API shared by NumPy and CuPy: pass ``xp=numpy`` (the CPU
reference) or ``xp=cupy`` (the GPU path). Both use the same unsigned 64-bit integer
arithmetic with wrap-around, so they produce bit-identical signatures for the same seed.

Inputs are *shingle hashes*: one uint64 per shingle, all documents back to back, with
``offsets`` (length docs + 1) marking where each document's shingles start. A document
without shingles gets the all-ones signature (it matches nothing but itself).

Hash family: multiply-shift, ``h_k(x) = (a_k * x + b_k) >> 32`` with odd 64-bit ``a_k``
(Dietzfelbinger et al.), giving 32-bit values: universal, and a couple of integer ops per
(shingle, permutation) on either device.
"""

from __future__ import annotations

import numpy as np

_EMPTY = np.uint64(0xFFFFFFFF)
_MIX = np.uint64(0x9E3779B97F4A7C15)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) coefficients of ``num_perm`` hash functions, from a seed (host arrays)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


def signatures(shingle_hashes, offsets, num_perm: int, seed: int, xp=np):
    """MinHash signatures: array (docs, num_perm) of uint64 holding 32-bit values."""
    a_host, b_host = permutations(num_perm, seed)
    a, b = xp.asarray(a_host), xp.asarray(b_host)
    hashes = xp.asarray(shingle_hashes, dtype=xp.uint64)
    offsets = xp.asarray(offsets, dtype=xp.int64)
    docs = int(offsets.shape[0]) - 1
    out = xp.full((docs, num_perm), _EMPTY, dtype=xp.uint64)
    if hashes.shape[0] == 0:
        return out
    lengths = offsets[1:] - offsets[:-1]
    nonempty = xp.nonzero(lengths > 0)[0]
    starts = offsets[:-1][nonempty]
    shift = xp.uint64(32)
    buf = xp.empty_like(hashes)
    for k in range(num_perm):  # one permutation at a time: no (shingles x perms) temporary
        xp.multiply(hashes, a[k], out=buf)  # wraps mod 2^64
        xp.add(buf, b[k], out=buf)
        xp.right_shift(buf, shift, out=buf)
        out[nonempty, k] = _segment_min(buf[:, None], starts, xp)[:, 0]
    return out


def _segment_min(values, starts, xp):
    """Minimum over consecutive row segments starting at ``starts`` (all non-empty)."""
    if xp is np:
        return np.minimum.reduceat(values, starts, axis=0)
    import cupyx

    return segment_min_by_scatter(values, starts, xp, cupyx.scatter_min)


def segment_min_by_scatter(values, starts, xp, scatter_min):
    """The GPU way (CuPy has no ``ufunc.reduceat``): label each row with its segment, then
    scatter-min into place. ``scatter_min(out, labels, values)`` is ``cupyx.scatter_min`` on
    the GPU; tests run this same code on the CPU with ``np.minimum.at``."""
    seg = xp.zeros(values.shape[0], dtype=xp.int64)
    seg[starts[1:]] = 1
    seg = xp.cumsum(seg)
    out = xp.full((int(starts.shape[0]), values.shape[1]), _EMPTY, dtype=values.dtype)
    scatter_min(out, seg, values)
    return out


def band_hashes(sigs, bands: int, rows: int, xp=np):
    """One uint64 per (document, band): a mix of the band's ``rows`` signature values.

    Documents that share any band hash are LSH candidates.
    """
    if bands * rows > sigs.shape[1]:
        raise ValueError(f"{bands} bands x {rows} rows needs {bands * rows} hashes, signatures have {sigs.shape[1]}")
    docs = sigs.shape[0]
    view = sigs[:, : bands * rows].reshape(docs, bands, rows)
    h = xp.zeros((docs, bands), dtype=xp.uint64)
    for r in range(rows):
        h = (h ^ view[:, :, r]) * xp.uint64(_MIX)
        h = h ^ (h >> xp.uint64(29))
    # tag with the band index so equal values in different bands never collide
    return h ^ (xp.arange(bands, dtype=xp.uint64)[None, :] * xp.uint64(0x632BE59BD9B4E019))


def estimated_jaccard(sig_a, sig_b) -> float:
    """Fraction of equal signature positions: an unbiased estimate of Jaccard similarity."""
    return float(np.mean(np.asarray(sig_a) == np.asarray(sig_b)))
