"""A warehouse with post-training blends and a tiny chat model, built once per test module.

- ``digits@1`` (chat): "Pick a digit." -> a uniformly random digit, plus "What is a plus b?" chats;
- ``sums@1`` (preference): "What is a plus b?" (a, b in 0..2) with the correct sum chosen and a wrong one
  rejected, explicit rewards and HelpSteer2-style attributes;
- ``seven@1`` (verifiable): "Pick a digit." whose answer is 7 (exact): trivially learnable by
  GRPO from the digits SFT model, which picks 7 a tenth of the time.
"""

from __future__ import annotations

import random

import pyarrow as pa

import dataengine as de
from dataengine.warehouse import Warehouse, init_warehouse

# fast settings for the tiny model on one CPU core
TINY = {"model.seq_len": 64, "runtime.threads": 1, "log_every": 1}


def build_post_warehouse(root) -> Warehouse:
    init_warehouse(root)
    wh = Warehouse(root)
    rng = random.Random(0)
    chats = [{"id": f"d{i:03d}", "messages": [{"role": "user", "content": "Pick a digit."},
                                              {"role": "assistant", "content": str(rng.randint(0, 9))}]}
             for i in range(200)]
    for i in range(100):
        a, b = rng.randint(0, 4), rng.randint(0, 4)
        chats.append({"id": f"s{i:03d}", "messages": [{"role": "user", "content": f"What is {a} plus {b}?"},
                                                      {"role": "assistant", "content": str(a + b)}]})
    wh.write_table("chat", pa.Table.from_pylist(chats))
    prefs = []
    for i in range(300):  # nine sums to learn: a reward model ranks them in a few dozen CPU steps
        a, b = rng.randint(0, 2), rng.randint(0, 2)
        wrong = (a + b + rng.randint(1, 4)) % 10
        prefs.append({"id": f"p{i:03d}", "prompt": f"What is {a} plus {b}?", "chosen": str(a + b), "rejected": str(wrong),
                      "chosen_reward": 4.0, "rejected_reward": 1.0})
    wh.write_table("prefs", pa.Table.from_pylist(prefs))
    seven = [{"id": f"v{i:03d}", "prompt": "Pick a digit.", "answer": "7", "reward_kind": "exact"} for i in range(200)]
    wh.write_table("seven", pa.Table.from_pylist(seven))
    for name, sql in (("digits", "SELECT * FROM chat"), ("sums", "SELECT * FROM prefs"), ("seven", "SELECT * FROM seven")):
        de.create_blend(wh, name, {name: (sql, 1.0)})
        de.freeze_blend(wh, name)
    return wh
