"""Deterministic weighted sampling of a blend version's token export.

Every sample is a window of ``seq_len + 1`` tokens (inputs and shifted labels) cut from one
component's token stream: that component's documents, each ending with EOS, concatenated
in a seeded per-epoch permutation. Which component sample ``i`` comes from follows
Megatron's BlendedDataset rule: the component with the largest deficit
``weight * (j + 1) - taken`` goes next, so shares track the weights at every prefix of
the stream. Everything is a pure function of (manifest, seq_len, seed, i): resuming at
sample ``k`` gives exactly the stream that not stopping would have.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dataengine.warehouse.indexed import IndexedDataset


class _ComponentStream:
    """A component's token stream across epochs, with a seeded document order per epoch.

    ``documents`` restricts the stream to those document indices (a train or validation
    split, see trainer/data.py); None means every document, exactly as before.
    """

    def __init__(self, prefix: str, seed: int, index: int, documents: np.ndarray | None = None):
        self.data = IndexedDataset(prefix)
        self.seed, self.index = seed, index
        self.documents = None if documents is None else np.asarray(documents, dtype=np.int64)
        if self.documents is None:
            self.tokens_per_epoch = self.data.total_tokens
        else:
            self.tokens_per_epoch = int(self.data.sizes[self.documents].sum(dtype=np.int64))
        self._epochs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _epoch(self, e: int) -> tuple[np.ndarray, np.ndarray]:
        if e not in self._epochs:
            rng = np.random.default_rng([self.seed, self.index, e])
            if self.documents is None:
                order = rng.permutation(len(self.data))
            else:  # same seeded permutation, over the kept documents only
                order = self.documents[rng.permutation(len(self.documents))]
            ends = np.cumsum(self.data.sizes[order].astype(np.int64))
            if len(self._epochs) > 4:
                self._epochs.pop(next(iter(self._epochs)))
            self._epochs[e] = (order, ends)
        return self._epochs[e]

    def window(self, start: int, length: int) -> np.ndarray:
        """Tokens [start, start + length) of the endless stream."""
        if self.tokens_per_epoch == 0:
            raise ValueError("component has no tokens")
        out = np.empty(length, dtype=np.int64)
        filled = 0
        pos = start
        while filled < length:
            epoch, offset = divmod(pos, self.tokens_per_epoch)
            order, ends = self._epoch(epoch)
            k = int(np.searchsorted(ends, offset, side="right"))
            doc_start = int(ends[k - 1]) if k else 0
            doc = self.data[int(order[k])]
            piece = doc[offset - doc_start : offset - doc_start + (length - filled)]
            out[filled : filled + len(piece)] = piece
            filled += len(piece)
            pos += len(piece)
        return out


class BlendReader:
    """Packed, weighted, resumable samples from a blend export manifest."""

    def __init__(self, manifest: str | Path | dict, seq_len: int, seed: int | None = None,
                 total_samples: int | None = None, documents: dict[str, np.ndarray] | None = None):
        """``documents`` maps a component name to the document indices this reader may use
        (default: all); trainer/data.py uses it to keep train and validation documents apart."""
        if not isinstance(manifest, dict):
            manifest = json.loads(Path(manifest).read_text())
        self.manifest = manifest
        self.seq_len = seq_len
        self.seed = manifest.get("seed", 1234) if seed is None else seed
        documents = documents or {}
        comps = [c for c in manifest["components"] if c["tokens"] > 0 and len(documents.get(c["name"], [0])) > 0]
        if not comps:
            raise ValueError("the blend export has no tokens")
        self.names = [c["name"] for c in comps]
        self.streams = [_ComponentStream(c["prefix"], self.seed, i, documents.get(c["name"])) for i, c in enumerate(comps)]
        phases = manifest.get("phases") or [{"name": "main", "token_share": 1.0}]
        self.phases = []
        for p in phases:
            members = [i for i, c in enumerate(comps) if c.get("phase", "main") == p["name"]]
            if not members:
                continue
            w = np.array([comps[i]["weight"] for i in members], dtype=np.float64)
            self.phases.append({"name": p["name"], "share": p["token_share"], "members": members, "weights": w / w.sum()})
        if len(self.phases) > 1 and not total_samples:
            raise ValueError("a blend with phases needs total_samples to place the phase boundaries")
        self.total_samples = total_samples
        bounds, acc = [], 0.0
        for p in self.phases:
            acc += p["share"]
            bounds.append(round(acc / sum(x["share"] for x in self.phases) * (total_samples or 0)))
        self._phase_ends = bounds
        self._choice: list[np.ndarray] = [np.zeros(0, np.int32) for _ in self.phases]  # component per local index
        self._rank: list[np.ndarray] = [np.zeros(0, np.int64) for _ in self.phases]  # nth sample of that component
        self._state = [(np.zeros(len(p["members"]), np.int64)) for p in self.phases]

    # -- blending index ---------------------------------------------------------------
    def _locate_phase(self, i: int) -> tuple[int, int]:
        if len(self.phases) == 1:
            return 0, i
        start = 0
        for p, end in enumerate(self._phase_ends):
            if i < end or p == len(self.phases) - 1:
                return p, i - start
            start = end
        raise AssertionError

    def _extend(self, p: int, upto: int) -> None:
        have = len(self._choice[p])
        if upto < have:
            return
        n = max(upto + 1, 2 * have, 1024)
        weights = self.phases[p]["weights"]
        taken = self._state[p]
        choice = np.empty(n - have, np.int32)
        rank = np.empty(n - have, np.int64)
        for j in range(have, n):
            c = int(np.argmax(weights * (j + 1) - taken))
            choice[j - have] = c
            rank[j - have] = taken[c]
            taken[c] += 1
        self._choice[p] = np.concatenate([self._choice[p], choice])
        self._rank[p] = np.concatenate([self._rank[p], rank])

    def component_of(self, i: int) -> tuple[int, int]:
        """(component index, how many samples that component gave before) for sample i."""
        p, j = self._locate_phase(i)
        self._extend(p, j)
        local = int(self._choice[p][j])
        return self.phases[p]["members"][local], int(self._rank[p][j])

    # -- samples ------------------------------------------------------------------------
    def __getitem__(self, i: int) -> np.ndarray:
        c, k = self.component_of(i)
        return self.streams[c].window(k * self.seq_len, self.seq_len + 1)

    def iter_from(self, start: int = 0, stop: int | None = None):
        i = start
        while stop is None or i < stop:
            yield self[i]
            i += 1

    def batch(self, start: int, size: int) -> np.ndarray:
        return np.stack([self[i] for i in range(start, start + size)])
