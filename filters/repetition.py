"""Repetition inside documents, for a whole batch at once: duplicate items and n-grams.

Items (lines, paragraphs, words) of all documents of a batch are flat arrays with a
``parents`` array naming each item's document. "Is this item equal to an earlier item of
the same document?" is answered by hashing (document, item) into one 64-bit key and
dictionary-encoding the keys with Arrow: dictionary codes are handed out in order of first
appearance, so an item is a first occurrence exactly when its code exceeds every code
before it. That is O(n) hashing instead of a sort, and no Python loop per document.

N-grams of words are 64-bit hashes built incrementally (n from n-1), so Gopher's nine
n-gram rules (2..10) cost one pass each.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MULT = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD,
     0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9, 0x27D4EB2F165667C5, 0x85EBCA77C2B2AE63],
    dtype=np.uint64,
)
_PRIME = np.uint64(0x100000001B3)
_DOC_MULT = np.uint64(0xA24BAED4963EE407)


def _group_codes(keys: np.ndarray) -> np.ndarray:
    """Dense group ids in order of first appearance (Arrow's hash-based dictionary encode)."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    encoded = pc.dictionary_encode(pa.array(keys))
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def first_occurrence(keys: np.ndarray) -> np.ndarray:
    """True where ``keys[i]`` has not appeared before position i."""
    codes = _group_codes(keys)
    if len(codes) == 0:
        return np.zeros(0, dtype=bool)
    seen_max = np.maximum.accumulate(codes)
    first = np.empty(len(codes), dtype=bool)
    first[0] = True
    first[1:] = codes[1:] > seen_max[:-1]
    return first


def doc_keys(codes: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """One key per (document, item code): equal only for equal items of the same document."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    width = int(codes.max()) + 1
    if len(parents) == 0 or int(parents.max()) < (2**62) // width:
        return parents.astype(np.int64) * width + codes.astype(np.int64)
    with np.errstate(over="ignore"):  # hashes: mix the document in
        return (codes.astype(np.uint64) ^ (parents.astype(np.uint64) * _DOC_MULT)).view(np.int64)


def duplicate_items(codes: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """True for every item equal to an earlier item of the same document."""
    return ~first_occurrence(doc_keys(codes, parents))


def ngram_hashes(codes: np.ndarray, n: int, previous: np.ndarray | None = None) -> np.ndarray:
    """Hash of the n-gram starting at every position (``len(codes) - n + 1`` of them).

    ``previous`` (the (n-1)-gram hashes) makes it one vector step instead of n.
    """
    count = len(codes) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    c = codes.astype(np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        if previous is None:
            key = np.zeros(count, dtype=np.uint64)
            for k in range(n):
                key = (key ^ (c[k : k + count] * _MULT[k % len(_MULT)])) * _PRIME
        else:
            key = (previous[:count] ^ (c[n - 1 : n - 1 + count] * _MULT[(n - 1) % len(_MULT)])) * _PRIME
    return key


def ngrams_inside(parents: np.ndarray, n: int) -> np.ndarray:
    """Start positions of n-grams that do not cross a document boundary."""
    count = len(parents) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(count)
    return starts[parents[:count] == parents[n - 1 : n - 1 + count]]


def top_ngram_chars(hashes, starts, lengths, parents, n_docs: int, n: int) -> np.ndarray:
    """Per document: characters (of words, no spaces) of its most frequent n-gram times its count.

    Ties between equally frequent n-grams go to the longer one.
    """
    out = np.zeros(n_docs)
    if len(starts) == 0:
        return out
    doc = parents[starts]
    groups = _group_codes(_mix(hashes[starts], doc))
    count = np.bincount(groups)
    # group ids are handed out in order of first appearance: group g first appears at first[g]
    seen_max = np.maximum.accumulate(groups)
    is_first = np.concatenate([[True], groups[1:] > seen_max[:-1]])
    first = np.flatnonzero(is_first)
    csum = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    chars = csum[starts[first] + n] - csum[starts[first]]
    group_doc = doc[first]
    width = int(chars.max()) + 1
    rank = count.astype(np.int64) * width + chars
    best = np.zeros(n_docs, dtype=np.int64)
    np.maximum.at(best, group_doc, rank)
    return (best // width) * (best % width).astype(np.float64)


def duplicate_ngram_chars(hashes, starts, lengths, parents, n_docs: int, n: int) -> np.ndarray:
    """Per document: characters of words covered by an n-gram repeating an earlier one.

    Overlapping duplicate n-grams count each word once (Gopher's definition).
    """
    out = np.zeros(n_docs)
    if len(starts) == 0:
        return out
    dup = ~first_occurrence(_mix(hashes[starts], parents[starts]))
    if not dup.any():
        return out
    cover = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.add.at(cover, starts[dup], 1)
    np.add.at(cover, starts[dup] + n, -1)
    covered = np.cumsum(cover[:-1]) > 0
    return np.bincount(parents, weights=np.where(covered, lengths, 0), minlength=n_docs)[:n_docs]


def _mix(hashes: np.ndarray, doc: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ((hashes ^ (doc.astype(np.uint64) * _DOC_MULT)) * _PRIME).view(np.int64)


class NgramRepetition:
    """Top and duplicate n-gram characters of every document, hashes shared across n."""

    def __init__(self, codes: np.ndarray, lengths: np.ndarray, parents: np.ndarray, n_docs: int):
        self.codes, self.lengths, self.parents, self.n_docs = codes, lengths, parents, n_docs
        self._hashes: dict[int, np.ndarray] = {}
        self._cache: dict[tuple[str, int], np.ndarray] = {}

    def hashes(self, n: int) -> np.ndarray:
        if n not in self._hashes:
            prev = self._hashes.get(n - 1)
            self._hashes[n] = ngram_hashes(self.codes, n, prev)
        return self._hashes[n]

    def _hashes_upto(self, n: int) -> np.ndarray:
        for k in range(1, n + 1):  # incremental: n from n-1
            self.hashes(k)
        return self._hashes[n]

    def top(self, n: int) -> np.ndarray:
        key = ("top", n)
        if key not in self._cache:
            self._cache[key] = top_ngram_chars(
                self._hashes_upto(n), ngrams_inside(self.parents, n), self.lengths, self.parents, self.n_docs, n
            )
        return self._cache[key]

    def duplicate(self, n: int) -> np.ndarray:
        key = ("dup", n)
        if key not in self._cache:
            self._cache[key] = duplicate_ngram_chars(
                self._hashes_upto(n), ngrams_inside(self.parents, n), self.lengths, self.parents, self.n_docs, n
            )
        return self._cache[key]
