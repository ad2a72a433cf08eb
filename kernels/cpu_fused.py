"""Fused CPU kernels (``cpu_fused.c``) for bf16-autocast training: build, load, and call safely.

The C file is compiled with the system C compiler (``$CC``, else gcc / cc / clang) on first use,
for this machine (``-O3 -march=native``), into a per-user cache keyed by the source, the
compiler and the CPU's flags, so a shared home directory never hands one CPU's build to
another. A build takes ~1 s; without a compiler (or if the build fails) :func:`library`
returns None and the trainer keeps its PyTorch path, with one warning.

The wrappers check every tensor (device, dtype, contiguity, shape) before handing raw pointers
to C, so a wrong call raises ``ValueError`` instead of reading the wrong memory. The kernels
are sequential: :func:`usable` says whether the current process should use them (one torch
thread; with more, PyTorch's parallel kernels win). ``set_enabled`` is the trainer's switch
(``runtime.cpu_kernels``).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_fused.c")
FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-fno-math-errno", "-fPIC", "-shared"]
MAX_SOFTMAX_ROW = 16384  # longest score row: the softmax keeps one fp32 row on the C stack

_PLAIN = (torch.Tensor, torch.nn.Parameter)
_state: dict = {"lib": None, "tried": False, "enabled": False}
_i64, _f32, _ptr = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
_SIGNATURES = {
    "rmsnorm_fwd": (None, [_ptr, _ptr, _ptr, _ptr, _i64, _i64, _f32]),
    "rmsnorm_bwd": (None, [_ptr, _ptr, _ptr, _ptr, _ptr, _ptr, _i64, _i64]),
    "attn_softmax_fwd": (None, [_ptr, _ptr, _i64, _i64, _i64, _i64, _i64, _i64, _f32]),
    "attn_softmax_bwd": (None, [_ptr, _ptr, _i64, _i64, _f32]),
    "swiglu_fwd": (None, [_ptr, _ptr, _ptr, _i64]),
    "swiglu_bwd": (None, [_ptr, _ptr, _ptr, _ptr, _ptr, _i64]),
    "cross_entropy_fwd": (ctypes.c_double, [_ptr, _ptr, _ptr, _i64, _i64, _i64]),
    "cross_entropy_bwd": (None, [_ptr, _ptr, _ptr, _ptr, _i64, _i64, _i64, _f32]),
}


def compiler() -> str | None:
    """The C compiler to build with: ``$CC`` if set (and found), else gcc, cc or clang."""
    if os.environ.get("CC"):
        return shutil.which(os.environ["CC"])
    return next((path for name in ("gcc", "cc", "clang") if (path := shutil.which(name))), None)


def cache_dir() -> Path:
    """Where builds are kept: ``$DATAENGINE_KERNEL_CACHE``, else ``$XDG_CACHE_HOME`` or ~/.cache."""
    if os.environ.get("DATAENGINE_KERNEL_CACHE"):
        return Path(os.environ["DATAENGINE_KERNEL_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dataengine" / "kernels"


def _cpu_flags() -> str:
    try:
        return next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:  # not Linux: the compiler's own target description stands in
        return ""


def build(cc: str, out_dir: Path) -> Path:
    """Compile the kernels with ``cc`` into ``out_dir`` (atomically); returns the shared library."""
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), version, " ".join(FLAGS), _cpu_flags()]).encode()).hexdigest()
    target = out_dir / f"cpu_fused-{key[:16]}.so"
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
    os.close(fd)
    try:
        done = subprocess.run([cc, *FLAGS, str(SOURCE), "-o", tmp, "-lm"], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{cc} failed to build {SOURCE.name}:\n{done.stderr.strip()[-2000:]}")
        os.replace(tmp, target)  # concurrent builders each write their own file; the last rename wins
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def library() -> ctypes.CDLL | None:
    """The loaded kernels, built on first call; None (and one warning) where they cannot be built."""
    if not _state["tried"]:
        _state["tried"] = True
        cc = compiler()
        if cc is None:
            log.warning("no C compiler found ($CC, gcc, cc, clang): fused CPU kernels off, PyTorch ops used")
            return None
        try:
            try:
                path = build(cc, cache_dir())
            except OSError:  # an unwritable cache (read-only home, a file in the way): this user's temp dir
                path = build(cc, Path(tempfile.gettempdir()) / f"dataengine-kernels-{os.getuid()}")
            lib = ctypes.CDLL(str(path))
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            log.warning("fused CPU kernels off, PyTorch ops used: %s", exc)
            return None
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        _state["lib"] = lib
    return _state["lib"]


def set_enabled(enabled: bool) -> None:
    """The trainer's switch (off until a run turns it on): False keeps every caller on its PyTorch path."""
    _state["enabled"] = bool(enabled)


@contextmanager
def enabled(value: bool):
    """Run a block with the kernels switched on or off (tests, benchmarks)."""
    before = _state["enabled"]
    set_enabled(value)
    try:
        yield
    finally:
        set_enabled(before)


def usable(*tensors: torch.Tensor) -> bool:
    """Whether to take the fused path for these tensors: switched on, built, one torch thread
    (the kernels are sequential), and all plain CPU tensors (not DTensors, nor the fake tensors
    of a ``torch.compile`` trace, which then traces the PyTorch path)."""
    return (_state["enabled"] and torch.get_num_threads() == 1
            and all(type(t) in _PLAIN and t.device.type == "cpu" for t in tensors) and library() is not None)


def _check(t: torch.Tensor, dtype: torch.dtype, name: str, shape: tuple | None = None) -> int:
    if t.device.type != "cpu" or t.dtype != dtype or not t.is_contiguous():
        raise ValueError(f"{name}: need a contiguous {dtype} CPU tensor, got {t.dtype} on {t.device} "
                         f"(contiguous: {t.is_contiguous()})")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name}: need shape {tuple(shape)}, got {tuple(t.shape)}")
    return t.data_ptr()


def _lib() -> ctypes.CDLL:
    lib = library()
    if lib is None:
        raise RuntimeError("the fused CPU kernels could not be built (see the warning above)")
    return lib


def rmsnorm_forward(x: torch.Tensor, weight: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """bf16 ``weight * x / sqrt(mean(x^2) + eps)`` over the last dim of fp32 ``x``; and each row's rstd."""
    cols = x.size(-1)
    rows = x.numel() // cols
    out = torch.empty(x.shape, dtype=torch.bfloat16)
    rstd = torch.empty(rows, dtype=torch.float32)
    _lib().rmsnorm_fwd(_check(x, torch.float32, "x"), _check(weight, torch.float32, "weight", (cols,)),
                       out.data_ptr(), rstd.data_ptr(), rows, cols, eps)
    return out, rstd


def rmsnorm_backward(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                     rstd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients (fp32) of x and weight from the bf16 gradient of :func:`rmsnorm_forward`'s output."""
    cols = x.size(-1)
    rows = x.numel() // cols
    dx = torch.empty(x.shape, dtype=torch.float32)
    dw = torch.zeros(cols, dtype=torch.float64)
    _lib().rmsnorm_bwd(_check(grad, torch.bfloat16, "grad", x.shape), _check(x, torch.float32, "x"),
                       _check(weight, torch.float32, "weight", (cols,)), _check(rstd, torch.float32, "rstd", (rows,)),
                       dx.data_ptr(), dw.data_ptr(), rows, cols)
    return dx, dw.float()


def attention_softmax_(scores: torch.Tensor, mask: torch.Tensor | None, heads: int, scale: float) -> torch.Tensor:
    """In place on bf16 ``scores`` (batch * heads, rows, cols): ``softmax(scale * scores + mask)``.

    ``mask``: fp32 additive mask (batch, 1, rows, >= cols) whose first ``cols`` columns apply,
    shared by the heads; or None."""
    bh, rows, cols = scores.shape
    if cols > MAX_SOFTMAX_ROW:
        raise ValueError(f"scores: rows longer than {MAX_SOFTMAX_ROW} are not supported")
    mask_ptr, batch_stride, row_stride = None, 0, 0
    if mask is not None:
        if (mask.dtype != torch.float32 or mask.dim() != 4 or mask.size(0) * heads != bh or mask.size(1) != 1
                or mask.size(2) != rows or mask.size(3) < cols or mask.stride(3) != 1 or mask.device.type != "cpu"):
            raise ValueError(f"mask: need fp32 (batch, 1, {rows}, >= {cols}) with unit column stride, "
                             f"got {mask.dtype} {tuple(mask.shape)} strides {mask.stride()}")
        mask_ptr, batch_stride, row_stride = mask.data_ptr(), mask.stride(0), mask.stride(2)
    _lib().attn_softmax_fwd(_check(scores, torch.bfloat16, "scores"), mask_ptr, bh, heads, rows, cols,
                            batch_stride, row_stride, scale)
    return scores


def attention_softmax_backward_(grad_probs: torch.Tensor, probs: torch.Tensor, scale: float) -> torch.Tensor:
    """In place on bf16 ``grad_probs``: the gradient of the pre-scale scores, ``scale p (dp - sum(dp p))``."""
    cols = probs.size(-1)
    _lib().attn_softmax_bwd(_check(grad_probs, torch.bfloat16, "grad_probs", probs.shape),
                            _check(probs, torch.bfloat16, "probs"), probs.numel() // cols, cols, scale)
    return grad_probs


def swiglu_forward(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """bf16 ``silu(gate) * up``."""
    out = torch.empty_like(gate)
    _lib().swiglu_fwd(_check(gate, torch.bfloat16, "gate"), _check(up, torch.bfloat16, "up", gate.shape),
                      out.data_ptr(), gate.numel())
    return out


def swiglu_backward(grad: torch.Tensor, gate: torch.Tensor, up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """bf16 gradients of gate and up from the bf16 gradient of :func:`swiglu_forward`'s output."""
    d_gate, d_up = torch.empty_like(gate), torch.empty_like(up)
    _lib().swiglu_bwd(_check(grad, torch.bfloat16, "grad", gate.shape), _check(gate, torch.bfloat16, "gate"),
                      _check(up, torch.bfloat16, "up", gate.shape), d_gate.data_ptr(), d_up.data_ptr(), gate.numel())
    return d_gate, d_up


def _check_targets(targets: torch.Tensor, rows: int, vocab: int, ignore_index: int) -> int:
    ptr = _check(targets, torch.int64, "targets", (rows,))
    bad = ((targets < 0) | (targets >= vocab)) & (targets != ignore_index)
    if bool(bad.any()):
        raise ValueError(f"targets: {int(bad.sum())} outside [0, {vocab}) (and not ignore_index {ignore_index})")
    return ptr


def cross_entropy_forward(logits: torch.Tensor, targets: torch.Tensor,
                          ignore_index: int = -100) -> tuple[float, torch.Tensor]:
    """Summed cross-entropy (fp32 math) of bf16 ``logits`` (rows, vocab) against int64 ``targets``,
    skipping ``ignore_index``; and each row's log-sum-exp."""
    rows, vocab = logits.shape
    lse = torch.empty(rows, dtype=torch.float32)
    total = _lib().cross_entropy_fwd(_check(logits, torch.bfloat16, "logits"),
                                     _check_targets(targets, rows, vocab, ignore_index), lse.data_ptr(), rows, vocab,
                                     ignore_index)
    return total, lse


def cross_entropy_backward(logits: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor, coef: float,
                           ignore_index: int = -100) -> torch.Tensor:
    """bf16 ``coef * (softmax(logits) - onehot(targets))``, zero rows for ``ignore_index``."""
    rows, vocab = logits.shape
    grad = torch.empty_like(logits)
    _lib().cross_entropy_bwd(_check(logits, torch.bfloat16, "logits"),
                             _check_targets(targets, rows, vocab, ignore_index),
                             _check(lse, torch.float32, "lse", (rows,)), grad.data_ptr(), rows, vocab, ignore_index,
                             coef)
    return grad
