"""Row shapes of training data: plain text, chat, preference pairs, verifiable prompts.

Post-training data lives in warehouse tables like pretraining data. A table (or a blend
component's SQL) has one of four *shapes*, told apart by its columns:

===========  ==========================================================  =====================================
shape        required columns                                            optional columns
===========  ==========================================================  =====================================
text         ``id``, ``text``                                            --
chat         ``id``, ``messages``                                        ``system``
preference   ``id``, ``prompt`` or ``messages``, ``chosen``,             ``system``, ``chosen_reward``,
             ``rejected``                                                ``rejected_reward``,
                                                                         ``chosen_attributes``,
                                                                         ``rejected_attributes``
verifiable   ``id``, ``prompt`` or ``messages``, ``answer``,             ``system``
             ``reward_kind``
===========  ==========================================================  =====================================

``messages`` is a list of ``{role, content}`` (roles: system, user, assistant, tool), stored as
``list<struct<role, content>>`` (Parquet, SQL ``[{'role': 'user', 'content': 'hi'}]``) or as
JSON text (what ``ingest jsonl`` makes of a nested field): both are read the same way.
``prompt`` is a user message as text, or a list of messages. ``chosen``/``rejected`` are the
assistant replies as text (a message list is accepted: its last assistant message is the
reply, and the messages before it are the prompt when the row has none, as in
UltraFeedback-style data). ``*_attributes`` are HelpSteer2-style scores by name
(``{"helpfulness": 3, "correctness": 4, ...}``) as a map/struct or JSON object text.
``reward_kind`` names a verifier of the ``reward`` stage (math, exact, choice, code).

:func:`normalize_row` turns a row of any shape into one canonical Python form (system text
folded into the messages, prompts as message lists, rewards as floats); blend versions hash
that form, exports store it, and the trainer reads it. A row that does not fit its shape
raises :class:`RowShapeError` with the reason; callers count and skip it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import pyarrow as pa

from dataengine.core.errors import DataEngineError

ROLES = ("system", "user", "assistant", "tool")
MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES_TYPE = pa.list_(MESSAGE_TYPE)

#: Llama-Nemotron's reasoning toggle: the system line that switches reasoning on or off.
REASONING_LINES = {"on": "detailed thinking on", "off": "detailed thinking off"}

#: The verifiers a ``reward_kind`` may name (the ``reward`` stage implements them).
REWARD_KINDS = ("math", "exact", "choice", "code")


class RowShapeError(DataEngineError):
    """A row (or a set of columns) does not fit the shape it is read as."""


@dataclass(frozen=True)
class Shape:
    name: str
    required: tuple[str, ...]  # every one of these columns
    one_of: tuple[str, ...]  # at least one of these (empty: none needed)
    optional: tuple[str, ...]
    description: str

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the shape reads, in a fixed order."""
        return self.required + self.one_of + self.optional


SHAPES: dict[str, Shape] = {
    "text": Shape("text", ("id", "text"), (), (), "documents for pretraining"),
    "chat": Shape("chat", ("id", "messages"), (), ("system",), "conversations for SFT"),
    "preference": Shape(
        "preference", ("id", "chosen", "rejected"), ("prompt", "messages"),
        ("system", "chosen_reward", "rejected_reward", "chosen_attributes", "rejected_attributes"),
        "a prompt with a chosen and a rejected reply, for reward models and DPO/RPO",
    ),
    "verifiable": Shape(
        "verifiable", ("id", "answer", "reward_kind"), ("prompt", "messages"), ("system",),
        "prompts with an answer a verifier checks, for GRPO",
    ),
}

#: Which training stages read which shape.
STAGE_SHAPES = {"pretrain": "text", "sft": "chat", "rm": "preference", "dpo": "preference", "grpo": "verifiable"}


def get_shape(name: str) -> Shape:
    try:
        return SHAPES[name]
    except KeyError:
        raise RowShapeError(f"unknown row shape {name!r}: use one of {', '.join(SHAPES)}") from None


def infer_shape(columns: Iterable[str]) -> str:
    """The shape a set of columns has (preference before verifiable before chat before text)."""
    cols = set(columns)
    for name in ("preference", "verifiable", "chat", "text"):
        if not missing_columns(name, cols):
            return name
    raise RowShapeError(
        "the columns fit no row shape: text needs id and text; chat needs id and messages; preference needs id, "
        "prompt or messages, chosen and rejected; verifiable needs id, prompt or messages, answer and reward_kind "
        f"(got: {', '.join(sorted(cols))})"
    )


def missing_columns(shape: str, columns: Iterable[str]) -> list[str]:
    """What ``columns`` lack to be read as ``shape`` ([] when they fit)."""
    s, cols = get_shape(shape), set(columns)
    missing = [c for c in s.required if c not in cols]
    if s.one_of and not cols & set(s.one_of):
        missing.append(" or ".join(s.one_of))
    return missing


def selected_columns(shape: str, columns: Iterable[str]) -> list[str]:
    """The columns of ``shape`` that are present in ``columns``, in the shape's order."""
    cols = set(columns)
    return [c for c in get_shape(shape).columns if c in cols]


# -- reading values -------------------------------------------------------------------------

def _maybe_json(value: Any, what: str) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise RowShapeError(f"{what} is not valid JSON: {exc}") from None
    return value


def normalize_messages(value: Any, what: str = "messages") -> list[dict]:
    """A list of ``{"role", "content"}`` dicts from a list of dicts/structs or JSON text."""
    value = _maybe_json(value, what)
    if value is None:
        raise RowShapeError(f"{what} is missing")
    if not isinstance(value, (list, tuple)):
        raise RowShapeError(f"{what} must be a list of {{role, content}} messages, not {type(value).__name__}")
    if not value:
        raise RowShapeError(f"{what} is empty")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, Mapping):
            raise RowShapeError(f"{what}[{i}] is not a {{role, content}} object")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise RowShapeError(f"{what}[{i}] has role {role!r}; roles are {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise RowShapeError(f"{what}[{i}] ({role}) has no text content")
        out.append({"role": role, "content": content})
    return out


def _prompt_messages(row: Mapping) -> list[dict]:
    if row.get("messages") is not None:
        return normalize_messages(row["messages"])
    prompt = _maybe_json(row.get("prompt"), "prompt")
    if isinstance(prompt, str):
        if not prompt.strip():
            raise RowShapeError("prompt is empty")
        return [{"role": "user", "content": prompt}]
    return normalize_messages(prompt, "prompt")


def _with_system(messages: list[dict], system: Any) -> list[dict]:
    """Fold the optional ``system`` column into the conversation as its first message."""
    if system is None or system == "":
        return messages
    if not isinstance(system, str):
        raise RowShapeError("system must be text")
    if messages[0]["role"] == "system":
        raise RowShapeError("the row has both a system column and a system message")
    return [{"role": "system", "content": system}, *messages]


def _reply(value: Any, what: str) -> tuple[str, list[dict] | None]:
    """(reply text, the messages before it or None) from text or a message list."""
    value = _maybe_json(value, what)
    if isinstance(value, str):
        return value, None
    messages = normalize_messages(value, what)
    if messages[-1]["role"] != "assistant":
        raise RowShapeError(f"{what} must end with an assistant message")
    return messages[-1]["content"], messages[:-1] or None


def _score(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise RowShapeError(f"{what} is not a number: {value!r}") from None
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise RowShapeError(f"{what} is not finite")
    return value


def normalize_attributes(value: Any, what: str = "attributes") -> dict[str, float] | None:
    """Attribute scores by name from a map (list of pairs), a struct/dict, or JSON object text."""
    value = _maybe_json(value, what)
    if value is None:
        return None
    if isinstance(value, (list, tuple)):  # an Arrow map reads as [(key, value), ...]
        try:
            value = dict(value)
        except (TypeError, ValueError):
            raise RowShapeError(f"{what} must map names to scores") from None
    if not isinstance(value, Mapping):
        raise RowShapeError(f"{what} must map names to scores, not {type(value).__name__}")
    return {str(k): s for k, v in sorted(value.items()) if (s := _score(v, f"{what}.{k}")) is not None}


def normalize_row(shape: str, row: Mapping) -> dict:
    """The canonical form of one row (see the module docstring); raises RowShapeError."""
    if shape == "text":
        if not isinstance(row.get("text"), str):
            raise RowShapeError("text is missing")
        return {"text": row["text"]}
    if shape == "chat":
        messages = _with_system(normalize_messages(row.get("messages")), row.get("system"))
        if not any(m["role"] == "assistant" for m in messages):
            raise RowShapeError("the conversation has no assistant message (nothing to learn)")
        return {"messages": messages}
    if shape == "preference":
        chosen, chosen_prefix = _reply(row.get("chosen"), "chosen")
        rejected, rejected_prefix = _reply(row.get("rejected"), "rejected")
        if row.get("messages") is None and row.get("prompt") is None:
            if chosen_prefix is None:
                raise RowShapeError("the row has no prompt")
            prompt = chosen_prefix
        else:
            prompt = _prompt_messages(row)
        if prompt[-1]["role"] == "assistant":
            raise RowShapeError("the prompt ends with an assistant message; the reply must come next")
        return {
            "prompt": _with_system(prompt, row.get("system")),
            "chosen": chosen,
            "rejected": rejected,
            "chosen_reward": _score(row.get("chosen_reward"), "chosen_reward"),
            "rejected_reward": _score(row.get("rejected_reward"), "rejected_reward"),
            "chosen_attributes": normalize_attributes(row.get("chosen_attributes"), "chosen_attributes"),
            "rejected_attributes": normalize_attributes(row.get("rejected_attributes"), "rejected_attributes"),
        }
    if shape == "verifiable":
        kind = row.get("reward_kind")
        if kind not in REWARD_KINDS:
            raise RowShapeError(f"reward_kind {kind!r} is not one of {', '.join(REWARD_KINDS)}")
        answer = row.get("answer")
        if answer is None:
            raise RowShapeError("answer is missing")
        if not isinstance(answer, str):
            answer = json.dumps(answer) if isinstance(answer, (list, dict)) else str(answer)
        return {"prompt": _with_system(_prompt_messages(row), row.get("system")), "answer": answer,
                "reward_kind": kind}
    raise RowShapeError(f"unknown row shape {shape!r}")


def canonical_json(normalized: Mapping) -> str:
    """The stable text of a normalized row: what blend versions hash and exports store."""
    return json.dumps(normalized, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def apply_reasoning(messages: list[dict], mode: str | None) -> list[dict]:
    """Llama-Nemotron's toggle: ``detailed thinking on``/``off`` as the system line.

    An existing system message keeps its text after the toggle line."""
    if mode is None:
        return messages
    if mode not in REASONING_LINES:
        raise RowShapeError(f"reasoning must be 'on' or 'off', not {mode!r}")
    line = REASONING_LINES[mode]
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{line}\n{messages[0]['content']}"}, *messages[1:]]
    return [{"role": "system", "content": line}, *messages]


def with_reasoning(shape: str, normalized: dict, mode: str | None) -> dict:
    """A normalized row with the reasoning toggle applied to its conversation."""
    if mode is None:
        return normalized
    key = "messages" if shape == "chat" else "prompt" if shape in ("preference", "verifiable") else None
    if key is None:
        raise RowShapeError(f"the reasoning toggle applies to chat, preference and verifiable rows, not {shape}")
    return {**normalized, key: apply_reasoning(normalized[key], mode)}


def row_texts(shape: str, normalized: Mapping) -> list[str]:
    """The natural-language pieces of a normalized row (token counts, tokenizer training)."""
    if shape == "text":
        return [normalized["text"]]
    if shape == "chat":
        return [m["content"] for m in normalized["messages"]]
    prompt = [m["content"] for m in normalized["prompt"]]
    if shape == "preference":
        return prompt + [normalized["chosen"], normalized["rejected"]]
    return prompt + [normalized["answer"]]


def arrow_type(shape: str, column: str) -> pa.DataType:
    """The Arrow type a generator or exporter writes for a shape column."""
    if column == "messages":
        return MESSAGES_TYPE
    if column in ("chosen_reward", "rejected_reward"):
        return pa.float64()
    if column in ("chosen_attributes", "rejected_attributes"):
        return pa.map_(pa.string(), pa.float64())
    return pa.string()
