"""Trainer pieces that need no warehouse: optimizer groups, schedules, config, data split and slicing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dataengine.core.errors import DataEngineError
from dataengine.trainer.config import ScheduleConfig, TrainConfig, load_config
from dataengine.trainer.data import TrainStream, train_documents, validation_documents
from dataengine.trainer.model import build_model, model_config
from dataengine.trainer.optim import build_optimizers, lr_factor, parameter_groups
from dataengine.warehouse.indexed import IndexedWriter


def _tiny_model():
    return build_model(model_config("tiny", vocab_size=100, eos_id=0, seq_len=16), seed=0)


def test_muon_gets_only_hidden_matrices_and_decay_skips_norms_and_embeddings():
    model = _tiny_model()
    cfg = TrainConfig.model_validate({"optimizer": {"name": "muon"}}).optimizer
    groups = parameter_groups(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    muon = [names[id(p)] for g in groups["muon"] for p in g["params"]]
    assert muon and all(".layers." in f".{n}" and n.endswith("proj.weight") for n in muon)
    # 2 layers x (q, k, v, o, gate, up, down)
    assert len(muon) == 2 * 7
    # with Muon and a tied head, AdamW keeps only what must not decay: embeddings and norms
    (no_decay,) = groups["adamw"]
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert no_decay["weight_decay"] == 0
    assert "model.embed_tokens.weight" in no_decay_names and "model.norm.weight" in no_decay_names
    assert all(p.ndim == 1 for n, p in model.named_parameters() if n in no_decay_names and "embed" not in n)
    assert len(muon) + len(no_decay["params"]) == len(list(model.parameters()))  # each parameter exactly once
    # plain AdamW: the same matrices decay, embeddings and norms do not
    adamw_cfg = TrainConfig.model_validate({"optimizer": {"name": "adamw"}}).optimizer
    no_decay, decay = parameter_groups(model, adamw_cfg)["adamw"]  # in order of first appearance
    assert decay["weight_decay"] > 0 and {names[id(p)] for p in decay["params"]} == set(muon)
    assert {names[id(p)] for p in no_decay["params"]} == no_decay_names
    opts = build_optimizers(model, cfg)
    assert [type(o).__name__ for o in opts] == ["GroupedMuon", "AdamW"]
    assert isinstance(opts[0], torch.optim.Muon)
    adamw_only = build_optimizers(model, adamw_cfg)
    assert [type(o).__name__ for o in adamw_only] == ["AdamW"]


def test_schedules_warm_up_then_decay_to_the_floor():
    cos = ScheduleConfig(kind="cosine", warmup_steps=10, min_lr_ratio=0.1)
    f = [lr_factor(s, 100, cos) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[-1] == pytest.approx(0.1)
    wsd = ScheduleConfig(kind="wsd", warmup_steps=10, decay_fraction=0.2, min_lr_ratio=0.0)
    g = [lr_factor(s, 100, wsd) for s in range(100)]
    assert g[10:80] == [1.0] * 70  # stable phase
    assert g[80] < 1.0 and g[-1] == pytest.approx(0.0)
    assert all(a > b for a, b in zip(g[80:], g[81:]))


def test_config_rejects_unknown_keys_and_applies_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\noptimizer:\n  nmae: muon\n")
    with pytest.raises(DataEngineError, match="nmae"):
        load_config(path)
    path.write_text("steps: 5\noptimizer:\n  name: muon\n")
    cfg = load_config(path, {"schedule.kind": "wsd", "steps": 7})
    assert (cfg.steps, cfg.optimizer.name, cfg.schedule.kind) == (7, "muon", "wsd")


@pytest.fixture
def manifest(tmp_path):
    """Two real Megatron components; document i of component c holds only the token 100*c + i + 1."""
    comps = []
    for c, n_docs in enumerate((40, 25)):
        w = IndexedWriter(tmp_path / f"comp{c}", np.uint16)
        for i in range(n_docs):
            w.add(np.full(30 + i, 100 * c + i + 1))
        counts = w.close()
        comps.append({"name": f"c{c}", "phase": "main", "weight": [0.6, 0.4][c], "prefix": str(tmp_path / f"comp{c}"), **counts})
    return {"blend": "b", "version": 1, "blend_content_hash": "ab" * 16, "seed": 1, "phases": [], "components": comps}


def test_validation_documents_are_deterministic_and_never_trained_on(manifest):
    held = validation_documents(manifest, 0.1)
    again = validation_documents(manifest, 0.1)
    assert all(np.array_equal(held[k], again[k]) for k in ("c0", "c1"))
    assert [len(held["c0"]), len(held["c1"])] == [4, 2]
    other = validation_documents({**manifest, "blend_content_hash": "cd" * 16}, 0.1)
    assert any(not np.array_equal(held[k], other[k]) for k in held)
    train = train_documents(manifest, held)
    for comp in manifest["components"]:
        assert not set(held[comp["name"]]) & set(train[comp["name"]])
        assert len(held[comp["name"]]) + len(train[comp["name"]]) == comp["documents"]
    stream = TrainStream(manifest, seq_len=16, seed=3, micro_batch=4, grad_accum=1, world=1, steps=200, val_fraction=0.1)
    seen = np.unique(np.concatenate([stream.micro_batch_at(s, 0, 0).ravel() for s in range(200)]))
    held_tokens = {100 * c + int(i) + 1 for c, name in enumerate(("c0", "c1")) for i in held[name]}
    assert len(seen) > 40 and not set(seen.tolist()) & held_tokens


def test_ranks_split_a_step_like_accumulation_does(manifest):
    single = TrainStream(manifest, 16, 3, micro_batch=2, grad_accum=4, world=1, steps=10, val_fraction=0.1)
    ddp = TrainStream(manifest, 16, 3, micro_batch=2, grad_accum=2, world=2, steps=10, val_fraction=0.1)
    for step in range(3):
        a = np.concatenate([single.micro_batch_at(step, m, 0) for m in range(4)])
        b = np.concatenate([ddp.micro_batch_at(step, m, r) for m in range(2) for r in range(2)])
        assert np.array_equal(a, b)
    # each rank reads its own slice: sample indices of one step never overlap between ranks
    slices = [set(range(ddp.first_sample(0, m, r), ddp.first_sample(0, m, r) + 2)) for m in range(2) for r in range(2)]
    assert sum(len(s) for s in slices) == len(set().union(*slices)) == ddp.global_batch == 8


def test_grouped_muon_equals_torch_muon_bitwise_and_shares_its_state():
    """Batched Newton-Schulz over same-shape matrices is the same arithmetic as torch's loop."""
    from dataengine.trainer.muon import GroupedMuon

    a, b = _tiny_model(), _tiny_model()
    hidden = lambda m: [p for n, p in m.named_parameters() if p.ndim == 2 and ".layers." in n]  # noqa: E731
    groups = lambda ps: [{"params": ps[:5], "lr": 0.02}, {"params": ps[5:], "lr": 0.01, "weight_decay": 0.2}]  # noqa: E731
    ref = torch.optim.Muon(groups(hidden(a)), adjust_lr_fn="original")
    ours = GroupedMuon(groups(hidden(b)), adjust_lr_fn="original", gram=False)
    x = torch.randint(0, 100, (4, 16), generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        for model, opt in ((a, ref), (b, ours)):
            model(input_ids=x, labels=x).loss.backward()
            opt.step()
            opt.zero_grad()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), _tiny_model().parameters()))  # it trained
    ours.load_state_dict(ref.state_dict())  # checkpoints move between the two classes
    assert torch.equal(ours.state[hidden(b)[0]]["momentum_buffer"], ref.state[hidden(a)[0]]["momentum_buffer"])


def _spectrum(n: int, rows: int, cols: int, smallest: float) -> torch.Tensor:
    """A stack of matrices whose singular values are log-spaced from 1 down to ``smallest``."""
    g = torch.Generator().manual_seed(0)
    u = torch.linalg.qr(torch.randn(n, rows, rows, generator=g))[0]
    v = torch.linalg.qr(torch.randn(n, cols, rows, generator=g))[0]
    return u @ torch.diag_embed(torch.logspace(0, math.log10(smallest), rows).expand(n, rows)) @ v.mT


def test_gram_newton_schulz_is_the_same_iteration_and_as_accurate_in_bf16():
    from dataengine.trainer.muon import batched_newton_schulz

    coefficients = (3.4445, -4.7750, 2.0315)
    for smallest in (1e-6, 1e-2):
        wide = _spectrum(3, 32, 96, smallest)
        exact = batched_newton_schulz(wide.double(), coefficients, 5, 1e-7, torch.float64)
        gram64 = batched_newton_schulz(wide.double(), coefficients, 5, 1e-7, torch.float64, gram=True)
        assert float((gram64 - exact).norm() / exact.norm()) < 1e-10  # the same polynomial, exactly
        error = {g: float((batched_newton_schulz(wide, coefficients, 5, 1e-7, gram=g).double() - exact).norm()
                          / exact.norm()) for g in (False, True)}
        assert error[True] < 1.5 * error[False] + 0.02, (smallest, error)
        tall = batched_newton_schulz(wide.mT, coefficients, 5, 1e-7, gram=True)  # tall: the transpose's result
        assert torch.equal(tall, batched_newton_schulz(wide, coefficients, 5, 1e-7, gram=True).mT)
    square = _spectrum(2, 32, 32, 1e-3)  # below GRAM_MIN_ASPECT the standard form runs
    assert torch.equal(batched_newton_schulz(square, coefficients, 5, 1e-7, gram=True),
                       batched_newton_schulz(square, coefficients, 5, 1e-7))


def test_document_positions_restart_after_every_eos():
    from dataengine.trainer.batches import document_position_ids

    ids = torch.tensor([[5, 6, 0, 7, 8, 9, 0, 0, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]])
    assert document_position_ids(ids, eos_id=0).tolist() == [[0, 1, 2, 0, 1, 2, 3, 0, 0], list(range(9))]


def test_document_masking_keeps_attention_inside_each_document():
    """With document masking, the second document's logits do not depend on the first one's
    tokens (and do without it: the check can fail)."""
    from dataengine.trainer.batches import micro_batch

    model = _tiny_model().eval()
    window = np.array([[11, 12, 13, 14, 0, 21, 22, 23, 24, 25, 26]])
    other = window.copy()
    other[0, :4] = [41, 42, 43, 44]  # another first document, same length
    with torch.no_grad():
        def logits(w, eos):
            b = micro_batch(w, eos)
            # use_cache=False as in training: with a cache transformers ignores packed position ids
            return model(input_ids=b.inputs, position_ids=b.position_ids, use_cache=False).logits[0, 5:]  # 2nd doc
        assert torch.allclose(logits(window, 0), logits(other, 0), atol=1e-6)
        assert not torch.allclose(logits(window, None), logits(other, None), atol=1e-3)
        # the first document alone, positions from 0: the same logits as inside the window
        alone = model(input_ids=torch.tensor([[21, 22, 23, 24, 25]]), use_cache=False).logits[0]
        assert torch.allclose(logits(window, 0), alone, atol=1e-5)


def test_prefetcher_yields_in_order_and_raises_the_threads_error_at_its_step():
    from dataengine.trainer.batches import Prefetcher

    for depth in (0, 2):
        p = Prefetcher(lambda s: s * s, 3, 8, depth)
        assert [p.get(s) for s in range(3, 8)] == [9, 16, 25, 36, 49]
        p.close()

    def make(step):
        if step == 5:
            raise OSError("unreadable shard")
        return step

    p = Prefetcher(make, 3, 8, 2)
    assert [p.get(3), p.get(4)] == [3, 4]
    with pytest.raises(OSError, match="unreadable shard"):
        p.get(5)
    p.close()
    with pytest.raises(ValueError, match="expected step"):
        Prefetcher(make, 0, 3, 0).get(1)


def test_the_docs_state_the_defaults_exactly_as_the_code_has_them():
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[1] / "docs" / "trainer.md").read_text()
    block = text.split("<!-- defaults: generated from TrainConfig() -->", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == TrainConfig().model_dump(mode="json")


def test_newton_schulz_runs_in_the_asked_precision_and_bf16_stays_near_fp64():
    """bf16 by default (torch Muon's); float64 is the reference the benchmarks compare with."""
    from dataengine.trainer.muon import batched_newton_schulz

    torch.manual_seed(0)
    updates = torch.randn(3, 48, 16)
    coefficients = (3.4445, -4.775, 2.0315)
    fast = batched_newton_schulz(updates, coefficients, 5, 1e-7)
    exact = batched_newton_schulz(updates, coefficients, 5, 1e-7, dtype=torch.float64)
    assert fast.dtype == torch.bfloat16 and exact.dtype == torch.float64 and exact.shape == updates.shape
    assert (fast.double() - exact).norm() / exact.norm() < 0.05
    # the quintic iteration pushes every singular value into roughly [0.7, 1.2]
    singular = torch.linalg.svdvals(exact)
    assert singular.min() > 0.5 and singular.max() < 1.3, singular


def test_compile_auto_compiles_cuda_and_only_cpu_runs_long_enough_to_pay(monkeypatch):
    from dataengine.trainer.loop import CPU_COMPILE_MIN_RUN_FLOPS, cpu_compiler_available, should_compile

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert should_compile("auto", cuda) and should_compile("auto", cuda, 1.0)
    assert not should_compile("auto", cpu, CPU_COMPILE_MIN_RUN_FLOPS / 2)  # a short CPU run: the compile would not pay
    assert should_compile("auto", cpu, CPU_COMPILE_MIN_RUN_FLOPS) == cpu_compiler_available()
    assert should_compile(True, cpu, 0.0) and not should_compile(False, cuda, 1e30)  # explicit settings win
    monkeypatch.setenv("CXX", "/nonexistent/c++")  # inductor could not build its kernels here
    assert not cpu_compiler_available()
    assert not should_compile("auto", cpu, 1e30)


def test_progress_bar_says_compiling_until_the_first_step_is_done(capsys):
    from dataengine.trainer.loop import _Bar

    bar = _Bar(3, 0, "compiling (first step)")
    assert "compiling (first step)" in capsys.readouterr().err
    bar.update(1, 2.5)
    bar.close()
    assert bar.bar.desc == "" and "loss=2.500" in capsys.readouterr().err
