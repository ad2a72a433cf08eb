"""Kernels: GPU kernels (Triton / CuPy), each with a CPU reference. Depends on nothing of ours.

Conventions (``rademacher.py`` + ``rademacher_triton.py`` is the worked example):

- ``X.py``: the NumPy reference (the definition, readable) and the dispatch callers use; no
  GPU package imported at module level.
- ``X_triton.py`` (or a CuPy path behind ``xp=``, as ``minhash.py``): the GPU kernel,
  imported lazily by the dispatch, importing nothing of ours.
- ``tests/test_kernels_X.py``: the kernel against the reference on the CPU, Triton kernels
  under ``TRITON_INTERPRET=1`` in a subprocess (the variable is read when ``@triton.jit``
  runs). No test needs a GPU.

CPU kernels in C follow the same split: ``cpu_fused.c`` holds the kernels (plain C, no
PyTorch headers, so a build takes ~1 s), ``cpu_fused.py`` builds it with the system compiler
on first use, checks every argument and falls back (returns None) where it cannot build;
``tests/test_kernels_cpu_fused.py`` checks each kernel against a float64 PyTorch reference.
"""
