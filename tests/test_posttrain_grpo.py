"""GRPO with ProRL's changes on a trivially learnable verifiable task: the reward rises, reference
resets happen, are recorded and clear the optimizer, and a killed run resumes into the same metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import dataengine as de
from dataengine.trainer.post.loop import TIMING_KEYS

from posttrain_fixtures import TINY, build_post_warehouse

GRPO = {**TINY, "optimizer.lr": 3e-3, "grpo.max_new_tokens": 4, "grpo.group_size": 8, "grpo.temperature": 1.0,
        "grpo.prompts_per_step": 4, "data.micro_batch_size": 16, "grpo.eval_prompts": 8}


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """A tiny chat model fine-tuned to answer "Pick a digit." with a uniformly random digit."""
    root = tmp_path_factory.mktemp("grpo")
    wh = build_post_warehouse(root / "wh")
    sft = de.train(wh, "digits@1", stage="sft", init=de.tiny_chat_model(root / "tiny"), progress=False,
                   overrides={**TINY, "steps": 60, "optimizer.lr": 3e-3, "data.micro_batch_size": 8})
    return wh, sft["model_path"]


def lines(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_grpo_reward_rises_and_reference_resets_clear_the_optimizer(digits_model):
    wh, sft = digits_model
    summary = de.train(wh, "seven@1", stage="grpo", init=sft, progress=False,
                       overrides={**GRPO, "steps": 16, "grpo.reset_every": 5, "checkpoint_every": 5,
                                  "keep_checkpoints": 4, "eval_every": 16})
    run = Path(summary["model_path"]).parent
    steps = [m for m in lines(run) if "reward" in m]
    first, last = sum(m["reward"] for m in steps[:4]) / 4, sum(m["reward"] for m in steps[-4:]) / 4
    assert first < 0.3 and last > first + 0.2, (first, last)
    assert all({"kl", "entropy", "clip_frac", "groups_dropped", "rollout_seconds", "update_seconds"} <= m.keys()
               for m in steps)

    resets = [m for m in lines(run) if m.get("event") == "reference_reset"]
    assert [(m["step"], m["reason"]) for m in resets] == [(5, "schedule"), (10, "schedule"), (15, "schedule")]
    assert summary["stage_metrics"]["reset_steps"] == [5, 10, 15]
    # the checkpoint written right after a reset: reference == policy, optimizer state empty;
    # the one after a further step: the optimizer counts one step since the reset
    at5 = torch.load(run / "checkpoints" / "step-0000005" / "state.pt", weights_only=False)
    ref, policy = at5["extra"]["reference"], at5["model"]
    assert all(torch.equal(ref[k], policy[k]) for k in policy)
    assert all(not opt["state"] for opt in at5["optimizers"])
    at16 = torch.load(run / "checkpoints" / "step-0000016" / "state.pt", weights_only=False)
    assert {float(s["step"]) for opt in at16["optimizers"] for s in opt["state"].values()} == {1.0}
    assert not all(torch.equal(at16["extra"]["reference"][k], at16["model"][k]) for k in policy)

    report = run / "report.html"
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={run / 'chrome'}",
                          "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, f"chromium could not render the report (make system-deps installs it): {dom.stderr[-500:]}"
    assert "Reference resets (3)" in dom.stdout and dom.stdout.count('class="reset"') >= 3
    assert "rollout share of step time" in dom.stdout


@pytest.mark.slow
def test_grpo_killed_and_resumed_continues_the_same_metrics(digits_model, tmp_path):
    wh, sft = digits_model
    config = tmp_path / "grpo.yaml"  # the same config file format as pretraining, with a grpo section
    nested: dict = {}
    for key, value in {**GRPO, "steps": 10, "checkpoint_every": 2, "grpo.reset_every": 4, "eval_every": 5}.items():
        node = nested
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    config.write_text(yaml.safe_dump(nested))
    whole = de.train(wh, "seven@1", stage="grpo", init=sft, config=config, output=tmp_path / "whole", progress=False)

    cmd = [sys.executable, "-P", "-m", "dataengine.cli", "--warehouse", wh.config.root, "train", "--stage", "grpo",
           "--blend", "seven@1", "--init", sft, "--config", str(config), "--output", str(tmp_path / "killed"), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    marker = tmp_path / "killed" / "checkpoints" / "step-0000002" / "meta.json"
    deadline = time.time() + 600
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert "reference reset" in resumed.stdout and "grpo of" in resumed.stdout

    def comparable(folder):
        return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in lines(folder)]

    assert comparable(tmp_path / "killed") == comparable(tmp_path / "whole")
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert summary["resumed_from"].endswith("step-0000002") or summary["resumed_from"].endswith("step-0000004")
    assert summary["stage_metrics"]["reset_steps"] == whole["stage_metrics"]["reset_steps"] == [4, 8]
