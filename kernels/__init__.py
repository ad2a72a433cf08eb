"""Kernels: GPU kernels (Triton / CuPy), each with a CPU reference. Depends on nothing of ours.

Conventions (``rademacher.py`` + ``rademacher_triton.py`` is the worked example):

- ``X.py``: the NumPy reference (the definition, readable) and the dispatch callers use; no
  GPU package imported at module level.
- ``X_triton.py`` (or a CuPy path behind ``xp=``, as ``minhash.py``): the GPU kernel,
  imported lazily by the dispatch, importing nothing of ours.
- ``tests/test_kernels_X.py``: the kernel against the reference on the CPU, Triton kernels
  under ``TRITON_INTERPRET=1`` in a subprocess (the variable is read when ``@triton.jit``
  runs). No test needs a GPU.
"""
