"""Synthetic data: a recipe over SQL-selected rows, through any LLM backend, as ONE snapshot.

    de.generate(wh, "nemotron_cc", "SELECT * FROM cc WHERE quality_level = 'low'", to="synth",
                backend="http", model="qwen", backend_options={"base_url": "http://127.0.0.1:8000/v1"})

The request cache makes a re-run send only what is missing (failed or new requests).
"""

from __future__ import annotations

from typing import Any

from dataengine.core.errors import DataEngineError
from dataengine.core.registry import recipes, stages
from dataengine.generators.recipes.base import Recipe
from dataengine.generators.backends.base import SamplingParams
from dataengine.api.generation import GenerateResult, default_cache_path, run_generate
from dataengine.api.warehouse import as_warehouse


def list_recipes() -> dict[str, str]:
    """Installed generation recipes: name -> one-line description."""
    return {name: (cls.description or "") for name, cls in recipes.all().items()}


def recipe_params(wh, backend: str = "transformers", model: str | None = None, seed: int = 0,
                  backend_options: dict | None = None, sampling: dict | None = None, cache: bool = True,
                  **params: Any) -> dict:
    """The parameters of a recipe stage from the usual generate options (recipe keys pass through)."""
    out: dict[str, Any] = {"backend": backend, "seed": seed, **params}
    if model:
        out["model"] = model
    out["backend_options"] = dict(backend_options or {})
    if sampling:
        out["sampling"] = SamplingParams(**{**dict(out.get("sampling") or {}), **sampling}).model_dump()
    if cache:
        out.setdefault("cache_path", default_cache_path(as_warehouse(wh)))
    return out


def generate(
    wh,
    recipe: str,
    source: str,
    to: str,
    backend: str = "transformers",
    model: str | None = None,
    backend_options: dict | None = None,
    sampling: dict | None = None,
    seed: int = 0,
    mode: str = "overwrite",
    batch_rows: int = 64,
    cache: bool = True,
    progress: bool = True,
    **params: Any,
) -> GenerateResult:
    """Run ``recipe`` over the rows of ``source`` (SQL or a table name) and commit them to ``to``.

    ``params`` are the recipe's own parameters (e.g. ``quality_column``, ``styles``);
    ``backend_options`` go to the backend (``base_url``, ``concurrency``, ``batch_size``, ...).
    """
    wh = as_warehouse(wh)
    if not issubclass(stages.get(recipe), Recipe):
        raise DataEngineError(f"{recipe!r} is not a generation recipe (it annotates rows instead of making them): "
                              "the translation steps run with `dataengine translate`, or `dataengine run --stage`")
    stage = stages.get(recipe)(recipe_params(wh, backend, model, seed, backend_options, sampling, cache, **params))
    return run_generate(wh, stage, source, to, mode=mode, batch_rows=batch_rows, progress=progress)


def tiny_chat_model(folder) -> str:
    """A tiny random chat model (ChatML tokenizer, Llama layers) built offline in seconds.

    Its text is gibberish; it exists so smoke tests and the demo exercise the real backend,
    cache and provenance paths without a download. Returns the model folder.
    """
    from dataengine.trainer.tiny_model import build_tiny_chat_model

    return str(build_tiny_chat_model(folder))
