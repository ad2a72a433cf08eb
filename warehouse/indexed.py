"""Megatron-LM indexed dataset files (``.bin`` + ``.idx``, the "MMIDIDX" format).

``.bin`` is the raw token ids of every document back to back. ``.idx`` is::

    b"MMIDIDX\\x00\\x00"         9-byte magic
    <Q version = 1
    <B dtype code               (1 u8, 2 i8, 3 i16, 4 i32, 5 i64, 6 f64, 7 f32, 8 u16)
    <Q sequence count  N
    <Q document count  D = N + 1
    int32[N]  sequence lengths (tokens)
    int64[N]  sequence byte offsets into .bin
    int64[D]  document indices (0, 1, ..., N: one sequence per document)

Files written here load with Megatron's ``IndexedDataset`` / ``MMapIndexedDataset``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
DTYPE_CODES = {
    np.dtype(np.uint8): 1,
    np.dtype(np.int8): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.int32): 4,
    np.dtype(np.int64): 5,
    np.dtype(np.float64): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.uint16): 8,
}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (< 65,500 as Megatron does), else int32."""
    return np.dtype(np.uint16) if vocab_size < 65500 else np.dtype(np.int32)


class IndexedWriter:
    """Append documents (token id arrays) and finalise into ``prefix.bin`` / ``prefix.idx``.

    Writes go to temporary names and are renamed at :meth:`close`, so a crash never
    leaves a valid-looking half file.
    """

    def __init__(self, prefix: str | os.PathLike, dtype: np.dtype):
        self.prefix = str(prefix)
        self.dtype = np.dtype(dtype)
        self._bin_tmp = self.prefix + ".bin.tmp"
        self._bin = open(self._bin_tmp, "wb")
        self.sizes: list[int] = []

    def add(self, tokens) -> None:
        arr = np.asarray(tokens, dtype=self.dtype)
        self._bin.write(arr.tobytes(order="C"))
        self.sizes.append(int(arr.size))

    def add_many(self, docs: list[np.ndarray]) -> None:
        if not docs:
            return
        flat = np.concatenate([np.asarray(d, dtype=self.dtype) for d in docs])
        self._bin.write(flat.tobytes(order="C"))
        self.sizes.extend(int(len(d)) for d in docs)

    def close(self) -> dict:
        self._bin.close()
        sizes = np.asarray(self.sizes, dtype=np.int32)
        pointers = np.zeros(len(sizes), dtype=np.int64)
        if len(sizes) > 1:
            np.cumsum(sizes[:-1].astype(np.int64) * self.dtype.itemsize, out=pointers[1:])
        doc_idx = np.arange(len(sizes) + 1, dtype=np.int64)
        idx_tmp = self.prefix + ".idx.tmp"
        with open(idx_tmp, "wb") as fh:
            fh.write(MAGIC)
            fh.write(struct.pack("<Q", VERSION))
            fh.write(struct.pack("<B", DTYPE_CODES[self.dtype]))
            fh.write(struct.pack("<Q", len(sizes)))
            fh.write(struct.pack("<Q", len(doc_idx)))
            fh.write(sizes.tobytes(order="C"))
            fh.write(pointers.tobytes(order="C"))
            fh.write(doc_idx.tobytes(order="C"))
        os.replace(self._bin_tmp, self.prefix + ".bin")
        os.replace(idx_tmp, self.prefix + ".idx")
        return {"documents": int(len(sizes)), "tokens": int(sizes.sum(dtype=np.int64))}


class IndexedDataset:
    """Memory-mapped reader of a ``.bin``/``.idx`` pair."""

    def __init__(self, prefix: str | os.PathLike):
        prefix = str(prefix)
        with open(prefix + ".idx", "rb") as fh:
            magic = fh.read(9)
            if magic != MAGIC:
                raise ValueError(f"{prefix}.idx is not a Megatron index file")
            (version,) = struct.unpack("<Q", fh.read(8))
            (code,) = struct.unpack("<B", fh.read(1))
            (n,) = struct.unpack("<Q", fh.read(8))
            (d,) = struct.unpack("<Q", fh.read(8))
            offset = fh.tell()
        if version != VERSION:
            raise ValueError(f"{prefix}.idx: unsupported version {version}")
        self.dtype = CODE_DTYPES[code]
        index = np.memmap(prefix + ".idx", mode="r", dtype=np.uint8)
        self.sizes = np.frombuffer(index, dtype=np.int32, count=n, offset=offset)
        self.pointers = np.frombuffer(index, dtype=np.int64, count=n, offset=offset + 4 * n)
        self.doc_idx = np.frombuffer(index, dtype=np.int64, count=d, offset=offset + 12 * n)
        size = Path(prefix + ".bin").stat().st_size
        self.tokens = np.memmap(prefix + ".bin", mode="r", dtype=self.dtype) if size else np.zeros(0, self.dtype)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        start = int(self.pointers[i]) // self.dtype.itemsize
        return np.asarray(self.tokens[start : start + int(self.sizes[i])])

    @property
    def total_tokens(self) -> int:
        return int(self.sizes.sum(dtype=np.int64))
