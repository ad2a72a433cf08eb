"""Model references shared by stages and the warehouse's model registry.

A stage names a model as ``name`` (latest version), ``name@N`` (a warehouse model) or a
file path; only the warehouse can resolve a reference, so stages receive it through
``bind_warehouse`` and never import the warehouse themselves.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from dataengine.core.errors import WarehouseError

MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MODEL_REFERENCE = re.compile(r"^([a-z][a-z0-9_]*)(?:@(\d+))?$")


@dataclass(frozen=True)
class ModelRecord:
    name: str
    version: int
    path: str  # absolute path of the model file (or folder)
    kind: str
    labels: tuple[str, ...]
    metrics: dict

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def validate_model_name(name: str) -> str:
    if not MODEL_NAME.match(name or ""):
        raise WarehouseError(f"bad model name {name!r}: use lower-case letters, digits and _ (it names columns)")
    return name


def is_model_reference(ref: str) -> bool:
    """``name`` / ``name@N`` (a warehouse model) as opposed to a file path."""
    return bool(MODEL_REFERENCE.match(ref)) and not os.path.exists(ref)
