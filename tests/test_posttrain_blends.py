"""Blends over post-training rows: ingested chat / preference / verifiable tables, shapes inferred,
the reasoning toggle, versions, hashes, diffs and row exports, exactly as text blends work."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

import dataengine as de
from dataengine.warehouse.blends import BlendError, Blends

CHATS = [
    {"id": f"c{i}", "messages": [{"role": "user", "content": f"Say {i}."}, {"role": "assistant", "content": str(i)}]}
    for i in range(12)
]
BROKEN_CHATS = [{"id": "bad1", "messages": [{"role": "user", "content": "no reply"}]},
                {"id": "bad2", "messages": [{"role": "wizard", "content": "?"}, {"role": "assistant", "content": "!"}]}]
PREFS = [{"id": f"p{i}", "prompt": f"{i}+1?", "chosen": str(i + 1), "rejected": str(i + 2), "chosen_reward": 3.5,
          "rejected_reward": 1.0, "chosen_attributes": {"helpfulness": 4, "verbosity": 1}} for i in range(6)]
MATH = [{"id": f"m{i}", "prompt": f"What is {i} squared?", "answer": str(i * i), "reward_kind": "math"} for i in range(5)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def post_wh(wh, tmp_path):
    """Three tables as `ingest jsonl --text-field ''` makes them (nested fields as JSON text)."""
    de.ingest_jsonl(wh, [write_jsonl(tmp_path / "chat.jsonl", CHATS + BROKEN_CHATS)], table="chat", text_field=None,
                    progress=False)
    de.ingest_jsonl(wh, [write_jsonl(tmp_path / "prefs.jsonl", PREFS)], table="prefs", text_field=None, progress=False)
    de.ingest_jsonl(wh, [write_jsonl(tmp_path / "math.jsonl", MATH)], table="math", text_field=None, progress=False)
    return wh


@pytest.mark.slow
def test_shapes_are_inferred_frozen_and_exported_with_the_reasoning_toggle(post_wh):
    wh = post_wh
    de.create_blend(wh, "chat", {"think": ("SELECT * FROM chat WHERE id < 'c5'", 1.0),
                                 "plain": {"sql": "SELECT * FROM chat WHERE id >= 'c5'", "weight": 2.0}},
                    reasoning={"think": "on", "plain": "off"})
    v = de.freeze_blend(wh, "chat")
    assert v["shape"] == "chat"
    comps = {c["component"]: c for c in v["components"]}
    assert comps["think"]["reasoning"] == "on" and comps["plain"]["reasoning"] == "off"
    # ids below 'c5' (as text): bad1, bad2, c0-c4, c10, c11
    assert comps["think"]["invalid_rows"] == 2 and comps["think"]["rows"] == 9
    assert any("2 row(s) do not fit the chat shape" in w and "no assistant message" in w for w in v["warnings"])
    assert all(c["tokens"] > 0 for c in v["components"])

    manifest = de.export_blend(wh, "chat@1")
    assert manifest["shape"] == "chat"
    think = next(c for c in manifest["components"] if c["name"] == "think")
    rows = pq.read_table(think["rows_path"]).to_pylist()
    assert len(rows) == think["documents"] == 7
    first = json.loads(rows[0]["row"])
    assert first["messages"][0] == {"role": "system", "content": "detailed thinking on"}
    plain = next(c for c in manifest["components"] if c["name"] == "plain")
    assert json.loads(pq.read_table(plain["rows_path"]).column("row")[0].as_py())["messages"][0]["content"] == \
        "detailed thinking off"

    # the toggle is part of the version: the same rows without it hash the same per component, not per version
    de.create_blend(wh, "chat-plain", {"think": ("SELECT * FROM chat WHERE id < 'c5'", 1.0),
                                       "plain": ("SELECT * FROM chat WHERE id >= 'c5'", 2.0)})
    w = de.freeze_blend(wh, "chat-plain")
    assert {c["component"]: c["content_hash"] for c in w["components"]} == \
        {c["component"]: c["content_hash"] for c in v["components"]}
    assert w["content_hash"] != v["content_hash"]


def test_the_same_content_hashes_the_same_whatever_its_encoding(post_wh):
    wh = post_wh
    blends = Blends(wh)
    snapshot = wh.current_snapshot()
    # JSON text from the JSONL ingest vs. a list of structs built in SQL
    as_json = blends.component_content_hash("SELECT id, messages FROM chat WHERE id LIKE 'c%'", snapshot, "chat")
    as_structs = blends.component_content_hash(
        "SELECT id, [{'role': 'user', 'content': 'Say ' || substr(id, 2) || '.'}, "
        "{'role': 'assistant', 'content': substr(id, 2)}] AS messages FROM chat WHERE id LIKE 'c%'", snapshot, "chat")
    assert as_json == as_structs and as_json[0] == 12


@pytest.mark.slow
def test_preference_and_verifiable_blends_version_and_diff(post_wh):
    wh = post_wh
    de.create_blend(wh, "prefs", {"all": ("SELECT * FROM prefs", 1.0)})
    v1 = de.freeze_blend(wh, "prefs")
    assert v1["shape"] == "preference" and v1["rows"] == 6
    row = json.loads(pq.read_table(de.export_blend(wh, "prefs@1")["components"][0]["rows_path"]).column("row")[0].as_py())
    assert row["prompt"] == [{"role": "user", "content": "0+1?"}]
    assert row["chosen_attributes"] == {"helpfulness": 4.0, "verbosity": 1.0} and row["rejected_reward"] == 1.0
    wh.execute("DELETE FROM prefs WHERE id = 'p0'")
    v2 = de.freeze_blend(wh, "prefs")
    diff = de.diff_blends(wh, "prefs@1", "prefs@2")["components"][0]
    assert (diff["status"], diff["ids_removed"], diff["ids_added"]) == ("changed", 1, 0)
    assert v2["content_hash"] != v1["content_hash"]
    assert de.blend_version(wh, "prefs@1")["rows"] == 6  # versions are immutable

    de.create_blend(wh, "rl", {"squares": ("SELECT id, prompt, answer, reward_kind FROM math", 1.0)})
    v = de.freeze_blend(wh, "rl")
    assert v["shape"] == "verifiable" and v["components"][0]["invalid_rows"] == 0


def test_bad_post_training_blends_are_refused_at_create_time(post_wh):
    wh = post_wh
    with pytest.raises(BlendError, match="same row shape.*chat.*preference|same row shape.*preference.*chat"):
        de.create_blend(wh, "mixed", {"a": ("SELECT * FROM chat", 1.0), "b": ("SELECT * FROM prefs", 1.0)})
    with pytest.raises(BlendError, match="selects no 'answer' column"):
        de.create_blend(wh, "x", [{"name": "a", "sql": "SELECT id, prompt, reward_kind FROM math", "weight": 1,
                                   "shape": "verifiable"}])
    with pytest.raises(BlendError, match="reasoning toggle applies to chat"):
        de.create_blend(wh, "y", {"t": ("SELECT id, prompt AS text FROM math", 1.0)}, reasoning={"t": "on"})


@pytest.mark.slow
def test_ingest_create_and_freeze_from_the_cli(wh, tmp_path):
    from conftest import run_cli

    chat_file = write_jsonl(tmp_path / "chat.jsonl", CHATS + BROKEN_CHATS)
    proc = run_cli("ingest", "jsonl", str(chat_file), "--table", "chat", "--text-field", "", warehouse=wh.config.root)
    assert proc.returncode == 0, proc.stderr
    yaml_file = tmp_path / "b.yaml"
    yaml_file.write_text("name: cli-chat\ncomponents:\n  - {name: a, sql: 'SELECT * FROM chat', weight: 1, reasoning: on}\n")
    assert run_cli("blend", "create", "--file", str(yaml_file), warehouse=wh.config.root).returncode == 0
    proc = run_cli("blend", "freeze", "cli-chat", warehouse=wh.config.root)
    assert proc.returncode == 0, proc.stderr
    assert "chat rows" in proc.stdout and "2 row(s) do not fit the chat shape" in proc.stderr + proc.stdout
    assert de.blend_version(wh, "cli-chat@1")["components"][0]["reasoning"] == "on"  # YAML's bare `on` is a boolean
    bad = run_cli("blend", "create", "z", "-c", "a=SELECT * FROM chat:1", "--reasoning", "a=maybe",
                  warehouse=wh.config.root)
    assert bad.returncode != 0 and "COMPONENT=on" in bad.stderr


@pytest.mark.slow
def test_generated_samples_are_chat_rows_and_make_preference_pairs(post_wh, tmp_path):
    wh = post_wh
    model = de.tiny_chat_model(tmp_path / "tiny")
    result = de.generate(wh, "respond", "SELECT id, prompt, answer, reward_kind FROM math", "samples", model=model,
                         samples=2, progress=False, sampling={"max_tokens": 5, "temperature": 1.0})
    assert result.rows == 10 and result.errors == 0
    de.run(wh, de.pipeline("samples", ["reward:completion_column=messages"], to="samples"), progress=False)
    scored = wh.sql("SELECT sample, answer, reward_kind, reward, reward_status FROM samples").to_pylist()
    assert {r["sample"] for r in scored} == {0, 1} and all(r["reward_kind"] == "math" for r in scored)
    assert all(r["reward_status"] in ("correct", "wrong", "unparseable") for r in scored)
    de.create_blend(wh, "gen-chat", {"kept": ("SELECT id, messages FROM samples WHERE keep", 1.0)})
    chat = de.freeze_blend(wh, "gen-chat")
    assert chat["shape"] == "chat" and chat["rows"] == 10 and chat["components"][0]["invalid_rows"] == 0
    pairs = ("SELECT source_id AS id, list_slice(any_value(messages), 1, len(any_value(messages)) - 1) AS messages, "
             "arg_max(completion, reward) AS chosen, arg_min(completion, reward) AS rejected, "
             "max(reward) AS chosen_reward, min(reward) AS rejected_reward FROM samples WHERE keep GROUP BY source_id")
    de.create_blend(wh, "gen-pairs", {"pairs": (pairs, 1.0)})
    v = de.freeze_blend(wh, "gen-pairs")
    assert v["shape"] == "preference" and v["rows"] == 5 and v["components"][0]["invalid_rows"] == 0
