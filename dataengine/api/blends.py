"""Blends: SQL components with weights, frozen as immutable versions; diffs, exports, tokenizers.

    de.create_blend(wh, "web", {"hq": ("SELECT id, text FROM cc WHERE quality_level = 'high'", 2.0),
                                "rest": ("SELECT id, text FROM cc", 1.0)})
    v = de.freeze_blend(wh, "web", target_tokens=10**9)       # web@1, pinned to a snapshot
    de.export_blend(wh, "web@1")                              # Megatron .bin/.idx + manifest
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from dataengine.core.errors import DataEngineError
from dataengine.core.row_shapes import RowShapeError, normalize_row, row_texts
from dataengine.core.tokenizer import LoadedTokenizer
from dataengine.warehouse.blends import (
    BlendDefinition,
    Blends,
    definition_from_yaml,
    parse_component_spec,
    validate_definition,
)
from dataengine.warehouse.export import export_version
from dataengine.warehouse.tokenizers import register_tokenizer, train_tokenizer as _train_bpe
from dataengine.api.warehouse import as_warehouse


def blends(wh) -> Blends:
    """The blend catalog of a warehouse (lower-level access: iter_component, content hashes)."""
    return Blends(as_warehouse(wh))


def create_blend(wh, name_or_definition: str | dict | BlendDefinition | Path, components=None,
                 description: str = "", replace: bool = False, reasoning: dict[str, str] | None = None) -> int:
    """Create a blend (or a new revision with ``replace=True``); the SQL is checked now.

    Either a full definition (dict / BlendDefinition / YAML path), or a name plus
    ``components``: ``{"name": (sql, weight[, max_epochs])}`` or ``{"name": {"sql": ..., "weight": ...,
    "reasoning": "on"}}``, a list of component dicts, or ``name=SQL:weight[:max_epochs]`` strings.
    Each component's row shape (text, chat, preference, verifiable) is inferred from its
    columns unless given. ``reasoning``: component name -> ``on``/``off``, Llama-Nemotron's
    ``detailed thinking`` system line for that component's rows. Returns the revision number.
    """
    if isinstance(name_or_definition, BlendDefinition):
        definition = name_or_definition
    elif isinstance(name_or_definition, dict):
        definition = validate_definition(name_or_definition)
    elif isinstance(name_or_definition, Path) or str(name_or_definition).endswith((".yaml", ".yml")):
        definition = definition_from_yaml(str(name_or_definition))
    else:
        if not components:
            raise DataEngineError("give a blend name and at least one component, or a definition")
        definition = validate_definition({"name": name_or_definition, "description": description,
                                          "components": _components(components)})
    if reasoning:
        unknown = set(reasoning) - {c.name for c in definition.components}
        if unknown:
            raise DataEngineError(f"reasoning names no component of the blend: {', '.join(sorted(unknown))}")
        definition = definition.model_copy(update={"components": [
            c.model_copy(update={"reasoning": reasoning.get(c.name, c.reasoning)}) for c in definition.components]})
        definition = validate_definition(definition.model_dump())
    return blends(wh).create(definition, replace=replace)


def read_blend_file(path: str | Path) -> BlendDefinition:
    """A blend definition from YAML (name, description, components, phases), validated."""
    return definition_from_yaml(str(path))


def _components(components) -> list[dict]:
    if isinstance(components, dict):
        out = []
        for name, spec in components.items():
            if isinstance(spec, dict):
                out.append({"name": name, **spec})
                continue
            sql, weight, *rest = spec if isinstance(spec, (tuple, list)) else (spec, 1.0)
            out.append({"name": name, "sql": sql, "weight": weight, "max_epochs": rest[0] if rest else None})
        return out
    return [parse_component_spec(c).model_dump() if isinstance(c, str) else dict(c) for c in components]


def freeze_blend(wh, name: str, tokenizer: str = "gpt2", target_tokens: int | None = None,
                 workers: int = 1, g_vendi: bool = False, proxy: str | None = None, progress: bool = True) -> dict:
    """Resolve a blend at the current snapshot into the next immutable version (with its token export).

    ``g_vendi=True`` also measures G-Vendi per component with ``proxy`` (default smollm2) and
    records it with the version (:func:`dataengine.api.diversity` with ``record=True``)."""
    result = blends(wh).freeze(name, tokenizer=tokenizer, target_tokens=target_tokens, workers=workers)
    if g_vendi:
        from dataengine.api.diversity import diversity

        ref = f"{name}@{result['version']}"
        diversity(wh, f"blend:{ref}", by="component", proxy=proxy, embedding=False, record=True, progress=progress)
        result["diversity"] = blends(wh).version(ref)["diversity"]
    return result


def blend_version(wh, ref: str) -> dict:
    """``NAME@V`` (or NAME: the latest version): snapshot, components, counts, content hash."""
    return blends(wh).version(ref)


def list_blends(wh) -> list[dict]:
    """All blends with their latest revision and versions."""
    return blends(wh).list()


def diff_blends(wh, a: str, b: str) -> dict:
    """Two versions compared: components, counts, ids added and removed."""
    return blends(wh).diff(a, b)


def export_blend(wh, ref: str, tokenizer: str | None = None, workers: int = 1) -> dict:
    """Token shards (Megatron .bin/.idx per component) and manifest, cached; returns the manifest."""
    path = export_version(blends(wh), ref, tokenizer, workers=workers)
    return {**json.loads(Path(path).read_text()), "manifest_path": str(path)}


def train_tokenizer(wh, blend: str, vocab_size: int, name: str | None = None) -> LoadedTokenizer:
    """Train a byte-level BPE on a blend version's text and store it in the warehouse."""
    b = blends(wh)
    v = b.version(blend)

    def texts():
        for c in v["components"]:
            if c["shape"] == "text":
                for batch in b.iter_component(c["sql"], v["snapshot_id"]):
                    yield from (t for t in batch.column("text").to_pylist() if t)
                continue
            columns = b.shape_columns(c["sql"], c["shape"], v["snapshot_id"])
            for batch in b.iter_component(c["sql"], v["snapshot_id"], columns=columns):
                for row in batch.to_pylist():
                    try:
                        yield "\n".join(row_texts(c["shape"], normalize_row(c["shape"], row)))
                    except RowShapeError:
                        continue

    tok = _train_bpe(texts(), vocab_size)
    return register_tokenizer(b.wh, name or f"{v['blend']}-bpe{vocab_size}", tok, source=f"{v['blend']}@{v['version']}")


def list_tokenizers(wh) -> pa.Table:
    """Tokenizers stored in the warehouse (gpt2 is always available besides these)."""
    wh = as_warehouse(wh)
    if not wh.table_exists("dataengine.tokenizers"):
        return pa.table({"name": pa.array([], pa.string())})
    return wh.sql("SELECT name, hash, vocab_size, source, created_at FROM dataengine.tokenizers ORDER BY created_at")


def list_blend_versions(wh) -> pa.Table:
    """Every frozen blend version: rows, tokens, the lake snapshot it reads, its content hash."""
    wh = as_warehouse(wh)
    if not wh.table_exists("dataengine.blend_versions"):
        return pa.table({"blend": pa.array([], pa.string()), "version": pa.array([], pa.int64())})
    return wh.sql("SELECT blend, version, snapshot_id, rows, tokens, tokenizer, content_hash, created_at "
                  "FROM dataengine.blend_versions ORDER BY blend, version")
