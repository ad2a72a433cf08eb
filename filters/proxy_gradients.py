"""``proxy_gradients``: each row's loss gradient under a small proxy LM, as a d-dim unit vector.

The representation G-Vendi and Prismatic Synthesis work in (Jung et al., 2025): the
gradient of the proxy's mean token loss with respect to a parameter subset (default the
last decoder block and the head), projected to ``dim`` dimensions (default 1024) by a
seeded Rademacher matrix applied block by block, and L2-normalised.

Rows are text (``text_column``), prompt/response pairs (``prompt_column`` +
``response_column``: the loss is on the response given the prompt, e.g. ``chosen`` of a
preference row), or conversations (``messages_column``: the loss is on the last assistant
message). Columns: ``<column>`` (fixed-size list of float32; null when a row has no token
to score) and ``<column>_loss`` (the proxy's mean token loss, float32).

Memory is bounded by ``batch_size`` rows at a time (their per-sample gradients), whatever
the table size: the executor streams batches and the stage splits them further.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field, model_validator

from dataengine.core.errors import StageError
from dataengine.core.stage import Stage, StageParams
from dataengine.filters.proxy_model import ProxyModel, RowColumns


class ProxyGradientsParams(StageParams):
    model: str = Field("smollm2", description="proxy: smollm2 (SmolLM2-135M-Instruct), a Hugging Face or "
                                              "`dataengine train` model folder, or a .gguf file")
    params: list[str] = Field(["last_block", "head"], description="parameters to differentiate: last_block, "
                                                                   "head, or globs over parameter names")
    dim: int = Field(1024, ge=1, le=65_536, description="projected dimensions")
    seed: int = Field(0, ge=0, description="seed of the Rademacher projection (same seed, same vectors)")
    text_column: str = "text"
    prompt_column: str | None = Field(None, description="with response_column: loss on the response given this prompt")
    response_column: str | None = None
    messages_column: str | None = Field(None, description="conversations: loss on the last assistant message")
    max_tokens: int = Field(512, ge=2, description="tokens per sample (longer rows are truncated)")
    batch_size: int = Field(8, ge=1, description="rows per vmap call: memory is about batch_size x gradient size")
    column: str = Field("proxy_grad", pattern=r"^[a-z][a-z0-9_]*$")
    gpu: bool = Field(False, description="run the proxy on CUDA and project with the Triton kernel")
    threads: int | None = Field(None, ge=1, description="torch threads per worker (default: torch's)")

    @model_validator(mode="after")
    def _one_input(self):
        if (self.prompt_column is None) != (self.response_column is None):
            raise ValueError("prompt_column and response_column go together")
        if self.prompt_column and self.messages_column:
            raise ValueError("give prompt_column/response_column or messages_column, not both")
        return self


class ProxyGradients(Stage):
    name = "proxy_gradients"
    version = "1"
    description = "per-row loss gradient of a proxy LM, projected (Rademacher) and normalised: <column>, <column>_loss"
    inputs = ("text",)
    Params = ProxyGradientsParams

    @property
    def row_columns(self) -> RowColumns:
        p = self.params
        return RowColumns(p.text_column, p.prompt_column, p.response_column, p.messages_column)

    def required_columns(self):
        return self.row_columns.required()

    def output_columns(self):
        p = self.params
        return {p.column: pa.list_(pa.float32(), p.dim), f"{p.column}_loss": pa.float32()}

    def setup(self) -> None:
        import torch

        p = self.params
        if p.threads:
            torch.set_num_threads(p.threads)
        device = "cpu"
        if p.gpu:
            if not torch.cuda.is_available():
                raise StageError("proxy_gradients gpu: true needs a CUDA device; drop --gpu on this machine")
            device = "cuda"
        self.proxy = ProxyModel.load(p.model, p.params, p.dim, p.seed, p.max_tokens, device)

    def process(self, batch: pa.Table) -> pa.Table:
        """A malformed row raises before any gradient work: the executor then re-runs the
        batch row by row, so that row alone gets nulls and is counted as an error."""
        import numpy as np

        p = self.params
        samples = self.row_columns.encode(self.proxy.encoder, batch)
        vectors, losses = self.proxy.gradients(samples, batch_size=p.batch_size)
        valid = ~np.isnan(vectors).any(axis=1)
        flat = pa.array(np.nan_to_num(vectors).reshape(-1), pa.float32())
        grads = pa.FixedSizeListArray.from_arrays(flat, p.dim, mask=pa.array(~valid))
        loss = pa.array(losses, pa.float32(), mask=np.isnan(losses))
        for name, values in ((p.column, grads), (f"{p.column}_loss", loss)):
            if name in batch.column_names:
                batch = batch.drop_columns([name])
            batch = batch.append_column(name, values)
        return batch
