"""Answer prompts: chat rows for SFT, and several samples per prompt for preference pairs.

Each source row's prompt (``prompt_column``: text, or a list of messages as JSON text or a
list) gets ``samples`` completions, each sampled with its own seed (``seed + k``). Every
output row is a complete **chat row** (docs/schema.md): ``messages`` = the prompt's messages
plus the assistant's completion, next to the usual provenance columns and ``completion``,
``sample`` and the ``passthrough`` columns of the source (by default ``answer`` and
``reward_kind``, so the ``reward`` stage can score the samples).

Rejection sampling and preference pairs are then SQL over the scored samples:

    dataengine run --from samples --stage 'reward:completion_column=completion' --to samples
    SELECT source_id AS id, list_slice(any_value(messages), 1, len(any_value(messages)) - 1) AS messages,
           arg_max(completion, reward) AS chosen, arg_min(completion, reward) AS rejected,
           max(reward) AS chosen_reward, min(reward) AS rejected_reward
    FROM samples WHERE keep GROUP BY source_id HAVING max(reward) > min(reward)
"""

from __future__ import annotations

import json

import pyarrow as pa
from pydantic import Field

from dataengine.core.row_shapes import MESSAGES_TYPE, RowShapeError, normalize_messages
from dataengine.generators.backends.base import GenerationRequest, GenerationResult
from dataengine.generators.prompts import PromptTemplate
from dataengine.generators.recipes.base import SYNTHETIC_SCHEMA, Job, Recipe, RecipeParams, UnitOutput


class RespondParams(RecipeParams):
    prompt_column: str = Field("prompt", description="the prompt: text, or messages (list or JSON text)")
    samples: int = Field(1, ge=1, description="completions per prompt (seeds seed, seed + 1, ...)")
    system: str | None = Field(None, description="a system message put before prompts that have none")
    passthrough: tuple[str, ...] = Field(("answer", "reward_kind"),
                                         description="source columns copied to every output row (as text)")


class Respond(Recipe):
    name = "respond"
    recipe = "respond"
    version = "1"
    description = "answer prompts (n samples each): chat rows for SFT; scored samples make preference pairs"
    Params = RespondParams
    _template = PromptTemplate("respond", "respond", "v1", "{text}")

    def required_columns(self):
        return (self.params.id_column, self.params.prompt_column)

    def output_schema(self) -> pa.Schema:
        extra = [("completion", pa.string()), ("messages", MESSAGES_TYPE), ("sample", pa.int32())]
        extra += [(c, pa.string()) for c in self.params.passthrough]
        return pa.schema(list(SYNTHETIC_SCHEMA) + [pa.field(n, t) for n, t in extra])

    def _messages(self, value) -> list[dict] | None:
        if value is None:
            return None
        if isinstance(value, str) and not value.lstrip().startswith("["):
            messages = [{"role": "user", "content": value}]
        else:
            try:
                messages = normalize_messages(value, "prompt")
            except RowShapeError:
                return None
        if self.params.system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.params.system}, *messages]
        return messages

    def plan(self, batch: pa.Table) -> list[Job]:
        p = self.params
        present = [c for c in p.passthrough if c in batch.column_names]
        extras = {c: batch.column(c).to_pylist() for c in present}
        jobs = []
        for i, (doc_id, prompt) in enumerate(zip(batch.column(p.id_column).to_pylist(),
                                                 batch.column(p.prompt_column).to_pylist())):
            messages = self._messages(prompt)
            if messages is None:
                continue
            context = {"messages": messages, **{c: _text(v[i]) for c, v in extras.items()}}
            for k in range(p.samples):
                request = GenerationRequest.chat(messages, p.sampling, p.seed + k)
                jobs.append(Job(str(doc_id), (str(doc_id), k), self._template, 0, request, {**context, "sample": k}))
        return jobs

    def finish(self, jobs: list[Job], results: list[GenerationResult]) -> UnitOutput:
        text = (results[0].text or "").strip()
        return UnitOutput(text or None, None if text else "empty")

    def extra_fields(self, jobs: list[Job], out: UnitOutput) -> dict:
        ctx = jobs[0].context
        messages = ctx["messages"] + [{"role": "assistant", "content": out.text}] if out.text is not None else None
        return {"completion": out.text, "messages": messages, "sample": ctx["sample"],
                **{c: ctx.get(c) for c in self.params.passthrough}}


def _text(value):
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)
