"""Blends and blend versions, stored in the catalog.

A *blend* is a named list of components: a SQL query over warehouse tables that returns
the columns of one row shape (``id`` and ``text`` for pretraining text; ``messages`` for chat,
``prompt``/``chosen``/``rejected`` for preference pairs, ``prompt``/``answer``/``reward_kind``
for verifiable prompts: see dataengine/core/row_shapes.py), a weight, an optional epoch cap,
a phase, and for conversation shapes the reasoning toggle (a ``detailed thinking on/off``
system line). Phases (e.g. a broad phase 1 and a high-quality phase 2) each get a share of
the training tokens. Every component of a blend has the same shape.

A *blend version* freezes a blend: the lake snapshot its queries resolve against, and per
component the row count, token count, effective epochs for a token budget, and a hash
of the selected ids. Because every query runs against the lake pinned at that snapshot,
reading a version later returns exactly the same rows, whatever landed since.

Catalog tables (readable with `dataengine sql`): ``dataengine.blends``,
``dataengine.blend_components``, ``dataengine.blend_versions``,
``dataengine.blend_version_components``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Iterator, Literal

import pyarrow as pa
import xxhash
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import duckdb

from dataengine.core.errors import WarehouseError, one_line
from dataengine.core.row_shapes import (SHAPES, RowShapeError, canonical_json, infer_shape, missing_columns,
                                        normalize_row, selected_columns)
from dataengine.core.sql_guard import UnsafeSQL, check_sql
from dataengine.warehouse.components import BlendError, component_columns, iter_component
from dataengine.warehouse.lake import Warehouse

ShapeName = Literal["text", "chat", "preference", "verifiable"]
#: Columns that only conversation shapes have: without one of them a component is read as text.
_SHAPE_MARKERS = {"messages", "prompt", "chosen", "rejected", "answer", "reward_kind"}


#: ``dataengine.blend_diversity``: scores measured on a frozen version (``dataengine diversity
#: NAME@V --record``); ``method`` says how the gradients were made (proxy, parameters, d, seed).
DIVERSITY_SCHEMA = pa.schema(
    [("blend", pa.string()), ("version", pa.int64()), ("computed_at", pa.timestamp("us", tz="UTC")),
     ("group_name", pa.string()), ("n", pa.int64()), ("g_vendi", pa.float64()), ("vendi_embedding", pa.float64()),
     ("q", pa.float64()), ("method", pa.string())]
)


class Component(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    sql: str
    weight: float = Field(gt=0)
    max_epochs: float | None = Field(None, gt=0)
    phase: str = "main"
    #: the row shape; None: inferred from the SQL's columns when the blend is created
    shape: ShapeName | None = None
    #: Llama-Nemotron's reasoning toggle: a "detailed thinking on/off" system line on every row
    reasoning: Literal["on", "off"] | None = None

    @field_validator("reasoning", mode="before")
    @classmethod
    def _yaml_booleans(cls, value):
        # YAML reads a bare `on`/`off` as a boolean
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @property
    def row_shape(self) -> str:
        return self.shape or "text"


class Phase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    token_share: float = Field(gt=0, le=1)


class BlendDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    components: list[Component]
    phases: list[Phase] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self):
        if not self.components:
            raise ValueError("a blend needs at least one component")
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise ValueError("component names must be unique")
        if not self.phases:
            self.phases = [Phase(name="main", token_share=1.0)]
        phase_names = [p.name for p in self.phases]
        for c in self.components:
            if c.phase not in phase_names:
                raise ValueError(f"component {c.name!r} names unknown phase {c.phase!r}")
        total = sum(p.token_share for p in self.phases)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"phase token shares must sum to 1 (got {total:g})")
        return self


def parse_component_spec(spec: str) -> Component:
    """``name=SQL:weight[:max_epochs]`` (the SQL may itself contain ':')."""
    name, eq, rest = spec.partition("=")
    if not eq:
        raise BlendError(f"component {spec!r}: expected name=SQL:weight")
    numbers = []
    while len(numbers) < 2:
        head, sep, tail = rest.rpartition(":")
        if not sep or not re.fullmatch(r"\s*[0-9]*\.?[0-9]+(e[-+]?[0-9]+)?\s*", tail, re.I):
            break
        numbers.insert(0, float(tail))
        rest = head
    if not numbers:
        raise BlendError(f"component {name!r}: missing weight (name=SQL:weight)")
    weight = numbers[0]
    max_epochs = numbers[1] if len(numbers) > 1 else None
    return Component(name=name.strip(), sql=rest.strip(), weight=weight, max_epochs=max_epochs)


def definition_from_yaml(path: str) -> BlendDefinition:
    try:
        raw = yaml.safe_load(open(path).read())
    except (OSError, yaml.YAMLError) as exc:
        raise BlendError(f"cannot read blend file {path}: {str(exc).splitlines()[0]}") from None
    return validate_definition(raw)


def validate_definition(raw) -> BlendDefinition:
    try:
        return BlendDefinition(**raw)
    except (ValidationError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            msg = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        else:
            msg = str(exc)
        raise BlendError(f"invalid blend: {msg}") from None


def check_component(con, comp: Component) -> str:
    """The component's row shape (given or inferred from its columns); rejects SQL that fails,
    is not a plain read (see :mod:`dataengine.core.sql_guard`) or lacks the shape's columns."""
    try:
        check_sql(comp.sql, write=False)
    except UnsafeSQL as exc:
        raise BlendError(f"component {comp.name!r}: {exc}") from None
    try:
        cols = component_columns(con, comp.sql)
    except BlendError as exc:
        raise BlendError(f"component {comp.name!r}: {exc}") from None
    if comp.shape is None:
        if "text" in cols or not set(cols) & _SHAPE_MARKERS:  # a text component (and its classic message)
            shape = "text"
        else:
            try:
                shape = infer_shape(cols)
            except RowShapeError as exc:
                raise BlendError(f"component {comp.name!r}: {exc}") from None
    else:
        shape = comp.shape
    missing = missing_columns(shape, cols)
    if missing:
        raise BlendError(
            f"component {comp.name!r} selects no {' and no '.join(repr(m) for m in missing)} column "
            f"(a {shape} component needs {', '.join(SHAPES[shape].required)}"
            f"{' and ' + ' or '.join(SHAPES[shape].one_of) if SHAPES[shape].one_of else ''}; "
            f"it returns: {', '.join(cols)})"
        )
    if comp.reasoning and shape == "text":
        raise BlendError(f"component {comp.name!r}: the reasoning toggle applies to chat, preference and "
                         "verifiable components, not text")
    return shape


class Blends:
    """Create, freeze, list, show and diff blends in a warehouse."""

    def __init__(self, warehouse: Warehouse):
        self.wh = warehouse

    # -- definitions ------------------------------------------------------------------
    def create(self, definition: BlendDefinition | dict, replace: bool = False) -> int:
        """Store a blend definition (a new revision when ``replace``). Returns the revision."""
        if isinstance(definition, dict):
            definition = validate_definition(definition)
        with self.wh.connect(read_only=True) as con:
            shapes = {comp.name: check_component(con, comp) for comp in definition.components}
        if len(set(shapes.values())) > 1:
            raise BlendError("every component of a blend must have the same row shape; got "
                             + ", ".join(f"{name}: {shape}" for name, shape in shapes.items()))
        definition = definition.model_copy(update={
            "components": [c.model_copy(update={"shape": shapes[c.name]}) for c in definition.components]})
        now = dt.datetime.now(dt.timezone.utc)
        blend_schema = pa.schema(
            [("name", pa.string()), ("revision", pa.int64()), ("description", pa.string()),
             ("created_at", pa.timestamp("us", tz="UTC")), ("definition", pa.string())]
        )
        comp_schema = pa.schema(
            [("blend", pa.string()), ("revision", pa.int64()), ("phase", pa.string()),
             ("component", pa.string()), ("sql", pa.string()), ("weight", pa.float64()),
             ("max_epochs", pa.float64()), ("shape", pa.string()), ("reasoning", pa.string())]
        )

        def work(con) -> int:
            # The revision is read inside the transaction: two concurrent creates conflict and the
            # loser re-reads it, so revisions never repeat and a blend is never created twice.
            current = _max_in(con, "blends", "revision", "name", definition.name)
            if current and not replace:
                raise BlendError(f"blend {definition.name!r} exists (revision {current}); use --replace to revise it")
            revision = (current or 0) + 1
            blend_row = {"name": definition.name, "revision": revision, "description": definition.description,
                         "created_at": now, "definition": definition.model_dump_json()}
            comp_rows = [
                {"blend": definition.name, "revision": revision, "phase": c.phase, "component": c.name,
                 "sql": c.sql, "weight": c.weight, "max_epochs": c.max_epochs, "shape": c.row_shape,
                 "reasoning": c.reasoning}
                for c in definition.components
            ]
            _insert_rows(con, "blends", [blend_row], blend_schema)
            _insert_rows(con, "blend_components", comp_rows, comp_schema, self.wh)
            return revision

        revision, _ = self.wh.transaction(work, f"creating blend {definition.name!r}")
        return revision

    def definition(self, name: str) -> tuple[BlendDefinition, int]:
        rows = self._rows(
            "SELECT definition, revision FROM dataengine.blends WHERE name = ? ORDER BY revision DESC LIMIT 1", [name]
        )
        if not rows:
            raise BlendError(f"no blend named {name!r}; `dataengine blend list` shows them")
        return BlendDefinition.model_validate_json(rows[0]["definition"]), rows[0]["revision"]

    def latest_revision(self, name: str) -> int | None:
        rows = self._rows("SELECT max(revision) AS r FROM dataengine.blends WHERE name = ?", [name])
        return rows[0]["r"] if rows else None

    def _rows(self, query: str, params=None) -> list[dict]:
        table = query.split("FROM ", 1)[1].split()[0]
        if not self.wh.table_exists(table):
            return []
        return self.wh.sql(query, params).to_pylist()

    # -- reading components ------------------------------------------------------------
    def iter_component(
        self, sql: str, snapshot: int, batch_size: int = 10_000, part: int = 0, parts: int = 1,
        columns=("id", "text"),
    ) -> Iterator[pa.Table]:
        """Rows (``columns``) of a component at ``snapshot``, ordered by id (one partition of them)."""
        return iter_component(self.wh, sql, snapshot, batch_size, part, parts, columns)

    def shape_columns(self, sql: str, shape: str, snapshot: int | None = None) -> list[str]:
        """The columns of ``shape`` that a component's SQL returns (at ``snapshot``)."""
        with self.wh.connect(read_only=True, snapshot=snapshot) as con:
            return selected_columns(shape, component_columns(con, sql))

    def component_content_hash(self, sql: str, snapshot: int, shape: str = "text") -> tuple[int, str]:
        """(rows, xxh3-128 over the rows sorted by id): exactly which rows, with which content.

        Text rows hash their (id, text) pairs; other shapes hash (id, canonical JSON of the
        normalized row), so the same content hashes the same however it is encoded. A row that
        does not fit its shape hashes its raw values (it still changes the hash)."""
        h = xxhash.xxh3_128()
        rows = 0
        if shape == "text":
            for batch in self.iter_component(sql, snapshot, batch_size=20_000):
                for doc_id, text in zip(batch.column("id").to_pylist(), batch.column("text").to_pylist()):
                    h.update(f"{doc_id}\x00{text}\x01".encode("utf-8", "surrogatepass"))
                rows += batch.num_rows
            return rows, h.hexdigest()
        columns = self.shape_columns(sql, shape, snapshot)
        for batch in self.iter_component(sql, snapshot, batch_size=5_000, columns=columns):
            for row in batch.to_pylist():
                try:
                    content = canonical_json(normalize_row(shape, row))
                except RowShapeError:
                    content = "invalid:" + json.dumps(row, sort_keys=True, default=str)
                h.update(f"{row['id']}\x00{content}\x01".encode("utf-8", "surrogatepass"))
            rows += batch.num_rows
        return rows, h.hexdigest()

    # -- versions ----------------------------------------------------------------------
    def freeze(self, name: str, tokenizer: str = "gpt2", target_tokens: int | None = None,
               workers: int = 1, progress: bool = False) -> dict:
        """Resolve every component at the current snapshot and record an immutable version."""
        from dataengine.warehouse.export import export_components

        definition, revision = self.definition(name)
        snapshot = self.wh.current_snapshot()
        comps = []
        for c in definition.components:
            rows, content_hash = self.component_content_hash(c.sql, snapshot, c.row_shape)
            comps.append({**c.model_dump(), "shape": c.row_shape, "rows": rows, "content_hash": content_hash})
        manifest = export_components(self, comps, snapshot, tokenizer, workers=workers, progress=progress)
        exported = {c["component"]: c for c in manifest["components"]}
        warnings = []
        shares = {p.name: p.token_share for p in definition.phases}
        for c in comps:
            c["tokens"] = exported[c["name"]]["tokens"]
            c["invalid_rows"] = exported[c["name"]].get("invalid", 0)
            if c["invalid_rows"]:
                samples = "; ".join(exported[c["name"]].get("invalid_samples", [])[:3])
                warnings.append(f"component {c['name']!r}: {c['invalid_rows']:,} row(s) do not fit the "
                                f"{c['shape']} shape and are left out of training ({samples})")
            c["effective_epochs"] = None
            if target_tokens:
                phase_weight = sum(x["weight"] for x in comps if x["phase"] == c["phase"])
                wanted = target_tokens * shares[c["phase"]] * c["weight"] / phase_weight
                c["effective_epochs"] = wanted / c["tokens"] if c["tokens"] else float("inf")
                cap = c["max_epochs"]
                if cap is not None and c["effective_epochs"] > cap:
                    warnings.append(
                        f"component {c['name']!r} would be seen {c['effective_epochs']:.2f} times "
                        f"for {target_tokens:,} tokens (cap {cap:g})"
                    )
            if c["rows"] == 0:
                warnings.append(f"component {c['name']!r} selects no rows")
        content_hash = hashlib.sha256(
            json.dumps(
                # shape and reasoning join the hash only when set, so text blends keep their hashes
                [[c["name"], c["phase"], c["weight"], c["max_epochs"], c["rows"], c["content_hash"]]
                 + ([c["shape"], c["reasoning"]] if c["shape"] != "text" or c["reasoning"] else []) for c in comps]
                + [[p.name, p.token_share] for p in definition.phases],
                sort_keys=True,
            ).encode()
        ).hexdigest()[:32]
        now = dt.datetime.now(dt.timezone.utc)
        record = {
            "blend": name,
            "version": None,  # assigned inside the catalog transaction (_write_version)
            "revision": revision,
            "created_at": now,
            "snapshot_id": snapshot,
            "tokenizer": manifest["tokenizer"],
            "tokenizer_hash": manifest["tokenizer_hash"],
            "target_tokens": target_tokens,
            "rows": sum(c["rows"] for c in comps),
            "tokens": sum(c["tokens"] for c in comps),
            "content_hash": content_hash,
            "warnings": json.dumps(warnings),
            "phases": json.dumps([p.model_dump() for p in definition.phases]),
            "shape": comps[0]["shape"],
        }
        comp_rows = [
            {
                "blend": name, "version": None, "phase": c["phase"], "component": c["name"], "sql": c["sql"],
                "weight": c["weight"], "max_epochs": c["max_epochs"], "rows": c["rows"], "tokens": c["tokens"],
                "effective_epochs": c["effective_epochs"], "content_hash": c["content_hash"],
                "shape": c["shape"], "reasoning": c["reasoning"], "invalid_rows": c["invalid_rows"],
            }
            for c in comps
        ]
        version = self._write_version(record, comp_rows)
        from dataengine.warehouse.export import export_version

        manifest = export_version(self, f"{name}@{version}", tokenizer, workers=workers)
        return {**record, "components": comp_rows, "warnings": warnings, "manifest": str(manifest)}

    def _write_version(self, record: dict, comp_rows: list[dict]) -> int:
        """Both catalog rows in ONE transaction: a version is complete or absent. The version
        number is taken inside it, so concurrent freezes of one blend get distinct versions."""
        version_schema = pa.schema(
            [("blend", pa.string()), ("version", pa.int64()), ("revision", pa.int64()),
             ("created_at", pa.timestamp("us", tz="UTC")), ("snapshot_id", pa.int64()), ("tokenizer", pa.string()),
             ("tokenizer_hash", pa.string()), ("target_tokens", pa.int64()), ("rows", pa.int64()),
             ("tokens", pa.int64()), ("content_hash", pa.string()), ("warnings", pa.string()), ("phases", pa.string()),
             ("shape", pa.string())]
        )
        comp_schema = pa.schema(
            [("blend", pa.string()), ("version", pa.int64()), ("phase", pa.string()), ("component", pa.string()),
             ("sql", pa.string()), ("weight", pa.float64()), ("max_epochs", pa.float64()), ("rows", pa.int64()),
             ("tokens", pa.int64()), ("effective_epochs", pa.float64()), ("content_hash", pa.string()),
             ("shape", pa.string()), ("reasoning", pa.string()), ("invalid_rows", pa.int64())]
        )
        def work(con) -> int:
            version = (_max_in(con, "blend_versions", "version", "blend", record["blend"]) or 0) + 1
            record["version"] = version
            for row in comp_rows:
                row["version"] = version
            _insert_rows(con, "blend_versions", [record], version_schema, self.wh)
            _insert_rows(con, "blend_version_components", comp_rows, comp_schema, self.wh)
            return version

        try:
            return self.wh.transaction(work, "recording the blend version")[0]
        except WarehouseError as exc:
            raise BlendError(f"could not record the blend version: {exc}") from None

    def latest_version(self, name: str) -> int | None:
        rows = self._rows("SELECT max(version) AS v FROM dataengine.blend_versions WHERE blend = ?", [name])
        return rows[0]["v"] if rows else None

    def version(self, ref: str) -> dict:
        """``NAME@V`` (or ``NAME`` for the latest version) -> the version record with components."""
        name, _, v = ref.partition("@")
        if v:
            try:
                number = int(v.lstrip("v"))
            except ValueError:
                raise BlendError(f"bad blend version {ref!r}: use NAME@N") from None
        else:
            number = self.latest_version(name)
            if number is None:
                raise BlendError(f"blend {name!r} has no frozen version; run `dataengine blend freeze {name}`")
        rows = self._rows("SELECT * FROM dataengine.blend_versions WHERE blend = ? AND version = ?", [name, number])
        if not rows:
            raise BlendError(f"no blend version {name}@{number}")
        record = rows[0]
        record["components"] = self._rows(
            "SELECT * FROM dataengine.blend_version_components WHERE blend = ? AND version = ? ORDER BY component",
            [name, number],
        )
        record["warnings"] = json.loads(record["warnings"] or "[]")
        record["phases"] = json.loads(record["phases"] or "[]")
        record["diversity"] = self.diversity(name, number)
        record["shape"] = record.get("shape") or "text"  # versions frozen before row shapes are text
        for c in record["components"]:
            c["shape"] = c.get("shape") or "text"
            c.setdefault("reasoning", None)
            c["invalid_rows"] = c.get("invalid_rows") or 0
        return record

    # -- diversity scores of a version (a side table: the version record stays immutable) -------
    def record_diversity(self, name: str, version: int, rows: list[dict]) -> None:
        """Store G-Vendi / embedding Vendi measurements of ``name@version`` (one row per group)."""
        now = dt.datetime.now(dt.timezone.utc)
        self.wh.write_table(
            "dataengine.blend_diversity",
            pa.Table.from_pylist([{"blend": name, "version": version, "computed_at": now, **r} for r in rows],
                                 schema=DIVERSITY_SCHEMA),
        )

    def diversity(self, name: str, version: int) -> list[dict]:
        """The latest measurement per (group, method, q) of a version."""
        if not self.wh.table_exists("dataengine.blend_diversity"):
            return []
        return self.wh.sql(
            "SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY group_name, method, q "
            "ORDER BY computed_at DESC) AS rn FROM dataengine.blend_diversity WHERE blend = ? AND version = ?) "
            "WHERE rn = 1 ORDER BY method, q, group_name",
            [name, version],
        ).to_pylist()

    def list(self) -> list[dict]:
        defs = self._rows(
            "SELECT name, max(revision) AS revision, arg_max(description, revision) AS description "
            "FROM dataengine.blends GROUP BY name ORDER BY name"
        )
        versions = {
            r["blend"]: r
            for r in self._rows(
                "SELECT blend, max(version) AS versions, arg_max(content_hash, version) AS latest_hash, "
                "arg_max(tokens, version) AS latest_tokens FROM dataengine.blend_versions GROUP BY blend"
            )
        }
        out = []
        for d in defs:
            v = versions.get(d["name"], {})
            out.append({**d, "versions": v.get("versions", 0), "latest_tokens": v.get("latest_tokens"),
                        "latest_hash": v.get("latest_hash")})
        return out

    def diff(self, ref_a: str, ref_b: str) -> dict:
        """Components, counts and ids added/removed between two versions."""
        a, b = self.version(ref_a), self.version(ref_b)
        ca = {c["component"]: c for c in a["components"]}
        cb = {c["component"]: c for c in b["components"]}
        rows = []
        for name in sorted(set(ca) | set(cb)):
            x, y = ca.get(name), cb.get(name)
            added = removed = None
            if x and y and x["content_hash"] != y["content_hash"]:
                added, removed = self._id_changes(x["sql"], a["snapshot_id"], y["sql"], b["snapshot_id"])
            elif x and y:
                added = removed = 0
            rows.append(
                {
                    "component": name,
                    "status": "added" if not x else "removed" if not y else ("changed" if x["content_hash"] != y["content_hash"] or x["weight"] != y["weight"] else "same"),
                    "weight": f"{x['weight'] if x else '-'} -> {y['weight'] if y else '-'}",
                    "rows": f"{x['rows'] if x else 0:,} -> {y['rows'] if y else 0:,}",
                    "tokens": f"{x['tokens'] if x else 0:,} -> {y['tokens'] if y else 0:,}",
                    "ids_added": added if added is not None else (y["rows"] if y else 0),
                    "ids_removed": removed if removed is not None else (x["rows"] if x else 0),
                }
            )
        return {"a": ref_a, "b": ref_b, "snapshots": (a["snapshot_id"], b["snapshot_id"]), "components": rows}

    def _id_changes(self, sql_a: str, snap_a: int, sql_b: str, snap_b: int) -> tuple[int, int]:
        """Count ids in b not in a and in a not in b, in DuckDB (no id lists in Python)."""
        with self.wh.connect(snapshot=snap_a) as con:
            ids_a = con.execute(f"SELECT DISTINCT id FROM ({sql_a}) AS c").to_arrow_table()
        with self.wh.connect(snapshot=snap_b) as con:
            ids_b = con.execute(f"SELECT DISTINCT id FROM ({sql_b}) AS c").to_arrow_table()
        local = duckdb.connect()
        local.register("a", ids_a)
        local.register("b", ids_b)
        added = local.execute("SELECT count(*) FROM b ANTI JOIN a USING (id)").fetchone()[0]
        removed = local.execute("SELECT count(*) FROM a ANTI JOIN b USING (id)").fetchone()[0]
        return added, removed


def _max_in(con, table: str, column: str, key: str, value: str) -> int | None:
    """max(column) of dataengine.<table> rows with key = value, inside ``con``'s transaction."""
    if not Warehouse.has_table(con, f"dataengine.{table}"):
        return None
    literal = "'" + value.replace("'", "''") + "'"
    return con.execute(f"SELECT max({column}) FROM lake.dataengine.{table} WHERE {key} = {literal}").fetchone()[0]


def _insert_rows(con, table: str, rows: list[dict], schema: pa.Schema, warehouse: Warehouse | None = None) -> None:
    """Insert rows into dataengine.<table>, creating it from ``schema`` if needed; with
    ``warehouse``, columns newer than the table (catalogs made before row shapes) are added."""
    data = pa.Table.from_pylist(rows, schema=schema)
    con.register("_rows", data)
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS lake.dataengine.{table} AS SELECT * FROM _rows LIMIT 0")
        if warehouse is not None:
            warehouse.add_missing_columns(con, f"dataengine.{table}", schema)
        con.execute(f"INSERT INTO lake.dataengine.{table} BY NAME SELECT * FROM _rows")
    finally:
        con.unregister("_rows")
