"""The ``reward`` stage: score completions against reference answers with a verifier.

    dataengine run --from samples --stage 'reward:kind=math,completion_column=completion,answer_column=answer' --to samples

adds ``reward`` (float64; ``output_column``) and ``reward_status`` (why: correct, wrong,
unparseable, bad_answer, timeout, error; see verifiers.py). A completion that cannot be
parsed scores 0 and is counted in the status column (``SELECT reward_status, count(*) ...``),
never an exception. ``kind=auto`` takes each row's kind from ``kind_column`` (``reward_kind``
in verifiable rows), so one stage scores a mixed table. The same scorer is what GRPO calls
inside its training loop (:meth:`Reward.score`).

A completion may be text or a conversation (``messages`` of a chat row): then its last
assistant message is scored.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import pyarrow as pa
from pydantic import Field

from dataengine.core.stage import Stage, StageParams
from dataengine.filters.rewards.verifiers import VerifierOptions, score


class RewardParams(StageParams):
    kind: Literal["auto", "math", "exact", "choice", "code"] = Field(
        "auto", description="verifier; auto: each row's kind_column (math, exact, choice, code)")
    completion_column: str = Field("completion", description="the model's answer (text, or messages)")
    answer_column: str = Field("answer", description="the reference answer (for code: test code)")
    kind_column: str = Field("reward_kind", description="per-row verifier when kind=auto")
    output_column: str = Field("reward", description="float64 reward column to add")
    status_column: str | None = Field(None, description="status column (default: <output_column>_status)")
    choices: str = Field("ABCD", description="letters a multiple-choice answer may pick (ABCDEFGHIJ for 10)")
    case_sensitive: bool = Field(False, description="exact: compare case")
    code_time_limit: float = Field(5.0, gt=0, description="code: CPU and wall seconds (wall: 2x + 1)")
    code_memory_mb: int = Field(512, ge=64, description="code: address-space limit")
    code_output_kb: int = Field(64, ge=1, description="code: largest stdout/stderr/file it may write")
    workers: int = Field(4, ge=1, description="code: programs run at once")


class Reward(Stage):
    name = "reward"
    version = "1"
    description = "verifiable rewards: math (math-verify), exact, choice, code (sandboxed) -> float64 reward"
    Params = RewardParams

    @property
    def status_name(self) -> str:
        return self.params.status_column or f"{self.params.output_column}_status"

    def required_columns(self):
        p = self.params
        cols = (p.completion_column, p.answer_column)
        return cols + ((p.kind_column,) if p.kind == "auto" else ())

    def output_columns(self):
        return {self.params.output_column: pa.float64(), self.status_name: pa.string()}

    def options(self) -> VerifierOptions:
        p = self.params
        return VerifierOptions(choices=p.choices, case_sensitive=p.case_sensitive, code_time_limit=p.code_time_limit,
                               code_memory_mb=p.code_memory_mb, code_output_kb=p.code_output_kb)

    def score(self, completions: list, answers: list, kinds: list[str] | None = None) -> tuple[list[float], list[str]]:
        """Rewards and statuses of completions (text or messages) against answers."""
        kinds = kinds or [self.params.kind] * len(completions)
        options = self.options()
        jobs = [(k if self.params.kind == "auto" else self.params.kind, _completion_text(c), a)
                for k, c, a in zip(kinds, completions, answers)]
        code = [i for i, (k, _, _) in enumerate(jobs) if k == "code"]
        results: list[tuple[float, str] | None] = [None] * len(jobs)
        for i, (k, c, a) in enumerate(jobs):
            if k != "code":
                results[i] = score(k, c, a, options)
        if code:  # programs wait on subprocesses: run several at once
            with ThreadPoolExecutor(max_workers=min(self.params.workers, len(code))) as pool:
                for i, res in zip(code, pool.map(lambda j: score(*jobs[j], options), code)):
                    results[i] = res
        return [r[0] for r in results], [r[1] for r in results]

    def process(self, batch: pa.Table) -> pa.Table:
        p = self.params
        kinds = batch.column(p.kind_column).to_pylist() if p.kind == "auto" else None
        rewards, statuses = self.score(batch.column(p.completion_column).to_pylist(),
                                       batch.column(p.answer_column).to_pylist(), kinds)
        out = batch
        for name, values, dtype in ((p.output_column, rewards, pa.float64()), (self.status_name, statuses, pa.string())):
            if name in out.column_names:
                out = out.drop_columns([name])
            out = out.append_column(name, pa.array(values, type=dtype))
        return out


def _completion_text(value):
    """Text as is; a conversation (list or JSON text of messages): its last assistant message."""
    if isinstance(value, str) and value.lstrip().startswith("[{"):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, (list, tuple)):
        replies = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "assistant"]
        return replies[-1] if replies else None
    return value
