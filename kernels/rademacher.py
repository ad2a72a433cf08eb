"""Seeded Rademacher random projection (Johnson-Lindenstrauss), applied block by block.

Projects vectors of D entries (per-sample gradients: millions) to ``d`` entries (1024) with
the d x D matrix ``P[i, j] = s(i, j) / sqrt(d)``, ``s = +-1``. ``P`` is never stored: every
sign is a pure function of ``(seed, j, i)``, a counter-based hash, so any block of columns
can be made on demand, on any device, in any order, and the NumPy reference, the CPU path
and the GPU kernel (:mod:`dataengine.kernels.rademacher_triton`) use bit-identical
matrices. That makes the projection *streamable*: a vector given in pieces (one parameter
tensor at a time, columns ``col_start .. col_start + n``) is projected piece by piece and
the pieces summed.

The hash: 32-bit murmur3 finalisers. For column ``j`` (taken modulo 2**32),
``c = fmix32((j * 0x9E3779B1) ^ seed_a)``; the 32 signs of rows ``32w .. 32w + 31`` are the
bits of ``fmix32(c + w * 0x27D4EB2F + seed_b)`` (bit ``i % 32``: 1 is +1, 0 is -1). One hash
per 32 entries keeps the CPU path's sign generation cheap next to the matrix product.

Conventions of this folder (follow them for a new kernel):

- ``X.py`` holds the NumPy reference (readable, float64, the definition) and the dispatch
  the callers use; it imports no GPU package at module level.
- ``X_triton.py`` holds the Triton kernel; it is imported lazily, only when a CUDA tensor
  (or ``TRITON_INTERPRET=1``) asks for it, and imports nothing of ours: the dispatch in
  ``X.py`` passes it what it needs (keys, scale), so the two never import each other.
- The tests run the Triton kernel on the CPU under ``TRITON_INTERPRET=1`` (in a
  subprocess: the variable is read when ``@triton.jit`` runs) against the reference.
"""

from __future__ import annotations

import math

import numpy as np

_M1 = np.uint32(0x85EBCA6B)
_M2 = np.uint32(0xC2B2AE35)
_GOLDEN = np.uint32(0x9E3779B1)
_WORD = np.uint32(0x27D4EB2F)
WORD_BITS = 32
#: Column blocks of the CPU path: a (block, d) float32 sign block (16 MiB at d = 1024) stays in
#: cache between its making and its use in the matrix product.
DEFAULT_BLOCK_COLS = 4_096


def fmix32(h: np.ndarray) -> np.ndarray:
    """murmur3's 32-bit finaliser (a bijection with full avalanche), wrapping uint32 math."""
    h = h ^ (h >> np.uint32(16))
    h = h * _M1
    h = h ^ (h >> np.uint32(13))
    h = h * _M2
    return h ^ (h >> np.uint32(16))


def seed_words(seed: int) -> tuple[int, int]:
    """Two 32-bit keys from a seed of any size (the kernel receives them as arguments)."""
    lo = np.uint32(seed & 0xFFFFFFFF)
    hi = np.uint32((seed >> 32) & 0xFFFFFFFF)
    with np.errstate(over="ignore"):
        a = fmix32(np.array([lo ^ np.uint32(0x5BD1E995)], np.uint32))[0]
        b = fmix32(np.array([hi ^ a ^ np.uint32(0x1B873593)], np.uint32))[0]
    return int(a), int(b)


def sign_words(seed: int, col_start: int, ncols: int, d: int) -> np.ndarray:
    """The packed signs of columns ``col_start ..``: uint32 array (ncols, ceil(d / 32))."""
    seed_a, seed_b = seed_words(seed)
    words = (d + WORD_BITS - 1) // WORD_BITS
    cols = (np.arange(col_start, col_start + ncols, dtype=np.uint64) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    with np.errstate(over="ignore"):
        c = fmix32((cols * _GOLDEN) ^ np.uint32(seed_a))
        w = np.arange(words, dtype=np.uint32) * _WORD + np.uint32(seed_b)
        return fmix32(c[:, None] + w[None, :])


def sign_bits(seed: int, col_start: int, ncols: int, d: int) -> np.ndarray:
    """The signs of columns ``col_start ..`` as uint8 0/1 (1 is +1), array (ncols, d)."""
    packed = np.ascontiguousarray(sign_words(seed, col_start, ncols, d))
    if not np.little_endian:  # pragma: no cover - bit i of a word is in byte i // 8 on little-endian hosts
        packed = packed.byteswap()
    return np.unpackbits(packed.view(np.uint8), axis=1, bitorder="little")[:, :d]


def sign_block(seed: int, col_start: int, ncols: int, d: int, dtype=np.float32) -> np.ndarray:
    """Columns ``col_start .. col_start + ncols`` of the unscaled sign matrix, transposed:
    array (ncols, d) of +1/-1 (row k is column ``col_start + k`` of P)."""
    bits = sign_bits(seed, col_start, ncols, d)
    out = np.empty((ncols, d), dtype=dtype)
    np.multiply(bits, 2, out=out, casting="unsafe")
    out -= 1
    return out


def scale(d: int) -> float:
    """The entries' magnitude, 1/sqrt(d): E[<Px, Py>] = <x, y>."""
    return 1.0 / math.sqrt(d)


def project_reference(x: np.ndarray, seed: int, d: int, col_start: int = 0,
                      block_cols: int = DEFAULT_BLOCK_COLS) -> np.ndarray:
    """The definition, in float64: rows of ``x`` (n, D) are columns ``col_start ..`` of the
    input space; returns ``x @ P[:, cols].T`` of shape (n, d)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    out = np.zeros((x.shape[0], d))
    for start in range(0, x.shape[1], block_cols):
        stop = min(start + block_cols, x.shape[1])
        out += x[:, start:stop] @ sign_block(seed, col_start + start, stop - start, d, np.float64)
    return out * scale(d)


def check_columns(total_columns: int) -> None:
    """Columns are hashed modulo 2**32: a larger input would reuse columns of P."""
    if total_columns >= 2**32:
        raise ValueError(f"the projection supports inputs of up to 2**32 - 1 entries, not {total_columns:,}")


def project_add(x, out, seed: int, col_start: int = 0, block_cols: int = DEFAULT_BLOCK_COLS, ieee: bool = False) -> None:
    """``out += x @ P[:, col_start : col_start + x.shape[1]].T`` for torch tensors.

    The CPU path makes each block of signs with the NumPy hash and multiplies with torch's
    BLAS; a CUDA tensor goes to the Triton kernel, which makes the signs in registers.
    ``x`` is (n, ncols) float32, ``out`` is (n, d) float32 (accumulated in place).
    """
    import torch

    d = out.shape[1]
    check_columns(col_start + x.shape[1])
    if x.is_cuda:
        from dataengine.kernels.rademacher_triton import project_add_triton

        seed_a, seed_b = seed_words(seed)
        project_add_triton(x, out, seed_a, seed_b, scale(d), col_start, ieee=ieee)
        return
    s = scale(d)
    for start in range(0, x.shape[1], block_cols):
        stop = min(start + block_cols, x.shape[1])
        # x @ (2B - 1) = 2 x @ B - rowsum(x): the 0/1 bits go to float in one (threaded)
        # pass, which is most of this path's cost next to the product itself
        bits = torch.from_numpy(sign_bits(seed, col_start + start, stop - start, d)).to(torch.float32)
        block = x[:, start:stop]
        out.addmm_(block, bits, alpha=2 * s)
        out.sub_(block.sum(dim=1, keepdim=True), alpha=s)
