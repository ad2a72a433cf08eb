"""Shingle hashes of a batch of texts, vectorised (Arrow compute + NumPy).

Returns one uint64 per shingle, documents back to back, plus offsets: the input format of
:mod:`dataengine.kernels.minhash`. Word shingles hash each *distinct* word of the batch once (xxh3)
and combine n consecutive word hashes with integer mixing over whole arrays; character
shingles use a polynomial hash over the UTF-8 bytes, also over whole arrays. No Python
loop runs per shingle.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

_MIX = np.uint64(0x9E3779B97F4A7C15)
_BASE = np.uint64(0x100000001B3)


def normalise(text: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Lower-case, punctuation and symbols to spaces, whitespace collapsed (datatrove-style)."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = pc.fill_null(text, "")
    text = pc.utf8_lower(text)
    text = pc.replace_substring_regex(text, r"[\p{P}\p{S}]+", " ")
    text = pc.replace_substring_regex(text, r"\s+", " ")
    return pc.utf8_trim_whitespace(text)


def _fmix(h: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser: spreads bits so nearby inputs hash far apart."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def word_shingles(text: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of word n-grams; a document with fewer than n words is one shingle."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    words = pc.utf8_split_whitespace(text)
    list_offsets = words.offsets.to_numpy().astype(np.int64)
    empty = pc.equal(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False)
    counts = np.where(empty, 0, np.diff(list_offsets))  # '' splits into [''], which is no word
    flat = words.values
    if len(flat) == 0:
        return np.zeros(0, np.uint64), np.zeros(len(text) + 1, np.int64)
    encoded = pc.dictionary_encode(flat).combine_chunks() if isinstance(flat, pa.ChunkedArray) else pc.dictionary_encode(flat)
    vocab = encoded.dictionary.to_pylist()
    vocab_hash = np.fromiter((xxhash.xxh3_64_intdigest(w.encode("utf-8")) for w in vocab), np.uint64, len(vocab))
    word_hash = vocab_hash[encoded.indices.to_numpy(zero_copy_only=False)]

    starts = list_offsets[:-1]
    # shingles per document: max(count - n + 1, 1) for non-empty documents, 0 for empty ones
    per_doc = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
    total = int(per_doc.sum())
    doc_of = np.repeat(np.arange(len(counts)), per_doc)
    first = np.concatenate([[0], np.cumsum(per_doc)[:-1]])
    pos = starts[doc_of] + (np.arange(total) - first[doc_of])
    width = np.minimum(counts[doc_of], n)  # short documents: all their words
    h = np.zeros(total, np.uint64)
    for r in range(n):
        valid = r < width
        idx = np.where(valid, pos + r, 0)
        h = np.where(valid, (h ^ word_hash[idx]) * _MIX, h)
    offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
    return _fmix(h), offsets


def char_shingles(text: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of n-byte windows of the UTF-8 text; shorter documents are one shingle."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = text.cast(pa.large_string()) if text.type == pa.string() else text
    buffers = text.buffers()
    offs = np.frombuffer(buffers[1], dtype=np.int64, count=len(text) + 1, offset=text.offset * 8)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    counts = (offs[1:] - offs[:-1]).astype(np.int64)
    per_doc = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
    total = int(per_doc.sum())
    doc_of = np.repeat(np.arange(len(counts)), per_doc)
    first = np.concatenate([[0], np.cumsum(per_doc)[:-1]])
    pos = offs[:-1][doc_of] + (np.arange(total) - first[doc_of])
    width = np.minimum(counts[doc_of], n)
    h = np.zeros(total, np.uint64)
    bytes64 = data.astype(np.uint64)
    for r in range(n):
        valid = r < width
        idx = np.where(valid, pos + r, 0)
        h = np.where(valid, h * _BASE + bytes64[idx] + np.uint64(1), h)
    offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
    return _fmix(h), offsets


def shingle_hashes(text, unit: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    normalised = normalise(text)
    if unit == "word":
        return word_shingles(normalised, n)
    if unit == "char":
        return char_shingles(normalised, n)
    raise ValueError(f"unknown shingle unit {unit!r}: word or char")


def shingle_sets(texts: list[str], unit: str, n: int) -> list[np.ndarray]:
    """Sorted unique shingle hashes per text (for the exact Jaccard check of candidates)."""
    hashes, offsets = shingle_hashes(pa.array(texts, pa.string()), unit, n)
    return [np.unique(hashes[offsets[i] : offsets[i + 1]]) for i in range(len(texts))]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
