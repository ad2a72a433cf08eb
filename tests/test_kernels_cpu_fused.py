"""The fused CPU kernels (kernels/cpu_fused.c): built with the real C compiler, checked against
float64 PyTorch references, and the autograd functions the trainer builds on them."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from dataengine.kernels import cpu_fused

# The kernels are C built at run time: with no compiler there is nothing to test here (the trainer's
# fallback to PyTorch's ops is tested in tests/test_trainer.py on either kind of machine).
pytestmark = pytest.mark.skipif(cpu_fused.compiler() is None, reason="no C compiler on this machine")
MIN = torch.finfo(torch.float32).min


@pytest.fixture(autouse=True)
def one_thread_kernels_on():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with cpu_fused.enabled(True):
        yield
    torch.set_num_threads(threads)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


def bf16_rounding(ref: torch.Tensor) -> float:
    """The error of rounding the exact result to bf16: the floor for a kernel that returns bf16."""
    return rel(ref.bfloat16(), ref)


def block_causal_mask(batch: int, rows: int, cols: int, starts: list[int]) -> torch.Tensor:
    """An additive fp32 mask (batch, 1, rows, cols): causal within documents starting at ``starts``."""
    i, j = torch.arange(rows)[:, None], torch.arange(cols)[None, :]
    doc = torch.bucketize(torch.arange(max(rows, cols)), torch.tensor(starts), right=True)
    allowed = (j <= i) & (doc[:cols][None, :] == doc[:rows][:, None])
    return torch.where(allowed, 0.0, MIN).expand(batch, 1, rows, cols).contiguous()


def test_the_library_builds_once_and_is_cached(tmp_path):
    first = cpu_fused.build(cpu_fused.compiler(), tmp_path)
    mtime = first.stat().st_mtime_ns
    assert first.parent == tmp_path and first.suffix == ".so"
    assert cpu_fused.build(cpu_fused.compiler(), tmp_path) == first and first.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary files left behind


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_without_a_compiler_the_kernels_are_off_with_a_warning(monkeypatch):
    monkeypatch.setattr(cpu_fused, "_state", {"lib": None, "tried": False, "enabled": True})
    monkeypatch.setenv("CC", "/nonexistent/cc")
    records = _Records()
    cpu_fused.log.addHandler(records)
    try:
        assert cpu_fused.library() is None and not cpu_fused.usable(torch.zeros(1))
        assert cpu_fused.library() is None  # tried once: no second warning
    finally:
        cpu_fused.log.removeHandler(records)
    assert len(records.messages) == 1 and "no C compiler" in records.messages[0]


def test_an_unwritable_cache_falls_back_to_the_temp_dir(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setattr(cpu_fused, "_state", {"lib": None, "tried": False, "enabled": True})
    monkeypatch.setenv("DATAENGINE_KERNEL_CACHE", str(blocker / "kernels"))  # cannot be created
    monkeypatch.setattr(cpu_fused.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert cpu_fused.library() is not None
    assert list((tmp_path / "tmp").glob("dataengine-kernels-*/cpu_fused-*.so"))


def test_a_failing_build_says_why_and_leaves_no_library(tmp_path, monkeypatch):
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C\n")
    monkeypatch.setattr(cpu_fused, "SOURCE", broken)
    with pytest.raises(RuntimeError, match="failed to build broken.c"):
        cpu_fused.build(cpu_fused.compiler(), tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())


def test_usable_needs_the_switch_one_thread_and_cpu_tensors():
    x = torch.zeros(4)
    assert cpu_fused.usable(x)
    with cpu_fused.enabled(False):
        assert not cpu_fused.usable(x)
    torch.set_num_threads(2)
    assert not cpu_fused.usable(x)  # sequential kernels: PyTorch's parallel ops win with more threads
    torch.set_num_threads(1)
    assert not cpu_fused.usable(x, torch.zeros(1, device="meta"))
    assert cpu_fused.usable(torch.nn.Parameter(x))

    class Wrapped(torch.Tensor):  # a tensor subclass (DTensor, a compile trace's fake tensor): no raw pointers
        pass

    assert not cpu_fused.usable(x.as_subclass(Wrapped))


def test_rmsnorm_matches_float64():
    torch.manual_seed(0)
    x, w, g = torch.randn(6, 33, 200) * 3, torch.randn(200), torch.randn(6, 33, 200).bfloat16()
    out, rstd = cpu_fused.rmsnorm_forward(x, w, 1e-5)
    xd, wd = x.double().requires_grad_(), w.double().requires_grad_()
    ref = xd * torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + 1e-5) * wd
    assert out.dtype == torch.bfloat16 and rel(out, ref) <= 1.01 * bf16_rounding(ref.detach())
    ref.backward(g.double())
    dx, dw = cpu_fused.rmsnorm_backward(g, x, w, rstd)
    assert dx.dtype == dw.dtype == torch.float32
    assert rel(dx, xd.grad) < 1e-5 and rel(dw, wd.grad) < 1e-5


@pytest.mark.parametrize("with_mask", [True, False])
def test_attention_softmax_matches_float64(with_mask):
    torch.manual_seed(1)
    batch, heads, rows, cols = 3, 2, 40, 40
    scores = (torch.randn(batch * heads, rows, cols) * 4).bfloat16()
    mask = block_causal_mask(batch, rows, cols + 7, [0, 13, 29]) if with_mask else None  # wider: first cols apply
    dense = (mask[..., :cols].repeat_interleave(heads, 0).reshape(-1, rows, cols).double() if with_mask
             else torch.zeros(()))
    sd = scores.double().requires_grad_()
    ref = torch.softmax(sd * 0.3 + dense, -1)
    probs = cpu_fused.attention_softmax_(scores.clone(), mask, heads, 0.3)
    assert rel(probs, ref) <= 1.01 * bf16_rounding(ref.detach())
    if with_mask:  # masked entries are exact zeros, not tiny numbers
        assert torch.equal(probs == 0, dense == MIN)
    grad = torch.randn(batch * heads, rows, cols).bfloat16()
    ref.backward(grad.double())
    d_scores = cpu_fused.attention_softmax_backward_(grad.clone(), probs, 0.3)
    assert rel(d_scores, sd.grad) < 1e-2  # bf16 probabilities and output: a few bf16 roundings


def test_a_fully_masked_row_is_uniform_as_in_pytorch():
    scores = torch.randn(1, 2, 5).bfloat16()
    mask = torch.full((1, 1, 2, 5), MIN)
    mask[0, 0, 0, :2] = 0.0
    probs = cpu_fused.attention_softmax_(scores.clone(), mask, 1, 1.0)
    torch.testing.assert_close(probs.float(), torch.softmax(scores.float() + mask[0], -1), atol=4e-3, rtol=0)
    assert torch.allclose(probs[0, 1].float(), torch.full((5,), 0.2), atol=1e-3)


def test_swiglu_matches_float64():
    torch.manual_seed(2)
    gate, up = (torch.randn(7, 300) * 4).bfloat16(), torch.randn(7, 300).bfloat16()
    gd, ud = gate.double().requires_grad_(), up.double().requires_grad_()
    ref = F.silu(gd) * ud
    assert rel(cpu_fused.swiglu_forward(gate, up), ref) <= 1.01 * bf16_rounding(ref.detach())
    grad = torch.randn(7, 300).bfloat16()
    ref.backward(grad.double())
    d_gate, d_up = cpu_fused.swiglu_backward(grad, gate, up)
    assert rel(d_gate, gd.grad) <= 1.01 * bf16_rounding(gd.grad)
    assert rel(d_up, ud.grad) <= 1.01 * bf16_rounding(ud.grad)
    assert torch.isfinite(cpu_fused.swiglu_forward(torch.tensor([-1e4, 1e4, 0.0]).bfloat16(),
                                                   torch.ones(3).bfloat16())).all()  # no overflow at the extremes


def test_cross_entropy_matches_float64_and_skips_ignored_targets():
    torch.manual_seed(3)
    logits, targets = (torch.randn(50, 97) * 5).bfloat16(), torch.randint(0, 97, (50,))
    targets[[4, 9]] = -100
    ld = logits.double().requires_grad_()
    ref = F.cross_entropy(ld, targets, reduction="sum")
    total, lse = cpu_fused.cross_entropy_forward(logits, targets)
    assert total == pytest.approx(float(ref.detach()), rel=1e-6)
    ref.backward()
    grad = cpu_fused.cross_entropy_backward(logits, targets, lse, 1.0)
    assert rel(grad, ld.grad) <= 1.01 * bf16_rounding(ld.grad)
    assert not grad[[4, 9]].any()


def test_wrong_inputs_are_refused_before_reaching_c():
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match="contiguous torch.float32"):
        cpu_fused.rmsnorm_forward(x.t(), torch.ones(4), 1e-6)  # transposed: not contiguous
    with pytest.raises(ValueError, match="need shape"):
        cpu_fused.rmsnorm_forward(x, torch.ones(5), 1e-6)
    with pytest.raises(ValueError, match="torch.bfloat16"):
        cpu_fused.swiglu_forward(x, x)
    with pytest.raises(ValueError, match=r"outside \[0, 8\)"):
        cpu_fused.cross_entropy_forward(x.bfloat16(), torch.tensor([0, 1, 8, 2]))
    with pytest.raises(ValueError, match="mask"):
        cpu_fused.attention_softmax_(torch.zeros(2, 3, 3).bfloat16(), torch.zeros(2, 1, 3, 3), 2, 1.0)  # 2 heads


def test_fused_attention_follows_the_autograd_path():
    """FusedSoftmaxAttention against the eager bmm attention it replaces (same bf16 matmuls)."""
    from dataengine.trainer.attention import FusedSoftmaxAttention

    torch.manual_seed(4)
    batch, heads, s, d = 2, 3, 24, 16
    q, k, v = (torch.randn(batch * heads, s, d).bfloat16().requires_grad_() for _ in range(3))
    mask = block_causal_mask(batch, s, s, [0, 10])
    out = FusedSoftmaxAttention.apply(q, k, v, mask, heads, d ** -0.5)
    q2, k2, v2 = (t.detach().double().requires_grad_() for t in (q, k, v))
    dense = mask.repeat_interleave(heads, 0).reshape(-1, s, s).double()
    ref = torch.softmax(q2 @ k2.transpose(1, 2) * d ** -0.5 + dense, -1) @ v2
    assert rel(out, ref) < 1e-2
    grad = torch.randn_like(ref)
    out.backward(grad.bfloat16())
    ref.backward(grad)
    for mine, exact in ((q, q2), (k, k2), (v, v2)):
        assert rel(mine.grad, exact.grad) < 2e-2


def test_fused_swiglu_and_cross_entropy_follow_pytorch():
    from dataengine.trainer.loss import token_cross_entropy
    from dataengine.trainer.swiglu import FusedSwiGLU, swiglu

    torch.manual_seed(5)
    gate, up = (torch.randn(3, 5, 64).bfloat16().requires_grad_() for _ in range(2))
    out = swiglu(gate, up)
    assert out.grad_fn.name() == "FusedSwiGLUBackward"
    with cpu_fused.enabled(False):
        assert swiglu(gate, up).grad_fn.name() != FusedSwiGLU.__name__ + "Backward"
    logits = (torch.randn(3, 5, 40) * 3).bfloat16().requires_grad_()
    targets = torch.randint(0, 40, (3, 5))
    loss = token_cross_entropy(logits, targets)
    assert loss.grad_fn.name() == "FusedCrossEntropyBackward"
    reference = F.cross_entropy(logits.detach().float().reshape(-1, 40).requires_grad_(), targets.reshape(-1))
    assert float(loss.detach()) == pytest.approx(float(reference.detach()), rel=1e-5)
    loss.backward()
    exact = logits.detach().double().reshape(-1, 40).requires_grad_()
    F.cross_entropy(exact, targets.reshape(-1)).backward()
    assert rel(logits.grad.reshape(-1, 40), exact.grad) <= 1.01 * bf16_rounding(exact.grad)
