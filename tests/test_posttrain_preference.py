"""Reward models and DPO/RPO on a preference blend version, with tiny models the tests build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dataengine as de
from dataengine.core.errors import DataEngineError

from posttrain_fixtures import TINY, build_post_warehouse


@pytest.fixture(scope="module")
def post(tmp_path_factory):
    root = tmp_path_factory.mktemp("pref")
    return build_post_warehouse(root / "wh"), de.tiny_chat_model(root / "tiny")


def metrics(summary) -> list[dict]:
    return [json.loads(x) for x in Path(summary["model_path"]).parent.joinpath("metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_reward_model_learns_which_sum_is_correct(post):
    from transformers import AutoModelForSequenceClassification

    wh, model = post
    summary = de.train(wh, "sums@1", stage="rm", init=model, progress=False,
                       overrides={**TINY, "steps": 40, "optimizer.lr": 2e-3, "data.micro_batch_size": 16,
                                  "data.val_fraction": 0.2, "eval_every": 40})
    val = [m for m in metrics(summary) if "val_accuracy" in m][-1]
    assert val["val_pairs"] == 60 and val["val_accuracy"] > 0.9  # held-out pairs of the blend version
    assert json.loads(wh.sql("SELECT stage_metrics FROM dataengine.training_runs WHERE stage = 'rm'")
                      .column(0)[0].as_py())["val_accuracy"] == val["val_accuracy"]
    loaded = AutoModelForSequenceClassification.from_pretrained(summary["model_path"])
    assert loaded.config.num_labels == 1
    assert json.loads(Path(summary["model_path"], "dataengine.json").read_text())["outputs"] == ["reward"]


@pytest.mark.slow
def test_dpo_and_rpo_raise_the_chosen_minus_rejected_margin(post):
    wh, model = post
    for loss in ("dpo", "rpo_bwd_kl"):
        summary = de.train(wh, "sums@1", stage="dpo", init=model, progress=False,
                           overrides={**TINY, "steps": 20, "optimizer.lr": 1e-3, "data.micro_batch_size": 8,
                                      "eval_every": 10, "dpo.loss": loss, "dpo.beta": 0.5})
        vals = [m for m in metrics(summary) if "val_margin" in m]
        assert vals[0]["step"] == 10 and vals[-1]["step"] == 20
        # log-prob gap of chosen over rejected on held-out pairs: the policy moved towards the chosen replies
        first = de.train(wh, "sums@1", stage="dpo", init=model, progress=False, output=Path(summary["model_path"]).parent / "zero",
                         overrides={**TINY, "steps": 1, "optimizer.lr": 1e-12, "dpo.loss": loss, "eval_every": 1})
        before = [m for m in metrics(first) if "val_logp_gap" in m][-1]["val_logp_gap"]
        assert vals[-1]["val_logp_gap"] > before + 0.5
        assert vals[-1]["val_margin"] > 0.2 and summary["stage_metrics"]["loss_kind"] == loss


@pytest.mark.slow
def test_bad_post_training_runs_are_refused_before_training(post, tmp_path):
    wh, model = post
    wh.execute("CREATE TABLE prefs_no_reward AS SELECT id, prompt, chosen, rejected FROM prefs LIMIT 20")
    de.create_blend(wh, "no-reward", {"p": ("SELECT * FROM prefs_no_reward", 1.0)})
    de.freeze_blend(wh, "no-reward")
    with pytest.raises(DataEngineError, match="20 row\\(s\\).*lack chosen_reward"):
        de.train(wh, "no-reward@1", stage="dpo", init=model, progress=False, output=tmp_path / "run",
                 overrides={**TINY, "steps": 1, "dpo.loss": "rpo_sq"})
    with pytest.raises(DataEngineError, match="trains on preference rows; digits@1 has chat rows"):
        de.train(wh, "digits@1", stage="dpo", init=model, progress=False, output=tmp_path / "run2",
                 overrides={**TINY, "steps": 1})
    with pytest.raises(DataEngineError, match="unknown training stage 'ppo'"):
        de.train(wh, "sums@1", stage="ppo", init=model)
    with pytest.raises(DataEngineError, match="--init applies to post-training"):
        de.train(wh, "sums@1", init=model)
    with pytest.raises(DataEngineError, match="--init /no/such/model.*run_id"):
        de.train(wh, "sums@1", stage="sft", init="/no/such/model", output=tmp_path / "run3")
    with pytest.raises(DataEngineError, match="grpo.temperature"):
        de.train(wh, "seven@1", stage="grpo", init=model, output=tmp_path / "run4", overrides={"grpo.temperature": -1})
