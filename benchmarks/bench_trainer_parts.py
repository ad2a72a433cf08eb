"""What each piece of the trainer's engineering costs or saves, measured one at a time.

  masking    training step with document masking (block-causal attention) vs plain causal
  attention  training step with SDPA vs the batched-matmul attention (document-masked windows),
             and the attention alone (forward + backward): bf16 at 128..2048 tokens, fp32 at 256, 512
  fused      training step with runtime.fused_layers' pieces off and on (head-major rotary,
             fused RMSNorm)
  rotary     RotaryToHeads' backward alone vs the same rotation read through a transposed view
             (its form before 63d408d), on a contiguous gradient (q's) and a transposed one (k's)
  compile    torch.compile: compile time with an empty and with a warm inductor cache, then
             steady step time compiled vs eager
  optimizer  optimizer step alone: torch Muon vs GroupedMuon; AdamW for-loop vs foreach vs fused
  loader     seconds per step the training loop waits for its batch, prefetch 0 vs 2
  gram       Newton-Schulz on X (torch Muon's) vs on its Gram matrix X X^T, without a restart
             and with the trainer's (optimizer.muon_gram): error against an fp64 reference and
             time, on real gradients, low-rank-plus-noise stacks and log-spaced spectra
  kernels    training step with runtime.cpu_kernels off and on (the fused C kernels)

Steps are real training steps of the preset on the benchmark blend (demo corpus, 512-token
BPE), one torch thread; A and B alternate ``--repeats`` times and the median of each is
compared, because other jobs share the machine (the load is printed).

    python benchmarks/bench_trainer_parts.py masking attention compile optimizer loader --preset small --seq-len 256
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

from trainer_common import add_shape_args, cpu_name, git_revision, machine_load, prepare_blend, train_one

import torch  # noqa: E402


def _setup(args, manifest_path: Path, optimizer: str = "muon"):
    from dataengine.trainer.attention import choose_attention, use_attention
    from dataengine.trainer.config import TrainConfig
    from dataengine.trainer.data import TrainStream
    from dataengine.trainer.loop import build_parametrized_model
    from dataengine.trainer.model import model_config
    from dataengine.trainer.precision import use_bf16

    m = json.loads(manifest_path.read_text())
    cfg = TrainConfig.model_validate({"model": {"preset": args.preset, "seq_len": args.seq_len},
                                      "optimizer": {"name": optimizer}})
    hf = model_config(args.preset, m["vocab_size"], m["eos_id"], args.seq_len)
    model, multipliers = build_parametrized_model(hf, cfg)
    stream = TrainStream(m, args.seq_len, None, args.batch, 1, 1, 10_000, 0.05)
    bf16 = use_bf16("auto", torch.device("cpu"), hf.hidden_size)
    use_attention(model, choose_attention(cfg.runtime.attention, torch.device("cpu"), args.seq_len, bf16))  # as the trainer
    _fuse(model, True, True)
    from dataengine.trainer.loop import use_cpu_kernels
    from dataengine.trainer.swiglu import use_fused_mlp

    use_fused_mlp(model, True)
    use_cpu_kernels("auto", applicable=True)  # the C kernels where they build, as the trainer
    return m, cfg, model, multipliers, stream, bf16


def _fuse(model, rotary: bool, rmsnorm: bool) -> None:
    """``runtime.fused_layers`` by piece (the trainer turns both on on CPU)."""
    from dataengine.trainer.rmsnorm import use_fused_rmsnorm
    from dataengine.trainer.rotary import use_head_major_rotary

    use_head_major_rotary(model, rotary)
    use_fused_rmsnorm(model, rmsnorm)


def _step_seconds(model, optimizers, stream, bf16, eos, steps: int, first: int = 0) -> list[float]:
    from dataengine.trainer.batches import micro_batch
    from dataengine.trainer.loop import causal_lm_loss

    out = []
    for s in range(first, first + steps):
        batch = micro_batch(stream.micro_batch_at(s, 0, 0), eos)
        t = time.perf_counter()
        causal_lm_loss(model, batch, bf16).backward()
        for o in optimizers:
            o.step()
            o.zero_grad(set_to_none=True)
        out.append(time.perf_counter() - t)
    return out


def bench_masking(args, manifest: Path) -> dict:
    from dataengine.trainer.optim import build_optimizers

    m, cfg, model, mult, stream, bf16 = _setup(args, manifest)
    opts = build_optimizers(model, cfg.optimizer, fused=True, multipliers=mult)
    _step_seconds(model, opts, stream, bf16, None, 3)
    times = {"causal": [], "document-masked": []}
    for r in range(args.repeats):
        for name, eos in (("causal", None), ("document-masked", m["eos_id"])):
            times[name].append(statistics.median(_step_seconds(model, opts, stream, bf16, eos, args.steps, 100 * r)))
    a, b = statistics.median(times["causal"]), statistics.median(times["document-masked"])
    return {"step_s_causal": a, "step_s_document_masked": b, "masked_vs_causal": b / a,
            "windows_with_a_boundary": _boundary_share(stream, m["eos_id"])}


def _boundary_share(stream, eos: int) -> float:
    rows = [stream.micro_batch_at(s, 0, 0)[:, :-1] for s in range(50)]
    return float(sum(int((r == eos).any(axis=1).sum()) for r in rows) / sum(len(r) for r in rows))


def bench_attention(args, manifest: Path) -> dict:
    import torch.nn.functional as F

    from dataengine.trainer.attention import bmm_attention_forward, use_attention
    from dataengine.trainer.optim import build_optimizers

    m, cfg, model, mult, stream, bf16 = _setup(args, manifest)
    opts = build_optimizers(model, cfg.optimizer, fused=True, multipliers=mult)
    _step_seconds(model, opts, stream, bf16, m["eos_id"], 3)
    times = {"sdpa": [], "bmm": []}
    for r in range(args.repeats):
        for kind in times:
            use_attention(model, kind)
            _step_seconds(model, opts, stream, bf16, m["eos_id"], 1, 100 * r)
            times[kind].append(statistics.median(_step_seconds(model, opts, stream, bf16, m["eos_id"], args.steps, 100 * r)))
    out = {"step_s_sdpa": statistics.median(times["sdpa"]), "step_s_bmm": statistics.median(times["bmm"])}
    out["step_bmm_vs_sdpa"] = out["step_s_bmm"] / out["step_s_sdpa"]
    heads, dim = model.config.num_attention_heads, model.config.hidden_size // model.config.num_attention_heads
    cases = [(torch.bfloat16, seq) for seq in (128, 256, 512, 1024, 2048)] + [(torch.float32, seq) for seq in (256, 512)]
    for dtype, seq in cases:  # the attention alone, same tokens per batch
        batch = max(1, args.batch * args.seq_len // seq)
        q, k, v = (torch.randn(batch, heads, seq, dim, dtype=dtype, requires_grad=True) for _ in range(3))
        keep = torch.ones(seq, seq, dtype=torch.bool).tril().expand(batch, 1, seq, seq)
        additive = torch.zeros(batch, 1, seq, seq).masked_fill(~keep, torch.finfo(torch.float32).min)
        grad = torch.randn(batch, heads, seq, dim, dtype=dtype)
        kernels = {"sdpa": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=keep),
                   "bmm": lambda: bmm_attention_forward(model, q, k, v, additive)[0].transpose(1, 2)}
        tag = f"attn_{seq}" + ("_fp32" if dtype == torch.float32 else "")
        for name, run in kernels.items():
            ts = []
            for i in range(2 + args.steps):
                t = time.perf_counter()
                run().backward(grad)
                ts.append(time.perf_counter() - t)
                q.grad = k.grad = v.grad = None
            out[f"{tag}_{name}_ms"] = 1000 * statistics.median(ts[2:])
        out[f"{tag}_bmm_vs_sdpa"] = out[f"{tag}_bmm_ms"] / out[f"{tag}_sdpa_ms"]
    return out


def _rotary_backward_through_view(grad: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RotaryToHeads' backward before 63d408d: reads the head-major gradient through a transposed
    view and writes (b, s, h, d) directly (the reference this part compares against)."""
    b, h, s, d = grad.shape
    half = d // 2
    g = grad.transpose(1, 2)
    out = grad.new_empty(b, s, h, d)
    g1, g2, o1, o2 = g[..., :half], g[..., half:], out[..., :half], out[..., half:]
    torch.mul(g1, cos, out=o1)
    o1.addcmul_(g2, sin)
    torch.mul(g2, cos, out=o2)
    o2.addcmul_(g1, sin, value=-1)
    return out


def bench_rotary(args, manifest: Path) -> dict:
    """Milliseconds per backward call at the preset's q/k shape in bf16, both forms alternating."""
    from types import SimpleNamespace

    from dataengine.trainer.model import PRESETS
    from dataengine.trainer.rotary import RotaryToHeads

    shape = PRESETS[args.preset]
    b, s, h = args.batch, args.seq_len, shape["num_attention_heads"]
    d = shape["hidden_size"] // h
    cos, sin = (torch.randn(b, s, 1, d // 2, dtype=torch.bfloat16) for _ in range(2))
    ctx = SimpleNamespace(saved_tensors=(cos, sin))
    grads = {"contiguous": torch.randn(b, h, s, d, dtype=torch.bfloat16),  # q's gradient
             "transposed": torch.randn(b * h, d, s, dtype=torch.bfloat16).transpose(1, 2).view(b, h, s, d)}  # k's
    forms = {"head_major": lambda g: RotaryToHeads.backward(ctx, g)[0],
             "through_view": lambda g: _rotary_backward_through_view(g, cos, sin)}
    out = {}
    for gname, grad in grads.items():
        assert torch.equal(forms["head_major"](grad), forms["through_view"](grad))  # the same numbers
        times = {f: [] for f in forms}
        for _ in range(args.repeats * 5):
            for fname, form in forms.items():
                form(grad)
                t = time.perf_counter()
                for _ in range(20):
                    form(grad)
                times[fname].append((time.perf_counter() - t) / 20 * 1e3)
        for fname in forms:
            out[f"{gname}_{fname}_ms"] = statistics.median(times[fname])
        out[f"{gname}_ratio"] = out[f"{gname}_head_major_ms"] / out[f"{gname}_through_view_ms"]
    return out


def bench_fused(args, manifest: Path) -> dict:
    """Whole training steps with ``runtime.fused_layers``' pieces off and on: head-major rotary, fused RMSNorm
    (PyTorch ops: the C kernels off; the ``kernels`` part measures those)."""
    from dataengine.kernels import cpu_fused
    from dataengine.trainer.optim import build_optimizers

    m, cfg, model, mult, stream, bf16 = _setup(args, manifest)
    cpu_fused.set_enabled(False)
    opts = build_optimizers(model, cfg.optimizer, fused=True, multipliers=mult)
    variants = {"none": (False, False), "rotary": (True, False), "rmsnorm": (False, True), "both": (True, True)}
    _step_seconds(model, opts, stream, bf16, m["eos_id"], 3)
    times = {k: [] for k in variants}
    for r in range(args.repeats):
        for name, (rotary, rmsnorm) in variants.items():
            _fuse(model, rotary, rmsnorm)
            _step_seconds(model, opts, stream, bf16, m["eos_id"], 1, 100 * r)
            times[name].append(statistics.median(_step_seconds(model, opts, stream, bf16, m["eos_id"], args.steps,
                                                               100 * r)))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {**{f"step_s_{k}": v for k, v in med.items()}, **{f"{k}_vs_none": v / med["none"] for k, v in med.items()}}


def bench_kernels(args, manifest: Path) -> dict:
    """Whole training steps (fused layers on) with PyTorch's ops, with the C kernels
    (``runtime.cpu_kernels``), and with the C kernels plus Gram Newton-Schulz (``optimizer.muon_gram``)."""
    from dataengine.kernels import cpu_fused
    from dataengine.trainer.optim import build_optimizers

    m, cfg, model, mult, stream, bf16 = _setup(args, manifest)
    if cpu_fused.library() is None:
        raise SystemExit("the C kernels could not be built here (see the warning): nothing to compare")
    opts = build_optimizers(model, cfg.optimizer, fused=True, multipliers=mult)
    variants = {"pytorch": (False, False), "kernels": (True, False), "kernels_gram": (True, True)}
    _step_seconds(model, opts, stream, bf16, m["eos_id"], 3)
    times = {k: [] for k in variants}
    for r in range(args.repeats):
        for name, (kernels, gram) in variants.items():
            cpu_fused.set_enabled(kernels)
            opts[0].gram = gram
            _step_seconds(model, opts, stream, bf16, m["eos_id"], 1, 100 * r)
            times[name].append(statistics.median(_step_seconds(model, opts, stream, bf16, m["eos_id"], args.steps,
                                                               100 * r)))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {**{f"step_s_{k}": v for k, v in med.items()}, **{f"{k}_vs_pytorch": v / med["pytorch"] for k, v in med.items()}}


def bench_compile(args, manifest: Path) -> dict:
    """Eager (with the CPU fused layers and C kernels, as the trainer runs without compile), then compiled with an
    empty inductor cache (a first run on a machine), then compiled again in a new model with that
    cache warm (a later run of the same shapes)."""
    import os

    from dataengine.trainer.optim import build_optimizers

    out = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        for mode in ("eager", "compiled_cold", "compiled_warm"):
            torch._dynamo.reset()  # in-memory compiled code is not what a new process would have
            m, cfg, model, mult, stream, bf16 = _setup(args, manifest)
            opts = build_optimizers(model, cfg.optimizer, fused=True, multipliers=mult)
            if mode != "eager":  # as the trainer: the fused layers and the C kernels are off when compiling
                from dataengine.trainer.loop import use_cpu_kernels
                from dataengine.trainer.swiglu import use_fused_mlp

                _fuse(model, False, False)
                use_fused_mlp(model, False)
                use_cpu_kernels("auto", applicable=False)
                model.compile()
            t = time.perf_counter()
            _step_seconds(model, opts, stream, bf16, m["eos_id"], 2)  # compiles here (and warms up eager)
            out[f"{mode}_first_2_steps_s"] = time.perf_counter() - t
            out[f"{mode}_step_s"] = statistics.median(_step_seconds(model, opts, stream, bf16, m["eos_id"],
                                                                    args.steps * args.repeats, 2))
    for cache in ("cold", "warm"):
        compile_s = out[f"compiled_{cache}_first_2_steps_s"] - out["eager_first_2_steps_s"]
        saved = out["eager_step_s"] - out[f"compiled_{cache}_step_s"]
        out[f"compile_time_{cache}_s"] = compile_s
        out[f"speedup_{cache}"] = out["eager_step_s"] / out[f"compiled_{cache}_step_s"]
        out[f"break_even_steps_{cache}"] = compile_s / saved if saved > 0 else None
    return out


def bench_optimizer(args, manifest: Path) -> dict:
    from dataengine.trainer.muon import GroupedMuon
    from dataengine.trainer.optim import parameter_groups

    m, cfg, model, mult, stream, bf16 = _setup(args, manifest)
    from dataengine.trainer.batches import micro_batch
    from dataengine.trainer.loop import causal_lm_loss

    causal_lm_loss(model, micro_batch(stream.micro_batch_at(0, 0, 0), None), bf16).backward()  # real gradients
    groups = parameter_groups(model, cfg.optimizer, mult)
    adamw_all = [{"params": list(model.parameters()), "lr": 1e-3}]
    makers = {
        "muon_torch": lambda: torch.optim.Muon(groups["muon"], adjust_lr_fn="original"),
        "muon_grouped": lambda: GroupedMuon(groups["muon"], adjust_lr_fn="original"),
        "adamw_for_loop": lambda: torch.optim.AdamW(adamw_all, foreach=False),
        "adamw_foreach": lambda: torch.optim.AdamW(adamw_all, foreach=True),
        "adamw_fused": lambda: torch.optim.AdamW(adamw_all, fused=True),
    }
    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    times = {k: [] for k in makers}
    for _ in range(args.repeats):
        for name, make in makers.items():
            opt = make()
            opt.step()  # state allocation
            t = time.perf_counter()
            for _ in range(args.steps):
                opt.step()
            times[name].append((time.perf_counter() - t) / args.steps)
            model.load_state_dict(state0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {**{f"{k}_s": v for k, v in med.items()},
            "muon_grouped_speedup": med["muon_torch"] / med["muon_grouped"],
            "adamw_fused_vs_for_loop": med["adamw_for_loop"] / med["adamw_fused"],
            "adamw_fused_vs_foreach": med["adamw_foreach"] / med["adamw_fused"]}


def gram_newton_schulz_no_restart(updates: torch.Tensor, coefficients, steps: int, eps: float) -> torch.Tensor:
    """The Gram form without the trainer's restart (its first version, which diverged in bf16):
    R <- p(R) R p(R), Q <- p(R) Q, X = Q X0 with p(R) = aI + bR + cR^2."""
    a, b, c = coefficients
    x = updates.bfloat16()
    tall = x.size(-2) > x.size(-1)
    x = x.mT if tall else x
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    r, q = x @ x.mT, None
    for k in range(steps):
        p = torch.baddbmm(r, r, r, beta=b, alpha=c)
        p.diagonal(dim1=-2, dim2=-1).add_(a)
        q = p if q is None else p @ q
        if k < steps - 1:
            r = p @ (r @ p)
    x = q @ x
    return x.mT if tall else x


def bench_gram(args, manifest: Path) -> dict:
    """Plain vs Gram Newton-Schulz (without and with the restart) on the preset's real gradients
    (stacked by shape), low-rank-plus-noise stacks and spectra log-spaced from 1 to 1e-2 and
    1e-6: relative error against the plain iteration in fp64, and time."""
    from dataengine.trainer.batches import micro_batch
    from dataengine.trainer.loop import causal_lm_loss
    from dataengine.trainer.muon import batched_newton_schulz

    m, cfg, model, mult, stream, bf16 = _setup(args, manifest)
    causal_lm_loss(model, micro_batch(stream.micro_batch_at(0, 0, 0), None), bf16).backward()
    coefficients, steps, eps = (3.4445, -4.775, 2.0315), 5, 1e-7
    by_shape: dict[tuple, list] = {}
    for name, p in model.named_parameters():
        if p.ndim == 2 and ".layers." in name and p.grad is not None:
            by_shape.setdefault(tuple(p.grad.shape), []).append(p.grad)
    torch.manual_seed(0)
    stacks = {f"grad {r}x{c}": torch.stack(g) for (r, c), g in by_shape.items()}
    for (r, c), g in by_shape.items():
        low = torch.randn(len(g), r, 8) @ torch.randn(len(g), 8, c)
        stacks[f"rank8+noise {r}x{c}"] = low + 0.01 * torch.randn(len(g), r, c)
        if r != c:
            short, long = min(r, c), max(r, c)
            for smallest in (1e-2, 1e-6):
                u = torch.linalg.qr(torch.randn(len(g), short, short))[0]
                v = torch.linalg.qr(torch.randn(len(g), long, short))[0]
                spectrum = u @ torch.diag_embed(torch.logspace(0, math.log10(smallest), short).expand(len(g), short))
                stacks[f"spectrum 1..{smallest:g} {r}x{c}"] = spectrum @ v.mT if r < c else (spectrum @ v.mT).mT
    gram = lambda *a: batched_newton_schulz(*a, gram=True)  # noqa: E731
    out = {}
    for label, stack in stacks.items():
        ref = batched_newton_schulz(stack, coefficients, steps, eps, dtype=torch.float64)
        for kind, fn in (("plain", batched_newton_schulz), ("gram-no-restart", gram_newton_schulz_no_restart),
                         ("gram", gram)):
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                got = fn(stack, coefficients, steps, eps)
                times.append(time.perf_counter() - t)
            out[f"{label} {kind} rel_error"] = float((got.double() - ref).norm() / ref.norm())
            out[f"{label} {kind} ms"] = 1000 * statistics.median(times)
    return out


def bench_loader(args, manifest: Path, tok: Path, work: Path) -> dict:
    out = {}
    for prefetch in (0, 2):
        waits, steps = [], []
        for r in range(args.repeats):
            run = work / f"loader{prefetch}-{r}"
            res = train_one({"name": f"prefetch {prefetch}", "manifest": str(manifest), "tokenizer": str(tok),
                             "output": str(run), "overrides": {
                                 "steps": args.steps, "model.preset": args.preset, "model.seq_len": args.seq_len,
                                 "data.micro_batch_size": args.batch, "data.prefetch": prefetch, "eval_every": 10**6}})
            rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            waits += [r_["data_wait_s"] for r_ in rows if "data_wait_s" in r_][2:]
            steps.append(res["summary"]["train_seconds"] / args.steps)
        out[f"prefetch{prefetch}_wait_ms_median"] = 1000 * statistics.median(waits)
        out[f"prefetch{prefetch}_wait_ms_max"] = 1000 * max(waits)
        out[f"prefetch{prefetch}_step_s"] = statistics.median(steps)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parts", nargs="+", choices=["masking", "attention", "fused", "kernels", "rotary", "compile", "optimizer", "loader",
                                            "gram"])
    add_shape_args(ap, steps=10, steps_help="steps per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{cpu_name()}, 1 torch thread, torch {torch.__version__}, preset {args.preset}, seq {args.seq_len}, "
          f"batch {args.batch}, load {machine_load()}, revision {git_revision()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest, tok = prepare_blend(tmp)
        for part in args.parts:
            if part == "loader":
                result = bench_loader(args, manifest, tok, tmp)
            else:
                result = {"masking": bench_masking, "attention": bench_attention, "fused": bench_fused,
                          "kernels": bench_kernels, "rotary": bench_rotary, "compile": bench_compile,
                          "optimizer": bench_optimizer, "gram": bench_gram}[part](args, manifest)
            print(json.dumps({"part": part, "load": machine_load(), **{k: round(v, 5) if isinstance(v, float) else v
                                                                       for k, v in result.items()}}), flush=True)


if __name__ == "__main__":
    main()
