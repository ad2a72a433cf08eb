"""The recipes' versioned prompt templates: ``<recipe>/<name>.<version>.txt`` in this folder.

The file format and :class:`PromptTemplate` are in :mod:`dataengine.core.prompts`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from dataengine.core.prompts import PromptTemplate, available_prompt_files, load_prompt_file, parse_prompt_file

__all__ = ["PromptTemplate", "available_prompts", "load_prompt", "parse_prompt_file"]


@lru_cache(maxsize=None)
def load_prompt(recipe: str, name: str, version: str = "v1") -> PromptTemplate:
    return load_prompt_file(resources.files("dataengine.generators.prompts"), recipe, name, version)


def available_prompts(recipe: str) -> list[str]:
    return available_prompt_files(resources.files("dataengine.generators.prompts"), recipe)
