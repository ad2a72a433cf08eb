"""The seeded Rademacher projection: its definition, the CPU path, the Triton kernel (interpreted)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from dataengine.kernels.rademacher import check_columns, project_add, project_reference, sign_block, sign_words


def test_signs_are_a_function_of_seed_and_position():
    a = sign_block(7, 1000, 300, 96)
    assert set(np.unique(a)) == {-1.0, 1.0}
    np.testing.assert_array_equal(a, sign_block(7, 1000, 300, 96))  # deterministic
    np.testing.assert_array_equal(a[100:], sign_block(7, 1100, 200, 96))  # any block, any order
    assert (a != sign_block(8, 1000, 300, 96)).mean() > 0.45  # another seed: another matrix
    # seeds beyond 32 bits still matter
    assert (sign_block(7, 0, 64, 64) != sign_block(7 + 2**32, 0, 64, 64)).mean() > 0.45
    # column indices wrap at 2**32 only, and that is refused for inputs that large
    with pytest.raises(ValueError):
        check_columns(2**32)


def test_signs_look_independent():
    s = sign_block(3, 0, 20_000, 256)
    assert abs(s.mean()) < 0.01
    corr_rows = np.corrcoef(s.T)  # 256 rows of P: pairwise correlation over 20k columns
    off = corr_rows[~np.eye(256, dtype=bool)]
    assert np.abs(off).max() < 0.05
    # neighbouring columns (consecutive counters) and neighbouring bits in one word
    assert abs(np.mean(s[:-1] * s[1:])) < 0.01
    assert abs(np.mean(s[:, :-1] * s[:, 1:])) < 0.01
    assert sign_words(3, 0, 4, 256).shape == (4, 8)


def test_cpu_path_matches_reference_and_streams_piecewise():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5000)).astype(np.float32)
    ref = project_reference(x, seed=11, d=128)
    out = torch.zeros(6, 128)
    project_add(torch.from_numpy(x), out, seed=11, block_cols=777)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-4)
    # the same vector given as pieces (parameter tensors) at their column offsets
    pieces = torch.zeros(6, 128)
    for start, stop in ((0, 1234), (1234, 4000), (4000, 5000)):
        project_add(torch.from_numpy(x[:, start:stop].copy()), pieces, seed=11, col_start=start)
    np.testing.assert_allclose(pieces.numpy(), ref, rtol=1e-4, atol=1e-4)


def jl_epsilon(n_points: int, d: int, delta: float = 0.01) -> float:
    """Smallest eps with d >= 4 ln(n^2 / delta) / (eps^2/2 - eps^3/3) (Dasgupta & Gupta's JL lemma)."""
    need = 4 * math.log(n_points**2 / delta) / d
    lo, hi = 1e-6, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if mid**2 / 2 - mid**3 / 3 >= need:
            hi = mid
        else:
            lo = mid
    return hi


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_projection_preserves_geometry_within_the_jl_bound(seed):
    rng = np.random.default_rng(100 + seed)
    n, D, d = 40, 6000, 512
    # not just isotropic noise: a few shared directions make inner products large and varied
    basis = rng.standard_normal((5, D))
    x = rng.standard_normal((n, D)) * 0.5 + rng.standard_normal((n, 5)) @ basis
    p = project_reference(x, seed=seed, d=d)
    eps = jl_epsilon(n, d)
    for i in range(n):
        for j in range(i + 1, n):
            true = np.sum((x[i] - x[j]) ** 2)
            got = np.sum((p[i] - p[j]) ** 2)
            assert abs(got - true) <= eps * true
    # inner products of unit vectors move by at most eps (polarisation of the above)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    pu = project_reference(u, seed=seed, d=d)
    assert np.abs(pu @ pu.T - u @ u.T).max() <= eps


TRITON_CHECK = textwrap.dedent("""
    import json, os
    os.environ["TRITON_INTERPRET"] = "1"
    import numpy as np, torch
    from dataengine.kernels.rademacher import project_reference, scale, seed_words
    from dataengine.kernels.rademacher_triton import project_add_triton
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 300)).astype(np.float32)
    out = torch.full((5, 96), 0.5)
    seed_a, seed_b = seed_words(123)
    project_add_triton(torch.from_numpy(x), out, seed_a, seed_b, scale(96), col_start=2**31 + 7, ieee=True)
    ref = project_reference(x, seed=123, d=96, col_start=2**31 + 7) + 0.5
    print(json.dumps({"max_abs_diff": float(np.abs(out.numpy() - ref).max()), "scale": float(np.abs(ref).max())}))
""")


@pytest.mark.slow
def test_triton_kernel_matches_reference_in_interpreter_mode():
    """The GPU kernel, run on the CPU by Triton's interpreter (no GPU needed), gives the
    reference's projection, accumulated into ``out``, at column offsets past 2**31."""
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-P", "-c", TRITON_CHECK], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["scale"] > 1
    assert result["max_abs_diff"] < 1e-4
