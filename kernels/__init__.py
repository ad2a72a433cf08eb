"""Kernels: GPU kernels (Triton / CuPy), each with a CPU reference. Depends on nothing of ours."""
