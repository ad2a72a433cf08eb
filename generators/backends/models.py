"""Model specs of the generators: ``smollm2`` (default), a Hugging Face folder, a ``.gguf``.

The resolution lives in :mod:`dataengine.core.causal_lm`, shared with the filters' gradient
proxy; these names stay for the backends and their callers.
"""

from __future__ import annotations

from dataengine.core.causal_lm import DEFAULT_MODEL, ModelLocation, locate_model, smollm2_location

resolve_model = locate_model

__all__ = ["DEFAULT_MODEL", "ModelLocation", "resolve_model", "smollm2_location"]
