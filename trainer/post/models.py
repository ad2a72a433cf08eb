"""The model a post-training run starts from (``--init``), its frozen reference, and the output folder.

``--init`` names a local Hugging Face folder (a ``dataengine train`` run's ``model/`` folder
included) or a GGUF file inside one (the default SmolLM2 model is a GGUF that transformers
de-quantises); the API resolves the spec to an :class:`InitModel`. Weights are loaded in
fp32 (the master weights; bf16 is an autocast choice of ``runtime.precision``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from dataengine.core.errors import DataEngineError


@dataclass(frozen=True)
class InitModel:
    spec: str  # what the user named (recorded in the run)
    folder: str
    gguf_file: str | None = None

    @property
    def kwargs(self) -> dict:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}

    def fingerprint(self) -> str:
        """Identifies the weights a run started from (config + weight file names and sizes)."""
        folder = Path(self.folder)
        parts = []
        config = folder / "config.json"
        if config.exists():
            parts.append(config.read_text())
        for p in sorted(folder.iterdir()):
            if p.suffix in (".safetensors", ".bin", ".gguf", ".pt") and (self.gguf_file is None or p.name == self.gguf_file):
                parts.append(f"{p.name}:{p.stat().st_size}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def load_tokenizer(init: InitModel):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(init.folder, **init.kwargs)
    except (OSError, ValueError) as exc:
        raise DataEngineError(f"cannot load the tokenizer of {init.spec}: {str(exc).splitlines()[0]}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    # we cut sequences at model.seq_len ourselves; a pretraining run's tokenizer says its training length
    # here, which only makes transformers warn about every longer conversation we are about to cut
    tok.model_max_length = max(tok.model_max_length or 0, 1 << 30)
    return tok


def load_causal_lm(init: InitModel):
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(init.folder, dtype=torch.float32, **init.kwargs)
    except (OSError, ValueError) as exc:
        raise DataEngineError(f"cannot load {init.spec} as a causal LM: {str(exc).splitlines()[0]}") from None
    model.config.use_cache = False
    return model


def load_reward_model(init: InitModel, num_labels: int, pad_token_id: int):
    """A sequence-scoring model (``AutoModelForSequenceClassification``) on the init model's body;
    its head (``num_labels`` outputs: reward, then attributes) starts fresh unless the folder is
    already a reward model with that many outputs."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights were newly initialised": the score head, as intended
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            init.folder, num_labels=num_labels, dtype=torch.float32, ignore_mismatched_sizes=True, **init.kwargs)
    except (OSError, ValueError) as exc:
        raise DataEngineError(f"cannot load {init.spec} as a reward model: {str(exc).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = pad_token_id
    model.config.use_cache = False
    return model


def frozen_copy(model):
    """A reference model: the same weights, no gradients, eval mode."""
    ref = copy.deepcopy(model)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def save_model_folder(folder: Path, model, tokenizer, extra: dict | None = None) -> Path:
    """``save_pretrained`` model and tokenizer (with the chat template the run used)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if extra:
        (folder / "dataengine.json").write_text(json.dumps(extra, indent=1))
    return folder
