"""The training run configuration: one YAML file, validated before any work starts.

Every field has a default that trains the tiny CPU model, so a config file only states
what differs. Unknown keys fail with the field's name (a typo must not silently fall back
to a default and change the run).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dataengine.core.errors import DataEngineError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    preset: str = Field("tiny", description="tiny | small | 124m | 1b (see trainer/model.py)")
    overrides: dict = Field(default_factory=dict, description="LlamaConfig fields that replace the preset's")
    seq_len: int = 64
    # completep: learning rates, init and weight decay scale with width and depth relative to the
    # base shape, so the optimizer's lr values hold for every size (trainer/parametrization.py);
    # standard: transformers' init and the same lr for every size
    parametrization: Literal["completep", "standard"] = "completep"
    base_hidden: int = 256  # the shape where both parametrizations coincide (the `small` preset's)
    base_layers: int = 4


class OptimizerConfig(_Strict):
    name: Literal["adamw", "muon"] = "muon"
    lr: float = 3e-3  # AdamW groups (all parameters for adamw; embeddings, head, norms, biases for muon)
    muon_lr: float = 0.04  # Muon groups: hidden 2-D weight matrices (best of the sweep in benchmarks/RESULTS.md)
    muon_momentum: float = 0.8  # Nesterov; 0.8 beat Muon's usual 0.95 at every size swept (benchmarks/RESULTS.md)
    muon_adjust_lr: Literal["original", "match_rms_adamw"] = "original"
    # Newton-Schulz of wide matrices (2x+ wider than tall, the MLP's) in its Gram form: the same
    # iteration with the long-side products only at the start, one restart and the end (trainer/muon.py)
    muon_gram: bool = True
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1  # applied to 2-D weight matrices only; never to norms, biases, embeddings
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping


class ScheduleConfig(_Strict):
    kind: Literal["cosine", "wsd", "constant"] = "cosine"
    warmup_steps: int = 20  # capped at the run's steps
    decay_fraction: float = 0.2  # wsd: share of the steps spent decaying at the end
    min_lr_ratio: float = 0.1  # floor of the decay, as a fraction of the peak


class DataConfig(_Strict):
    micro_batch_size: int = 8  # sequences per forward pass per rank
    grad_accum: int = 1  # micro-batches per optimizer step per rank
    seed: Optional[int] = None  # sampling seed; default: the manifest's seed
    val_fraction: float = 0.05  # documents held out per component (see trainer/data.py)
    val_samples: int = 64  # validation sequences evaluated (fixed, the same at every eval)
    document_masking: bool = True  # no attention across the documents packed into a window (trainer/batches.py)
    prefetch: int = 2  # steps of batches prepared ahead in a background thread; 0: on demand


class RuntimeConfig(_Strict):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # auto: bf16 autocast on CUDA, and on CPUs with AVX512-BF16/AMX for hidden size >= 256 (where
    # it pays); fp32 otherwise. Pin fp32 or bf16 to make a run independent of the machine.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # torch.compile the model; auto: on CUDA, and on CPU for runs of at least 1e14 training FLOPs
    # per process (~2,000 steps of `small` at 2,048 tokens), where the ~30 s first compile is won
    # back, if a C++ compiler is there (see trainer/loop.py, benchmarks/RESULTS.md)
    compile: Union[Literal["auto"], bool] = "auto"
    # attention kernel; auto: "bmm" (batched matmuls, trainer/attention.py) under bf16 on CPU for
    # windows of up to 512 tokens, where it beats SDPA's flash kernel; "sdpa" otherwise
    attention: Literal["auto", "sdpa", "bmm"] = "auto"
    # rotary written straight into the head-major layout and an RMSNorm with a hand-written
    # backward (trainer/rotary.py, trainer/rmsnorm.py): the same math in fewer passes over
    # memory; auto: on CPU without compile, where each elementwise op is a pass (compile fuses them)
    fused_layers: Union[Literal["auto"], bool] = "auto"
    # C kernels (kernels/cpu_fused.c, built with the system C compiler on first use) for the fused
    # layers, the SwiGLU gate, the attention softmax and the loss: one pass each where PyTorch
    # makes two to five. auto: with fused_layers under bf16 and one torch thread (they are
    # sequential), if they build; true: fail when they cannot be built
    cpu_kernels: Union[Literal["auto"], bool] = "auto"
    deterministic: bool = True  # deterministic kernels + fixed threads: bitwise resume on CPU
    threads: int = 1  # torch intra-op threads on CPU (fixed, so results do not depend on the machine)
    distributed: Literal["ddp", "fsdp"] = "ddp"  # strategy when launched with torchrun
    init_seed: int = 0  # seeds model initialisation


class TrainConfig(_Strict):
    steps: int = 200
    model: ModelConfig = Field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    log_every: int = 1
    eval_every: int = 50
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    progress: bool = True

    @model_validator(mode="after")
    def _check(self):
        if self.steps < 1:
            raise ValueError("steps must be at least 1")
        if not 0 <= self.data.val_fraction < 1:
            raise ValueError("data.val_fraction must be in [0, 1)")
        return self


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(path: str | Path | None, overrides: dict | None = None, config_class: type = TrainConfig,
                defaults: dict | None = None) -> TrainConfig:
    """Read a YAML config (or the defaults) and apply dotted-key overrides like ``{"steps": 10}``.

    ``config_class`` validates (post-training extends TrainConfig); ``defaults`` is a nested
    dict under the file's values (a post-training stage's own defaults, e.g. a smaller lr)."""
    raw: dict = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise DataEngineError(f"no config file {path}") from None
    if defaults:
        raw = _deep_merge(copy.deepcopy(defaults), raw)
    for key, value in (overrides or {}).items():
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    try:
        return config_class.model_validate(raw)
    except ValidationError as exc:  # one line per the CLI's rule: "field: problem; field: problem"
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise DataEngineError(f"invalid training config {path or ''}: {problems}") from None
