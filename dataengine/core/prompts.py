"""Versioned prompt templates, one file each: ``<folder>/<name>.<version>.txt``.

A file starts with a front-matter block (``---`` lines) of ``key: value`` pairs
(``name``, ``version``, ``source``, optional ``system``), then the user-message template,
where ``{text}`` stands for the document or chunk. Other ``{field}`` placeholders
(``{language}``, ``{culture}``, ...) are filled from keyword arguments. Substitution is a
plain replace, not ``str.format``, because math and code documents are full of braces.
Changing a prompt means adding a new version file: the version is part of every
synthetic row's provenance and of the request cache key (through the prompt text).

In the core because recipes (generators) and LLM-using filters (``translation_quality``)
both keep prompt files; each plugin passes the package folder its files live in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dataengine.core.errors import PipelineConfigError

_FIELD = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class PromptTemplate:
    recipe: str
    name: str
    version: str
    template: str
    system: str | None = None
    source: str = ""

    def messages(self, text: str, **fields: str) -> list[dict]:
        """Chat messages: ``{text}`` and each ``{field}`` replaced in system and user parts.

        One pass over the template: inserted values are not scanned again, so a document
        that contains ``{language}`` or ``{text}`` stays exactly as it is.
        """
        values = {**fields, "text": text}

        def fill(raw: str) -> str:
            return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), raw)

        msgs = [{"role": "system", "content": fill(self.system)}] if self.system else []
        msgs.append({"role": "user", "content": fill(self.template)})
        return msgs

    @property
    def ref(self) -> str:
        """``name@version``: what provenance columns record."""
        return f"{self.name}@{self.version}"


def load_prompt_file(folder, recipe: str, name: str, version: str = "v1") -> PromptTemplate:
    """Read ``folder/<recipe>/<name>.<version>.txt`` (``folder``: an importlib.resources Traversable)."""
    path = folder / recipe / f"{name}.{version}.txt"
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


def available_prompt_files(folder, recipe: str) -> list[str]:
    sub = folder / recipe
    return sorted(p.name[: -len(".txt")] for p in sub.iterdir() if p.name.endswith(".txt"))
