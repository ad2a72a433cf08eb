"""SFT on a chat blend version: assistant-only loss, packing without cross-sample attention, learning,
and a result that transformers loads and the generators' backend chats with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import dataengine as de
from dataengine.trainer.post.base import PostContext
from dataengine.trainer.post.config import load_post_config
from dataengine.trainer.post.data import BlendRows, load_manifest
from dataengine.trainer.post.packing import Example, collate
from dataengine.trainer.post.sft import SftStage

from posttrain_fixtures import TINY, build_post_warehouse


@pytest.fixture(scope="module")
def post(tmp_path_factory):
    root = tmp_path_factory.mktemp("post")
    wh = build_post_warehouse(root / "wh")
    model = de.tiny_chat_model(root / "tiny")
    return wh, model


@pytest.fixture(scope="module")
def stage(post):
    wh, model = post
    cfg = load_post_config("sft", None, {**TINY, "model.seq_len": 256, "steps": 4, "progress": False})
    manifest = load_manifest(de.export_blend(wh, "digits@1")["manifest_path"])
    ctx = PostContext(cfg=cfg, rows=BlendRows(manifest, 0.05), init=de.resolve_init(wh, model),
                      device=torch.device("cpu"), output=Path(wh.config.root) / "unit", seed=0)
    s = SftStage(ctx)
    s.model.eval()
    return s


def encode(stage, messages) -> Example:
    return stage.examples.encode({"id": json.dumps(messages), "messages": messages}, "test")


@pytest.mark.slow
@torch.no_grad()
def test_tokens_outside_assistant_turns_get_no_loss(stage):
    base = [{"role": "system", "content": "You count."}, {"role": "user", "content": "What is 2 plus 2?"},
            {"role": "assistant", "content": "4"}]
    a = encode(stage, base + [{"role": "user", "content": "Thanks!"}])
    b = encode(stage, base + [{"role": "user", "content": "That is wrong, try again please, and be quick."}])
    assert a.input_ids != b.input_ids  # the trailing user turn differs ...
    loss_a, n_a, _ = stage.loss_sum([[a]])
    loss_b, n_b, _ = stage.loss_sum([[b]])
    assert n_a == n_b and float(loss_a) == float(loss_b)  # ... and changes nothing: it is not a target
    # the targets are the assistant's reply and its end-of-turn marker, nothing else
    targets = [t for t, m in zip(a.input_ids, a.loss_mask) if m]
    assert stage.tokenizer.decode(targets) == "4<|im_end|>\n"
    two_turns = encode(stage, base + [{"role": "user", "content": "And 3 plus 3?"}, {"role": "assistant", "content": "6"}])
    assert stage.tokenizer.decode([t for t, m in zip(two_turns.input_ids, two_turns.loss_mask) if m]) == \
        "4<|im_end|>\n6<|im_end|>\n"


@pytest.mark.slow
@torch.no_grad()
def test_packed_conversations_do_not_attend_to_each_other(stage):
    a = encode(stage, [{"role": "user", "content": "Pick a digit."}, {"role": "assistant", "content": "3"}])
    a2 = encode(stage, [{"role": "user", "content": "What is 4 plus 4? Answer fast."}, {"role": "assistant", "content": "8"}])
    b = encode(stage, [{"role": "user", "content": "What is 1 plus 2?"}, {"role": "assistant", "content": "3"}])

    def per_token(rows, packed=True):
        batch = collate(rows, stage.pad_id)
        positions = batch["position_ids"] if packed else torch.arange(batch["input_ids"].shape[1]).unsqueeze(0)
        logits = stage.model(input_ids=batch["input_ids"], position_ids=positions, use_cache=False).logits
        return torch.nn.functional.cross_entropy(logits[0], batch["labels"][0], ignore_index=-100, reduction="none")

    with_a, with_a2, alone = per_token([[a, b]]), per_token([[a2, b]]), per_token([[b]])
    span_a, span_a2 = slice(len(a), len(a) + len(b)), slice(len(a2), len(a2) + len(b))
    assert float(with_a[span_a].sum()) > 0
    assert torch.allclose(with_a[span_a], with_a2[span_a2], atol=1e-5)  # b does not see its neighbour
    assert torch.allclose(with_a[span_a], alone[: len(b)], atol=1e-5)  # ... and is as if alone in its row
    # the control: one causal sequence over both (what packing without the block mask would do) leaks
    leaky_a, leaky_a2 = per_token([[a, b]], packed=False), per_token([[a2, b]], packed=False)
    assert (leaky_a[span_a] - leaky_a2[span_a2]).abs().max() > 1e-3


@pytest.mark.slow
def test_sft_learns_and_the_result_chats(post):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dataengine.generators.backends.base import GenerationRequest, SamplingParams
    from dataengine.generators.backends.transformers_backend import TransformersBackend

    wh, model = post
    summary = de.train(wh, "digits@1", stage="sft", init=model, progress=False,
                       overrides={**TINY, "steps": 40, "optimizer.lr": 3e-3, "data.micro_batch_size": 8,
                                  "eval_every": 20})
    lines = [json.loads(x) for x in Path(summary["model_path"]).parent.joinpath("metrics.jsonl").read_text().splitlines()]
    losses = [x["loss"] for x in lines if "loss" in x]
    vals = [x["val_loss"] for x in lines if "val_loss" in x]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5 and vals[-1] < vals[0]
    assert all(x["examples"] > x["rows"] for x in lines if "rows" in x)  # packing put several chats in a row

    folder = summary["model_path"]
    loaded = AutoModelForCausalLM.from_pretrained(folder)
    assert loaded.config.vocab_size == AutoTokenizer.from_pretrained(folder).vocab_size + 2  # + ChatML specials
    backend = TransformersBackend(folder, batch_size=2)
    [result] = backend.generate([GenerationRequest.chat([{"role": "user", "content": "Pick a digit."}],
                                                        SamplingParams(temperature=0, max_tokens=4))])
    assert result.ok and result.finish_reason == "stop" and result.text.strip().isdigit()

    run = wh.sql("SELECT stage, init_model, blend, blend_version, final_loss, stage_metrics FROM dataengine.training_runs "
                 "WHERE run_id = ?", [summary["run_id"]]).to_pylist()[0]
    assert (run["stage"], run["init_model"], run["blend"], run["blend_version"]) == ("sft", model, "digits", 1)
    assert "chat_template" in json.loads(run["stage_metrics"])
    assert Path(summary["report_path"]).read_text().count("<svg") >= 1
