"""The ``classifiers`` stage: score documents with one or more quality classifiers.

Each classifier writes ``<name>_score`` (float32): the probability of its positive label,
or a regression model's output. A classifier's ``model`` is

* ``NAME`` or ``NAME@VERSION``: a model trained with ``dataengine classifier train`` and
  stored in the warehouse (``dataengine.models``); its positive label is recorded there;
* a fastText ``.bin``/``.ftz`` path (e.g. DCLM's ``openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train.bin``,
  ``label: hq``);
* a Hugging Face sequence-classification folder (e.g. a FineWeb-Edu classifier saved
  locally; a one-output regression head is scored raw).

Paths are checked when the stage is built, warehouse names when the run is planned
(``bind_warehouse``): a missing file or a label the model does not have stops the run
before any shard is processed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from dataengine.core.errors import StageError
from dataengine.core.schema import annotation_column
from dataengine.core.stage import Stage, StageParams
from dataengine.core.models import is_model_reference
from dataengine.core.classifier_models import FastTextScorer, HFScorer, check_label, inspect_model


class ClassifierSpec(StageParams):
    name: str = Field(..., description="column base name: writes <name>_score")
    model: str = Field(..., description="NAME, NAME@VERSION (warehouse model) or a file/folder path")
    kind: Literal["auto", "fasttext", "hf"] = "auto"
    label: str | None = Field(None, description="positive label (default: the one recorded with a warehouse model)")

    @field_validator("name")
    @classmethod
    def _column_safe(cls, value):
        annotation_column(value, "score")
        return value


@dataclass(frozen=True)
class ResolvedClassifier:
    name: str
    path: str
    kind: str
    label: str | None
    identity: str  # what the output depends on: NAME@VERSION, or path + size + mtime


def score_column(name: str) -> str:
    return annotation_column(name, "score")


def _file_identity(path: str) -> str:
    st = os.stat(path)
    return f"{os.path.abspath(path)}:{st.st_size}:{int(st.st_mtime)}"


class Classifiers(Stage):
    """Score texts with fastText / Hugging Face classifiers (one ``<name>_score`` column each)."""

    name = "classifiers"
    version = "1"
    description = "quality classifier scores: fastText (ours or any .bin) and HF models from a local path"
    inputs = ("text",)

    class Params(StageParams):
        classifiers: list[ClassifierSpec] = Field(..., min_length=1)
        text_column: str = "text"
        batch_size: int = Field(32, ge=1, description="HF models: texts per forward pass")
        max_length: int = Field(512, ge=8, description="HF models: tokens per text")
        device: str = Field("auto", description="HF models: auto (GPU when present), cpu, cuda")

        @field_validator("classifiers")
        @classmethod
        def _unique(cls, value):
            names = [c.name for c in value]
            if len(set(names)) != len(names):
                raise ValueError(f"classifier names must be unique: {names}")
            return value

    def __init__(self, params=None):
        super().__init__(params)
        self._resolved: dict[str, ResolvedClassifier] = {}
        for spec in self.params.classifiers:
            if not _is_reference(spec.model):
                self._resolved[spec.name] = self._resolve_path(spec, spec.model, spec.label, _file_identity_safe(spec.model))

    # -- resolution (before any work) -------------------------------------------------
    def _resolve_path(self, spec: ClassifierSpec, path: str, label: str | None, identity: str) -> ResolvedClassifier:
        info = inspect_model(path, spec.kind)
        what = f"classifier {spec.name!r} ({spec.model})"
        return ResolvedClassifier(spec.name, path, info.kind, check_label(info, label, what), identity)

    def _unresolved(self) -> list[ClassifierSpec]:
        return [s for s in self.params.classifiers if s.name not in self._resolved]

    def bind_warehouse(self, warehouse) -> None:
        """Resolve ``NAME[@VERSION]`` models against the run's warehouse (called when planning)."""
        for spec in self._unresolved():
            try:
                record = warehouse.resolve_model(spec.model)
            except Exception as exc:  # noqa: BLE001 - one clear line naming the classifier
                raise StageError(f"classifier {spec.name!r}: {exc}") from None
            label = spec.label or record.metrics.get("positive_label") or (record.labels[0] if record.labels else None)
            kind_spec = spec if spec.kind != "auto" else spec.model_copy(update={"kind": record.kind})
            self._resolved[spec.name] = self._resolve_path(kind_spec, record.path, label, record.ref)

    def _require_resolved(self) -> None:
        missing = self._unresolved()
        if not missing:
            return
        raise StageError(
            f"classifier model(s) {', '.join(s.model for s in missing)} name warehouse models, but the stage "
            "has no warehouse: run it through a pipeline, or call bind_warehouse(dataengine.open_warehouse(PATH))"
        )

    # -- stage interface -------------------------------------------------------------
    def output_columns(self):
        return {score_column(s.name): pa.float32() for s in self.params.classifiers}

    def required_columns(self):
        return (self.params.text_column,)

    def fingerprint(self):
        fp = super().fingerprint()
        fp["models"] = {name: r.identity for name, r in sorted(self._resolved.items())}
        return fp

    def __getstate__(self):
        return {"params": self.params, "resolved": self._resolved}

    def __setstate__(self, state):
        self.params = state["params"]
        self._resolved = dict(state["resolved"])
        self._ready = False

    def setup(self) -> None:
        self._require_resolved()
        self._scorers = {}
        for spec in self.params.classifiers:
            r = self._resolved[spec.name]
            if r.kind == "fasttext":
                self._scorers[spec.name] = (r.kind, FastTextScorer(r.path, r.label))
            else:
                scorer = HFScorer(r.path, r.label, self.params.batch_size, self.params.max_length, self.params.device)
                self._scorers[spec.name] = (r.kind, scorer)

    def process(self, batch: pa.Table) -> pa.Table:
        text = batch.column(self.params.text_column).combine_chunks()
        valid = np.asarray(text.is_valid(), dtype=bool)
        filled = pc.fill_null(text, "")
        one_line = None
        for spec in self.params.classifiers:
            kind, scorer = self._scorers[spec.name]
            if kind == "fasttext":
                if one_line is None:  # fastText predicts one line at a time
                    one_line = pc.replace_substring(filled, "\n", " ").to_pylist()
                scores = scorer(one_line)
            else:
                scores = scorer(filled.to_pylist())
            column = pa.array(scores, type=pa.float32(), mask=~valid)
            name = score_column(spec.name)
            if name in batch.column_names:
                batch = batch.set_column(batch.column_names.index(name), name, column)
            else:
                batch = batch.append_column(name, column)
        return batch


def _is_reference(model: str) -> bool:
    return is_model_reference(model)


def _file_identity_safe(path: str) -> str:
    if not os.path.exists(path):
        raise StageError(f"classifier model {path} does not exist")
    if os.path.isdir(path):
        cfg = os.path.join(path, "config.json")
        return _file_identity(cfg) if os.path.exists(cfg) else os.path.abspath(path)
    return _file_identity(path)
