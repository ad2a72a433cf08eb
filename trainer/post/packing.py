"""Packing conversations into fixed-length rows without attention across them.

Each optimizer step takes the next examples of the run's stream, in order, and places each
into the row of the step with the least room that still fits it (best fit); the step is full
when an example fits no row and no row is left to open. Keeping the stream order keeps the
blend's weights at every step and makes step ``s`` a pure function of the stream (so a resumed
run packs exactly as before). TRL's ``pack_dataset`` (best-fit decreasing over a whole dataset)
packs a little tighter, but it reorders a static dataset, which a weighted, phased, resumable
stream cannot be.

In a row, every example's ``position_ids`` restart at 0 and the attention mask is left to
transformers, which builds a block-diagonal causal mask from the position restarts (SDPA and
eager on CPU; flash-attention's variable-length kernels on GPUs): a token never attends to
another example. Padding at the end of a row is a segment of its own with no targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    loss_mask: list[bool]  # True where the token is a target

    def __len__(self) -> int:
        return len(self.input_ids)

    def labels(self) -> list[int]:
        """Next-token targets at each position (IGNORE where the next token is not a target)."""
        ids, mask = self.input_ids, self.loss_mask
        return [ids[t + 1] if mask[t + 1] else IGNORE for t in range(len(ids) - 1)] + [IGNORE]

    def targets(self) -> int:
        return sum(self.loss_mask[1:])


def pack_step(lengths: list[int], start: int, rows: int, capacity: int, packing: bool) -> tuple[list[list[int]], int]:
    """Rows (lists of stream indices) of one step beginning at stream index ``start``, and the
    index after the step. ``lengths[i]`` is example i's token count (capped at ``capacity``);
    ``lengths`` must reach far enough (the caller extends it)."""
    if not packing:
        return [[i] for i in range(start, start + rows)], start + rows
    room: list[int] = []
    bins: list[list[int]] = []
    i = start
    while True:
        n = min(lengths[i], capacity)
        best = min((r for r in range(len(bins)) if room[r] >= n), key=lambda r: room[r], default=None)
        if best is None:
            if len(bins) == rows:
                return bins, i
            bins.append([])
            room.append(capacity)
            best = len(bins) - 1
        bins[best].append(i)
        room[best] -= n
        i += 1


def pack_all(lengths: list[int], capacity: int, packing: bool) -> list[list[int]]:
    """Every example into rows (best fit, in order, as many rows as needed): evaluation sets."""
    if not packing:
        return [[i] for i in range(len(lengths))]
    room: list[int] = []
    bins: list[list[int]] = []
    for i, length in enumerate(lengths):
        n = min(length, capacity)
        best = min((r for r in range(len(bins)) if room[r] >= n), key=lambda r: room[r], default=None)
        if best is None:
            bins.append([])
            room.append(capacity)
            best = len(bins) - 1
        bins[best].append(i)
        room[best] -= n
    return bins


def collate(rows: list[list[Example]], pad_id: int) -> dict[str, torch.Tensor]:
    """input_ids, position_ids and labels (R, L), L = the longest row; no attention mask (see above)."""
    width = max(sum(len(e) for e in row) for row in rows)
    ids, pos, labels = [], [], []
    for row in rows:
        r_ids, r_pos, r_lab = [], [], []
        for e in row:
            r_ids += e.input_ids
            r_pos += list(range(len(e)))
            r_lab += e.labels()
        pad = width - len(r_ids)
        ids.append(r_ids + [pad_id] * pad)
        pos.append(r_pos + list(range(pad)))
        labels.append(r_lab + [IGNORE] * pad)
    return {"input_ids": torch.tensor(ids), "position_ids": torch.tensor(pos), "labels": torch.tensor(labels)}
