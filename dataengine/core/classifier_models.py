"""Loading quality classifiers and scoring a batch of texts: fastText and Hugging Face.

A *scorer* turns a list of texts into one float per text: the probability of the
positive label (fastText, HF classification) or the raw output (HF regression with one
output, e.g. FineWeb-Edu's 0-5 educational score).

Everything a user can get wrong (missing file, not a model, a label the model does not
have) is checked by :func:`inspect_model` without loading the weights, so a pipeline fails
before any work starts.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from dataclasses import dataclass

import numpy as np

from dataengine.core.errors import StageError

FASTTEXT_MAGIC = 793712314
LABEL_PREFIX = "__label__"


@dataclass(frozen=True)
class ModelInfo:
    kind: str  # "fasttext" | "hf"
    path: str
    labels: tuple[str, ...]  # fastText labels without __label__; HF id2label values
    regression: bool = False


def fasttext_labels(path: str) -> tuple[str, ...]:
    """Labels of a fastText .bin/.ftz, read from its dictionary (the weights are not loaded).

    The file starts with magic, version, 12 int32 args and a double, then the dictionary:
    size, nwords, nlabels (int32), ntokens, pruneidx_size (int64), and ``size`` entries of
    (NUL-terminated word, int64 count, int8 type); labels have type 1.
    """
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size < 80:
            raise StageError(f"{path} is not a fastText model (too small)")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            magic, _version = struct.unpack_from("<ii", mm, 0)
            if magic != FASTTEXT_MAGIC:
                raise StageError(f"{path} is not a fastText model (bad magic number)")
            pos = 8 + 12 * 4 + 8
            size, _nwords, nlabels = struct.unpack_from("<iii", mm, pos)
            pos += 12 + 16
            labels = []
            for _ in range(size):
                end = mm.find(b"\0", pos)
                if end < 0:
                    raise StageError(f"{path}: truncated fastText dictionary")
                entry_type = mm[end + 9]
                if entry_type == 1:
                    labels.append(mm[pos:end].decode("utf-8", "replace"))
                    if len(labels) == nlabels:
                        break
                pos = end + 10
    return tuple(lab[len(LABEL_PREFIX):] if lab.startswith(LABEL_PREFIX) else lab for lab in labels)


def inspect_model(path: str, kind: str = "auto") -> ModelInfo:
    """What a model file/folder is and which labels it has; clear errors for the rest."""
    if not os.path.exists(path):
        raise StageError(f"model file {path} does not exist")
    if kind == "auto":
        kind = "hf" if os.path.isdir(path) else "fasttext"
    if kind == "fasttext":
        return ModelInfo("fasttext", path, fasttext_labels(path))
    if kind == "hf":
        config_file = os.path.join(path, "config.json")
        if not os.path.exists(config_file):
            raise StageError(f"{path} is not a Hugging Face model folder (no config.json)")
        config = json.loads(open(config_file).read())
        id2label = config.get("id2label") or {}
        num_labels = config.get("num_labels") or len(id2label) or 2
        labels = tuple(id2label[str(i)] if str(i) in id2label else f"LABEL_{i}" for i in range(num_labels))
        regression = num_labels == 1 or config.get("problem_type") == "regression"
        return ModelInfo("hf", path, labels, regression)
    raise StageError(f"unknown classifier kind {kind!r}: use fasttext, hf or auto")


def check_label(info: ModelInfo, label: str | None, what: str) -> str | None:
    """The positive label to score (without __label__), or None for a regression model."""
    if info.regression:
        if label is not None and len(info.labels) > 1:
            raise StageError(f"{what}: regression model has no label {label!r}")
        return None
    if label is None:
        raise StageError(f"{what}: give the positive `label` to score; the model's labels are {list(info.labels)}")
    label = label[len(LABEL_PREFIX):] if label.startswith(LABEL_PREFIX) else label
    if label not in info.labels:
        raise StageError(f"{what}: label {label!r} is not one of the model's labels {list(info.labels)}")
    return label


# -- scorers ------------------------------------------------------------------------------

class FastTextScorer:
    """Probability of ``label`` for each text (fastText's multi-line predict, one C++ call)."""

    def __init__(self, path: str, label: str):
        import fasttext

        fasttext.FastText.eprint = lambda *a, **k: None  # silence the load-model warning
        self.model = fasttext.load_model(path)
        self.label = LABEL_PREFIX + label

    def __call__(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        # k=-1: every label's probability, so the score is exactly what fastText reports
        labels, probs = self.model.predict(texts, k=-1)
        target = self.label
        out = np.fromiter(
            (next((p for lab, p in zip(labs, ps) if lab == target), 0.0) for labs, ps in zip(labels, probs)),
            dtype=np.float64,
            count=len(texts),
        )
        return np.clip(out, 0.0, 1.0).astype(np.float32)


class HFScorer:
    """A transformers sequence-classification model, batched; GPU when present."""

    def __init__(self, path: str, label: str | None, batch_size: int = 32, max_length: int = 512, device: str = "auto"):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype).to(device).eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.batch_size = batch_size
        self.max_length = max_length
        label2id = {v: int(k) for k, v in (self.model.config.id2label or {}).items()}
        self.index = None if label is None else label2id.get(label, 0)

    def __call__(self, texts: list[str]) -> np.ndarray:
        torch = self.torch
        out = np.empty(len(texts), dtype=np.float32)
        # length-sorted batches waste less padding
        order = np.argsort([len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = self.tokenizer(
                    [texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                ).to(self.device)
                logits = self.model(**enc).logits.float()
                if self.index is None:
                    scores = logits[:, 0]
                else:
                    scores = torch.softmax(logits, dim=-1)[:, self.index]
                out[idx] = scores.cpu().numpy()
        return out
