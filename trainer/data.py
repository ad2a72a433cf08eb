"""Train and validation streams of a blend version, and which samples each rank reads.

Validation split (deterministic per blend version): in every component, a fraction
``val_fraction`` of the documents (at least one when the component has two or more) is held
out. Which ones is drawn by a generator seeded with the blend version's content hash and the
component's position, so the split is a property of the blend version, the same for every
run, seed and world size, and documents never appear in both streams. (Documents are
addressed by their index in the component's token export, whose order is fixed for a blend
version and tokenizer.) The validation set is the first ``val_samples`` windows of a
BlendReader over the held-out documents, weighted like the blend.

Sample order: optimizer step ``s`` consumes global samples ``[s*G, (s+1)*G)`` with
``G = micro_batch * grad_accum * world``; micro-batch slot ``j = micro * world + rank`` takes
rows ``[s*G + j*micro_batch, ... + micro_batch)``. With world 1 and twice the accumulation
the same samples make up the step, which is what makes DDP match single-process training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dataengine.trainer.blend_reader import BlendReader
from dataengine.warehouse.indexed import IndexedDataset


def load_manifest(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def validation_documents(manifest: dict, val_fraction: float) -> dict[str, np.ndarray]:
    """Held-out document indices per component name (sorted)."""
    split_seed = int(manifest["blend_content_hash"][:16], 16)
    out = {}
    for position, comp in enumerate(manifest["components"]):
        n = int(comp["documents"])
        k = 0 if n < 2 or val_fraction <= 0 else min(n - 1, max(1, round(val_fraction * n)))
        rng = np.random.default_rng([split_seed, position])
        out[comp["name"]] = np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64)
    return out


def train_documents(manifest: dict, held_out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every document index not held out, per component."""
    return {
        c["name"]: np.setdiff1d(np.arange(int(c["documents"]), dtype=np.int64), held_out[c["name"]])
        for c in manifest["components"]
    }


class TrainStream:
    """Samples of the training split, addressed by (step, micro-batch, rank)."""

    def __init__(self, manifest: dict, seq_len: int, seed: int | None, micro_batch: int, grad_accum: int,
                 world: int, steps: int, val_fraction: float):
        self.micro_batch, self.grad_accum, self.world = micro_batch, grad_accum, world
        self.global_batch = micro_batch * grad_accum * world
        held = validation_documents(manifest, val_fraction)
        self.documents = train_documents(manifest, held)
        self.reader = BlendReader(manifest, seq_len, seed=seed, total_samples=steps * self.global_batch,
                                  documents=self.documents)

    def first_sample(self, step: int, micro: int, rank: int) -> int:
        return step * self.global_batch + (micro * self.world + rank) * self.micro_batch

    def micro_batch_at(self, step: int, micro: int, rank: int) -> np.ndarray:
        """(micro_batch, seq_len + 1) int64 token windows."""
        return self.reader.batch(self.first_sample(step, micro, rank), self.micro_batch)


def validation_batches(manifest: dict, seq_len: int, val_fraction: float, val_samples: int,
                       micro_batch: int) -> list[np.ndarray]:
    """The fixed validation set, in micro-batches (empty when nothing is held out).

    Capped at the held-out token count so no window repeats."""
    held = validation_documents(manifest, val_fraction)
    tokens = sum(_tokens_of(c, held[c["name"]]) for c in manifest["components"])
    n = min(val_samples, tokens // (seq_len + 1))
    if n == 0:
        return []
    # the seed is fixed: the validation set does not change with the training seed
    reader = BlendReader(manifest, seq_len, seed=0, total_samples=n, documents=held)
    samples = reader.batch(0, n)
    return [samples[i : i + micro_batch] for i in range(0, n, micro_batch)]


def _tokens_of(comp: dict, documents: np.ndarray) -> int:
    if len(documents) == 0:
        return 0
    return int(IndexedDataset(comp["prefix"]).sizes[documents].sum(dtype=np.int64))


def unigram_baseline(manifest: dict, stream: TrainStream, val: list[np.ndarray], vocab_size: int) -> float:
    """Cross-entropy (nats/token) of the validation targets under the training split's unigram
    distribution (add-one smoothed): the loss a model that ignores context cannot beat."""
    counts = np.ones(vocab_size, dtype=np.float64)
    for comp in manifest["components"]:
        data = IndexedDataset(comp["prefix"])
        for d in stream.documents[comp["name"]]:
            counts += np.bincount(data[int(d)], minlength=vocab_size)[:vocab_size]
    logp = np.log(counts / counts.sum())
    targets = np.concatenate([b[:, 1:].ravel() for b in val]) if val else np.zeros(0, np.int64)
    return float(-logp[targets].mean()) if len(targets) else float("nan")
