"""Versioned prompt templates, one file each: ``<recipe>/<name>.<version>.txt``.

A file starts with a front-matter block (``---`` lines) of ``key: value`` pairs
(``name``, ``version``, ``source``, optional ``system``), then the user-message template,
where ``{text}`` stands for the document or chunk. Substitution is a plain replace, not
``str.format``, because math and code documents are full of braces. Changing a prompt
means adding a new version file: the version is part of every synthetic row's provenance
and of the request cache key (through the prompt text).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from dataengine.core.errors import PipelineConfigError


@dataclass(frozen=True)
class PromptTemplate:
    recipe: str
    name: str
    version: str
    template: str
    system: str | None = None
    source: str = ""

    def messages(self, text: str) -> list[dict]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        msgs.append({"role": "user", "content": self.template.replace("{text}", text)})
        return msgs


@lru_cache(maxsize=None)
def load_prompt(recipe: str, name: str, version: str = "v1") -> PromptTemplate:
    path = resources.files("dataengine.generators.prompts") / recipe / f"{name}.{version}.txt"
    if not path.is_file():
        raise PipelineConfigError(f"no prompt {recipe}/{name} version {version} (looked for {path})")
    return parse_prompt_file(path.read_text(encoding="utf-8"), recipe)


def parse_prompt_file(raw: str, recipe: str) -> PromptTemplate:
    lines = raw.split("\n")
    if not lines or lines[0].strip() != "---":
        raise PipelineConfigError(f"prompt file of {recipe} has no front matter")
    end = lines.index("---", 1)
    meta: dict[str, str] = {}
    for line in lines[1:end]:
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
    template = "\n".join(lines[end + 1 :]).strip("\n")
    if "{text}" not in template:
        raise PipelineConfigError(f"prompt {recipe}/{meta.get('name')} has no {{text}} placeholder")
    return PromptTemplate(recipe, meta["name"], meta["version"], template, meta.get("system") or None, meta.get("source", ""))


def available_prompts(recipe: str) -> list[str]:
    folder = resources.files("dataengine.generators.prompts") / recipe
    return sorted(p.name[: -len(".txt")] for p in folder.iterdir() if p.name.endswith(".txt"))
