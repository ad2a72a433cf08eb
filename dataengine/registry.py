"""Registries of stages and source readers, filled by the modules that define them.

Stage and reader modules live in several top-level packages (filters/, connectors/, ...);
the core imports them lazily by name here so `dataengine stages` lists everything while
the core itself depends on none of them.
"""

from __future__ import annotations

import importlib
from typing import Callable

from dataengine.errors import PipelineConfigError

#: Modules that register stages or readers when imported. Heavy imports inside them
#: must happen in ``setup()`` / inside functions, never at module level.
PLUGIN_MODULES = [
    "dataengine.builtin_stages",
    "dataengine.exact_dedup",
    "dataengine.filters.fuzzy_dedup",
    "dataengine.filters.url_dedup",
    "dataengine.connectors.files",
    "dataengine.connectors.warc",
    "dataengine.connectors.extract",
    "dataengine.connectors.math.stage",
    "dataengine.filters.math_cleanup",
    "dataengine.filters.langid",
    "dataengine.filters.heuristics",
    "dataengine.filters.classifiers",
    "dataengine.filters.quality",
    "dataengine.generators.recipes.nemotron_cc",
    "dataengine.generators.recipes.mind",
    "dataengine.generators.recipes.beyondweb",
]

#: Where the stages and readers a plain ingest needs live, so resolving one of them
#: imports its module only instead of every plugin (~0.1 s per CLI call). Only a hint:
#: a name that is not found there still loads all plugins.
_HINTS = {
    ("stage", "extract"): "dataengine.connectors.extract",
    ("stage", "langid"): "dataengine.filters.langid",
    ("reader", "warc"): "dataengine.connectors.warc",
    ("reader", "jsonl"): "dataengine.connectors.files",
    ("reader", "parquet"): "dataengine.connectors.files",
}

_STAGES: dict[str, type] = {}
_READERS: dict[str, "object"] = {}
_loaded = False


def register_stage(cls):
    """Class decorator: make a Stage subclass available by its ``name``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    existing = _STAGES.get(cls.name)
    if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
        raise TypeError(f"two stages named {cls.name!r}: {existing} and {cls}")
    _STAGES[cls.name] = cls
    return cls


def register_reader(fmt: str) -> Callable:
    """Decorator for a Reader class that turns one input file of format ``fmt`` into documents."""

    def wrap(reader_cls):
        _READERS[fmt] = reader_cls
        return reader_cls

    return wrap


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    for module in PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            # An optional plugin whose own dependency is missing stays unavailable.
            if exc.name and module.startswith(exc.name):
                raise
    _loaded = True


def all_stages() -> dict[str, type]:
    _load_plugins()
    return dict(sorted(_STAGES.items()))


def _hinted(kind: str, name: str, found: dict) -> object | None:
    module = _HINTS.get((kind, name))
    if module is not None and name not in found and not _loaded:
        importlib.import_module(module)
    return found.get(name)


def get_stage(name: str) -> type:
    hit = _hinted("stage", name, _STAGES)
    if hit is not None:
        return hit
    stages = all_stages()
    if name not in stages:
        import difflib

        close = difflib.get_close_matches(name, stages, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PipelineConfigError(f"unknown stage {name!r}{hint}; `dataengine stages` lists them")
    return stages[name]


def all_readers() -> dict[str, object]:
    _load_plugins()
    return dict(sorted(_READERS.items()))


def get_reader(fmt: str):
    hit = _hinted("reader", fmt, _READERS)
    if hit is not None:
        return hit
    readers = all_readers()
    if fmt not in readers:
        raise PipelineConfigError(f"unknown input format {fmt!r}; known: {', '.join(readers)}")
    return readers[fmt]
