"""Which precision a run computes in, and the autocast context that applies it.

fp32 master weights and optimizer states either way: bf16 is autocast of the forward (and so
of the backward's matmuls), never bf16 parameters. Shared by pretraining and post-training.
"""

from __future__ import annotations

import contextlib

import torch

# Below this width the bf16 matmuls are too small to pay for the casts (measured on an
# AVX512-BF16 CPU: tiny preset 0.84x, small preset 1.6x; see benchmarks/RESULTS.md).
CPU_BF16_MIN_HIDDEN = 256


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 matmuls natively (AVX512-BF16 or AMX), where autocast pays."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:  # not Linux: stay with fp32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(precision: str, device: torch.device, hidden_size: int) -> bool:
    """``precision: auto`` is bf16 autocast on CUDA, and on CPUs with native bf16 for models wide
    enough to gain from it; fp32 otherwise. ``fp32`` / ``bf16`` pin it."""
    if precision == "auto":
        if device.type == "cuda":
            return True
        return hidden_size >= CPU_BF16_MIN_HIDDEN and cpu_has_native_bf16()
    return precision == "bf16"


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on ``device`` when ``bf16``, else a no-op context."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
