"""Chat rows: a list of ``{role, content}`` turns, and the one text format a model rewrites.

A conversation goes to the adaptation model as one text, each turn opened by a line
``[[TURN n: role]]``, so the model sees the whole dialogue (names it changes stay
consistent across turns); :func:`parse_turns` takes the answer apart again and checks that
the turns and their roles came back unchanged.
"""

from __future__ import annotations

import re

import pyarrow as pa

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES_TYPE = pa.list_(MESSAGE_TYPE)

_TURN = re.compile(r"^[ \t]*\[\[\s*TURN\s+(\d+)\s*:\s*([A-Za-z_]+)\s*\]\][ \t]*$", re.MULTILINE)


def as_turns(value) -> list[dict] | None:
    """A messages cell as ``[{"role", "content"}]`` (None stays None); a clear error otherwise."""
    if value is None:
        return None
    turns = []
    for turn in value:
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise ValueError(f"a chat turn must have role and content, got {turn!r:.80}")
        turns.append({"role": str(turn["role"]), "content": "" if turn["content"] is None else str(turn["content"])})
    return turns


def render_turns(turns: list[dict]) -> str:
    return "\n".join(f"[[TURN {i}: {t['role']}]]\n{t['content']}" for i, t in enumerate(turns, 1))


def parse_turns(answer: str, original: list[dict]) -> list[dict]:
    """The turns of a rewritten conversation; ValueError if turns or roles changed."""
    marks = list(_TURN.finditer(answer))
    if len(marks) != len(original):
        raise ValueError(f"the answer has {len(marks)} turn(s), the conversation {len(original)}")
    turns = []
    for k, (mark, orig) in enumerate(zip(marks, original)):
        if int(mark.group(1)) != k + 1 or mark.group(2) != orig["role"]:
            raise ValueError(f"turn {k + 1} came back as {mark.group(0).strip()!r} (expected role {orig['role']!r})")
        end = marks[k + 1].start() if k + 1 < len(marks) else len(answer)
        turns.append({"role": orig["role"], "content": answer[mark.end():end].strip("\n").strip()})
    return turns


def joined_contents(turns: list[dict] | None) -> str | None:
    """The turns' contents, one paragraph each: what text-level quality checks read."""
    if turns is None:
        return None
    return "\n\n".join(t["content"] for t in turns)
