"""Tokenized export of blend components in the Megatron indexed format.

Token files are content-addressed: ``WAREHOUSE/exports/tokens/<tokenizer hash>/<component
content hash>/tokens.{bin,idx}``, where the content hash covers every selected (id, text).
Exporting the same blend version with the same tokenizer again finds the files and does
no work; an unchanged component is shared by every version that selects the same rows.

Tokenization is sharded: a component's rows are split into parts by ``hash(id)``; each part
is tokenized by a worker (a spawn process pool, or in-process with one worker, where the
`tokenizers` library itself uses every core) into its own part files, and the parts are
concatenated in part order. Every document ends with the tokenizer's end-of-text token,
so a reader packs documents into sequences without re-tokenizing.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from dataengine.warehouse.components import iter_component
from dataengine.warehouse.indexed import IndexedDataset, IndexedWriter, token_dtype
from dataengine.warehouse.lake import Warehouse, WarehouseConfig

ROWS_PER_PART = 50_000


def _token_dir(warehouse: Warehouse, tokenizer_hash: str, content_hash: str) -> Path:
    return Path(warehouse.config.root) / "exports" / "tokens" / tokenizer_hash / content_hash


def _tokenize_part(args) -> dict:
    """Worker: tokenize one part of a component into ``prefix`` (.bin/.idx)."""
    wh_config, sql, snapshot, part, parts, tokenizer_json, eos_id, dtype, prefix = args
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    writer = IndexedWriter(prefix, np.dtype(dtype))
    eos = np.array([eos_id], dtype=np.int64)
    for batch in iter_component(Warehouse(wh_config), sql, snapshot, batch_size=2_000, part=part, parts=parts):
        texts = [t or "" for t in batch.column("text").to_pylist()]
        encoded = tok.encode_batch_fast(texts, add_special_tokens=False)
        writer.add_many([np.concatenate([np.asarray(e.ids, dtype=np.int64), eos]) for e in encoded])
    return writer.close()


def _concat_parts(part_prefixes: list[str], prefix: str, dtype: np.dtype) -> dict:
    writer = IndexedWriter(prefix, dtype)
    with open(writer._bin_tmp, "ab") as out:
        for p in part_prefixes:
            with open(p + ".bin", "rb") as fh:
                shutil.copyfileobj(fh, out, length=16 << 20)
            writer.sizes.extend(IndexedDataset(p).sizes.tolist())
    writer._bin.close()
    writer._bin = open(os.devnull, "wb")  # close() closes this; data is already on disk
    return writer.close()


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(16 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_component(blends, comp: dict, snapshot: int, tok, workers: int = 1) -> dict:
    """Token files for one component (cached by tokenizer hash and content hash)."""
    wh = blends.wh
    folder = _token_dir(wh, tok.hash, comp["content_hash"])
    done = folder / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    dtype = token_dtype(tok.vocab_size)
    parts = max(1, math.ceil(comp["rows"] / ROWS_PER_PART))
    tok_json = tok.tokenizer.to_str()
    jobs = [
        (wh.config, comp["sql"], snapshot, i, parts, tok_json, tok.eos_id, dtype.str, str(folder / f"part-{i:05d}"))
        for i in range(parts)
    ]
    if workers > 1 and parts > 1:
        with ProcessPoolExecutor(max_workers=min(workers, parts), mp_context=mp.get_context("spawn")) as pool:
            list(pool.map(_tokenize_part, jobs))
    else:
        for job in jobs:
            _tokenize_part(job)
    prefix = str(folder / "tokens")
    counts = _concat_parts([j[-1] for j in jobs], prefix, dtype)
    for j in jobs:
        for ext in (".bin", ".idx"):
            os.remove(j[-1] + ext)
    record = {
        "prefix": prefix,
        "documents": counts["documents"],
        "tokens": counts["tokens"],
        "dtype": dtype.name,
        "bin_sha256": _sha256(prefix + ".bin"),
        "idx_sha256": _sha256(prefix + ".idx"),
    }
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, done)
    return record


def export_components(blends, comps: list[dict], snapshot: int, tokenizer: str, workers: int = 1,
                      progress: bool = False) -> dict:
    """Export every component; returns tokenizer info and per-component token files."""
    from dataengine.warehouse.tokenizers import load_tokenizer

    from dataengine.warehouse.row_export import export_rows_component

    tok = load_tokenizer(tokenizer, blends.wh)
    out = []
    for comp in comps:
        if comp.get("shape", "text") != "text":  # chat / preference / verifiable: normalized rows
            rec = export_rows_component(blends, comp, snapshot, tok)
        else:
            rec = export_component(blends, comp, snapshot, tok, workers=workers)
        out.append({"component": comp["name"], **rec})
    return {"tokenizer": tok.name, "tokenizer_hash": tok.hash, "eos_id": tok.eos_id,
            "vocab_size": tok.vocab_size, "components": out}


def export_version(blends, ref: str, tokenizer: str | None = None, workers: int = 1, seed: int = 1234) -> Path:
    """Write (or find) the manifest of a blend version's token export; returns its path."""
    from dataengine.warehouse.tokenizers import load_tokenizer

    version = blends.version(ref)
    tok_spec = tokenizer or version["tokenizer"]
    tok = load_tokenizer(tok_spec, blends.wh)
    folder = Path(blends.wh.config.root) / "exports" / "blends" / f"{version['blend']}@{version['version']}" / tok.hash
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        return manifest_path
    comps = [
        {"name": c["component"], "sql": c["sql"], "rows": c["rows"], "content_hash": c["content_hash"],
         "shape": c["shape"], "reasoning": c["reasoning"]}
        for c in version["components"]
    ]
    exported = export_components(blends, comps, version["snapshot_id"], tok_spec, workers=workers)
    by_name = {c["component"]: c for c in exported["components"]}
    if version["shape"] != "text":
        manifest = _rows_manifest(version, tok, seed, by_name)
    else:
        manifest = {
            "blend": version["blend"],
            "version": version["version"],
            "blend_content_hash": version["content_hash"],
            "snapshot_id": version["snapshot_id"],
            "tokenizer": tok.name,
            "tokenizer_hash": tok.hash,
            "eos_id": tok.eos_id,
            "vocab_size": tok.vocab_size,
            "seed": seed,
            "phases": version["phases"],
            "components": [
                {
                    "name": c["component"],
                    "phase": c["phase"],
                    "weight": c["weight"],
                    "max_epochs": c["max_epochs"],
                    "rows": c["rows"],
                    **{k: by_name[c["component"]][k] for k in ("prefix", "documents", "tokens", "dtype", "bin_sha256", "idx_sha256")},
                }
                for c in version["components"]
            ],
        }
    manifest["manifest_hash"] = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, manifest_path)
    return manifest_path


def _rows_manifest(version: dict, tok, seed: int, by_name: dict) -> dict:
    """The manifest of a chat / preference / verifiable version: row files, not token files."""
    return {
        "blend": version["blend"],
        "version": version["version"],
        "shape": version["shape"],
        "blend_content_hash": version["content_hash"],
        "snapshot_id": version["snapshot_id"],
        "tokenizer": tok.name,
        "tokenizer_hash": tok.hash,
        "seed": seed,
        "phases": version["phases"],
        "components": [
            {
                "name": c["component"],
                "phase": c["phase"],
                "weight": c["weight"],
                "max_epochs": c["max_epochs"],
                "rows": c["rows"],
                "reasoning": c["reasoning"],
                **{k: by_name[c["component"]][k] for k in ("rows_path", "documents", "invalid", "tokens", "rows_sha256")},
            }
            for c in version["components"]
        ],
    }
