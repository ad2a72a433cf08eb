"""dataengine: a lakehouse for LLM training data.

``import dataengine as de`` gives the Python API (:mod:`dataengine.api`): open a warehouse,
ingest, run pipelines, query with SQL, build and freeze blends, generate, train. The names
load lazily, so importing a sub-package (``dataengine.filters.langid``) stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    import importlib

    api = importlib.import_module("dataengine.api")
    try:
        return getattr(api, name)
    except AttributeError:
        raise AttributeError(f"module 'dataengine' has no attribute {name!r}") from None


def __dir__():
    import importlib

    api = importlib.import_module("dataengine.api")
    return sorted(set(globals()) | set(api.__all__))
