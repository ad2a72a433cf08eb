"""benchmarks/lr_sweep.py --ablate: each ablation takes out exactly its piece of CompleteP (the
RESULTS tables that rest on it read 'the width rules are not the cause' from these patches)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dataengine.trainer import parametrization as p

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def lr_sweep(monkeypatch):
    if not (BENCHMARKS / "lr_sweep.py").exists():
        pytest.skip("benchmarks/ not beside the tests (installed package only)")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(p, "completep", p.completep)  # restored after the test: the ablation patches it
    import lr_sweep

    return lr_sweep


@pytest.mark.parametrize("ablation", ["spectral_init", "logit_multiplier", "width_rules"])
def test_each_ablation_takes_out_its_piece_and_nothing_else(lr_sweep, ablation):
    full = p.completep
    roles = [("embedding", "adamw"), ("head", "adamw"), ("final_norm", "adamw"), ("block_vector", "adamw"),
             ("block_input", "muon"), ("block_output", "muon"), ("block_input", "adamw"), ("block_output", "adamw")]
    width, depth = 4.0, 0.5
    before = {r: full(*r, width, depth) for r in roles}
    lr_sweep.apply_ablation(ablation)
    after = {r: p.completep(*r, width, depth) for r in roles}
    changed = {r for r in roles if after[r] != before[r]}
    init_out = ablation in ("spectral_init", "width_rules")
    logits_out = ablation in ("logit_multiplier", "width_rules")
    assert changed == ({("block_input", "muon"), ("block_output", "muon")} if init_out else set()) | (
        {("final_norm", "adamw")} if logits_out else set())
    if init_out:  # transformers' init at every width; the depth factor on o/down stays
        assert after[("block_input", "muon")].init == 1.0
        assert math.isclose(after[("block_output", "muon")].init, 1 / depth)
        assert after[("block_output", "muon")].lr == before[("block_output", "muon")].lr
    if logits_out:
        assert after[("final_norm", "adamw")] == p.Multipliers()


def test_an_unknown_ablation_is_refused(lr_sweep):
    with pytest.raises(ValueError, match="unknown ablation"):
        lr_sweep.apply_ablation("everything")
