"""The Rademacher projection as a Triton kernel: signs made in registers, never in memory.

Same matrix as :mod:`dataengine.kernels.rademacher` (the NumPy reference defines it): each
program computes a (BLOCK_N, BLOCK_D) tile of ``x @ P.T``, walking the input columns in
BLOCK_K steps; the (BLOCK_K, BLOCK_D) tile of signs comes from the counter-based hash of
(column, row word, seed) and goes straight into ``tl.dot``. On a GPU the projection is then
bound by reading ``x`` once, whatever D is.

Imported only when needed (a CUDA tensor, or the tests under ``TRITON_INTERPRET=1``, which
runs this same kernel on the CPU with NumPy).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _fmix32(h):
    h ^= h >> 16
    h *= 0x85EBCA6B
    h ^= h >> 13
    h *= 0xC2B2AE35
    h ^= h >> 16
    return h


@triton.jit
def _project_kernel(
    x_ptr, out_ptr, n, ncols, d, col_start, seed_a, seed_b, alpha,
    stride_xn, stride_xk, stride_on, stride_od,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr, IEEE: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_d = tl.program_id(1)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rd = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    word = (rd // 32).to(tl.uint32) * 0x27D4EB2F + seed_b.to(tl.uint32)
    bit = (rd % 32).to(tl.uint32)
    acc = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    for k0 in range(0, ncols, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(x_ptr + rn[:, None] * stride_xn + rk[None, :] * stride_xk,
                    mask=(rn[:, None] < n) & (rk[None, :] < ncols), other=0.0).to(tl.float32)
        col = (col_start + rk).to(tl.uint32)  # modulo 2**32, as in the reference
        c = _fmix32((col * 0x9E3779B1) ^ seed_a.to(tl.uint32))
        h = _fmix32(c[:, None] + word[None, :])
        signs = tl.where(((h >> bit[None, :]) & 1) == 1, 1.0, -1.0)
        if IEEE:
            acc += tl.dot(x, signs, input_precision="ieee")
        else:
            acc += tl.dot(x, signs)
    prev = tl.load(out_ptr + rn[:, None] * stride_on + rd[None, :] * stride_od,
                   mask=(rn[:, None] < n) & (rd[None, :] < d), other=0.0)
    tl.store(out_ptr + rn[:, None] * stride_on + rd[None, :] * stride_od, prev + acc * alpha,
             mask=(rn[:, None] < n) & (rd[None, :] < d))


def project_add_triton(x, out, seed_a: int, seed_b: int, alpha: float, col_start: int = 0, ieee: bool = False,
                       block_n: int = 16, block_k: int = 64, block_d: int = 64) -> None:
    """``out += alpha * x @ S[:, col_start : col_start + ncols].T`` on the tensors' device.

    ``seed_a``/``seed_b`` are the hash keys of :func:`dataengine.kernels.rademacher.seed_words`
    and ``alpha`` the scale: callers go through :func:`dataengine.kernels.rademacher.project_add`,
    which checks the sizes (this module imports nothing of ours, so no import cycle).
    ``ieee=False`` lets ``tl.dot`` use TF32 on GPUs that have it (the signs are exact in
    TF32; ``x`` is rounded to 10 mantissa bits, far below the projection's own JL error).
    """
    n, ncols = x.shape
    d = out.shape[1]
    grid = (triton.cdiv(n, block_n), triton.cdiv(d, block_d))
    _project_kernel[grid](
        x, out, n, ncols, d, col_start, seed_a, seed_b, alpha,
        x.stride(0), x.stride(1), out.stride(0), out.stride(1),
        BLOCK_N=block_n, BLOCK_K=block_k, BLOCK_D=block_d, IEEE=ieee,
    )
