"""Trainer pieces that need no warehouse: optimizer groups, schedules, config, data split and slicing."""

from __future__ import annotations

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
