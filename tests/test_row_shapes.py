"""Post-training row shapes: inference from columns, one canonical form, clear errors, the reasoning toggle."""

from __future__ import annotations

import json

import pytest

from dataengine.core.row_shapes import (RowShapeError, apply_reasoning, canonical_json, infer_shape, missing_columns,
                                        normalize_row, row_texts, with_reasoning)

CHAT = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def test_shapes_are_told_apart_by_their_columns():
    assert infer_shape(["id", "text", "url"]) == "text"
    assert infer_shape(["id", "messages", "system"]) == "chat"
    assert infer_shape(["id", "prompt", "chosen", "rejected", "chosen_reward"]) == "preference"
    assert infer_shape(["id", "messages", "chosen", "rejected"]) == "preference"
    assert infer_shape(["id", "prompt", "answer", "reward_kind"]) == "verifiable"
    assert missing_columns("preference", ["id", "chosen", "rejected"]) == ["prompt or messages"]
    with pytest.raises(RowShapeError, match="fit no row shape"):
        infer_shape(["id", "prompt", "answer"])


def test_messages_read_the_same_from_structs_and_from_json_text():
    as_structs = normalize_row("chat", {"messages": CHAT, "system": "be brief"})
    as_json = normalize_row("chat", {"messages": json.dumps(CHAT), "system": "be brief"})
    assert as_structs == as_json
    assert as_structs["messages"][0] == {"role": "system", "content": "be brief"}
    assert canonical_json(as_structs) == canonical_json(as_json)


def test_preference_rows_in_their_usual_layouts():
    flat = normalize_row("preference", {"prompt": "2+2?", "chosen": "4", "rejected": "5", "chosen_reward": 3,
                                        "rejected_reward": "1.5", "chosen_attributes": '{"helpfulness": 4}',
                                        "rejected_attributes": [("helpfulness", 1), ("verbosity", 2)]})
    assert flat["prompt"] == [{"role": "user", "content": "2+2?"}]
    assert (flat["chosen_reward"], flat["rejected_reward"]) == (3.0, 1.5)
    assert flat["chosen_attributes"] == {"helpfulness": 4.0}
    assert flat["rejected_attributes"] == {"helpfulness": 1.0, "verbosity": 2.0}
    # UltraFeedback: chosen/rejected are whole conversations, the prompt is their shared prefix
    uf = normalize_row("preference", {
        "chosen": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
        "rejected": json.dumps([{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}])})
    assert (uf["prompt"], uf["chosen"], uf["rejected"]) == (flat["prompt"], "4", "5")


@pytest.mark.parametrize("shape,row,reason", [
    ("chat", {"messages": [{"role": "user", "content": "hi"}]}, "no assistant message"),
    ("chat", {"messages": [{"role": "robot", "content": "hi"}]}, "role 'robot'"),
    ("chat", {"messages": "[{not json"}, "not valid JSON"),
    ("chat", {"messages": [{"role": "system", "content": "a"}, *CHAT], "system": "b"}, "both a system column"),
    ("preference", {"prompt": "q", "chosen": "a", "rejected": "b", "chosen_reward": "lots"}, "not a number"),
    ("preference", {"prompt": "q", "chosen": None, "rejected": "b"}, "chosen is missing|chosen must"),
    ("verifiable", {"prompt": "q", "answer": "1", "reward_kind": "vibes"}, "reward_kind 'vibes'"),
    ("verifiable", {"prompt": "", "answer": "1", "reward_kind": "math"}, "prompt is empty"),
])
def test_rows_that_do_not_fit_say_why(shape, row, reason):
    with pytest.raises(RowShapeError, match=reason):
        normalize_row(shape, row)


def test_reasoning_toggle_is_a_system_line_that_keeps_an_existing_system_prompt():
    assert apply_reasoning(CHAT, "on")[0] == {"role": "system", "content": "detailed thinking on"}
    merged = apply_reasoning([{"role": "system", "content": "be brief"}, *CHAT], "off")
    assert merged[0]["content"] == "detailed thinking off\nbe brief" and merged[1:] == CHAT
    row = normalize_row("verifiable", {"prompt": "1+1?", "answer": 2, "reward_kind": "math"})
    toggled = with_reasoning("verifiable", row, "on")
    assert toggled["prompt"][0]["content"] == "detailed thinking on" and toggled["answer"] == "2"
    assert row_texts("verifiable", toggled) == ["detailed thinking on", "1+1?", "2"]
    with pytest.raises(RowShapeError, match="not text"):
        with_reasoning("text", {"text": "x"}, "on")
