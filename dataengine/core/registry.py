"""Open registries of stages, readers, LLM backends, recipes and executors.

Everything pluggable is found through package entry points (``importlib.metadata``), the
way pytest, Dask and fsspec find their plugins. dataengine's built-ins are declared in its
own pyproject.toml exactly as a third-party package declares its own::

    [project.entry-points."dataengine.stages"]
    word_count = "my_package.stages:WordCount"

Groups: ``dataengine.stages`` (Stage classes), ``dataengine.readers`` (input formats),
``dataengine.backends`` (LLM backends), ``dataengine.recipes`` (generation recipes; a
recipe is a Stage too, so it is also found as a stage) and ``dataengine.executors``.

Looking a name up imports only the module that defines it, so a CLI call that needs one
stage does not pay for importing every plugin. Objects defined at run time (a notebook,
a test) can be added with :meth:`Registry.register`.
"""

from __future__ import annotations

import difflib
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from dataengine.core.errors import PipelineConfigError


class Registry:
    """Named plugins of one kind, from one or more entry-point groups."""

    def __init__(self, kind: str, groups: tuple[str, ...], name_attr: str, hint: str = ""):
        self.kind = kind
        self.groups = groups
        self.name_attr = name_attr  # the class attribute that must equal the entry point's name
        self.hint = hint  # where the user can see the names, for error messages
        self._local: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}
        self._points: dict[str, EntryPoint] | None = None

    # -- discovery ---------------------------------------------------------------------
    def _entry_points(self) -> dict[str, EntryPoint]:
        if self._points is None:
            points: dict[str, EntryPoint] = {}
            for group in self.groups:
                for ep in entry_points(group=group):
                    known = points.get(ep.name)
                    if known is not None and known.value != ep.value:
                        raise PipelineConfigError(
                            f"two {self.kind}s named {ep.name!r}: {known.value} and {ep.value}"
                        )
                    points[ep.name] = ep
            self._points = points
        return self._points

    def names(self) -> list[str]:
        """Every registered name, without importing any plugin."""
        return sorted(set(self._entry_points()) | set(self._local))

    def origin(self, name: str) -> str:
        """``module:attr`` (or ``local``) a name comes from, for listings."""
        if name in self._local:
            return "registered at run time"
        ep = self._entry_points().get(name)
        return ep.value if ep else ""

    def distribution(self, name: str) -> str:
        """The installed distribution that declares ``name`` (``dataengine`` for built-ins)."""
        ep = self._entry_points().get(name)
        dist = getattr(ep, "dist", None) if ep else None
        return dist.name if dist is not None else ""

    # -- lookup ------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        if name in self._local:
            return self._local[name]
        if name in self._loaded:
            return self._loaded[name]
        ep = self._entry_points().get(name)
        if ep is None:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = f"; {self.hint}" if self.hint else f"; known: {', '.join(self.names())}"
            raise PipelineConfigError(f"unknown {self.kind} {name!r}{hint}{where}")
        try:
            obj = ep.load()
        except ImportError as exc:
            raise PipelineConfigError(
                f"{self.kind} {name!r} ({ep.value}) cannot be imported: {exc}"
            ) from None
        declared = getattr(obj, self.name_attr, None)
        if declared != name:
            raise PipelineConfigError(
                f"{self.kind} entry point {name!r} points at {ep.value}, whose name is {declared!r}"
            )
        self._loaded[name] = obj
        return obj

    def all(self) -> dict[str, Any]:
        """Every plugin of this kind, imported. For listings; prefer :meth:`get`."""
        return {name: self.get(name) for name in self.names()}

    def __contains__(self, name: str) -> bool:
        return name in self._local or name in self._entry_points()

    def register(self, name: str, obj: Any) -> Any:
        """Add ``obj`` under ``name`` for this process (notebooks, tests)."""
        existing = self._local.get(name)
        if existing is not None and existing is not obj:
            raise PipelineConfigError(f"a {self.kind} named {name!r} is already registered")
        self._local[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        self._local.pop(name, None)

    def refresh(self) -> None:
        """Re-read the entry points (after installing a plugin in a running process)."""
        self._points = None
        self._loaded.clear()


stages = Registry("stage", ("dataengine.stages", "dataengine.recipes"), "name", "`dataengine stages` lists them")
readers = Registry("input format", ("dataengine.readers",), "format")
backends = Registry("backend", ("dataengine.backends",), "kind")
recipes = Registry("recipe", ("dataengine.recipes",), "name")
executors = Registry("executor", ("dataengine.executors",), "kind")


def register_stage(cls):
    """Class decorator for a stage defined at run time (a notebook, a test).

    Packages declare their stages as ``dataengine.stages`` entry points instead.
    """
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    stages.register(cls.name, cls)
    return cls


def get_stage(name: str) -> type:
    return stages.get(name)


def all_stages() -> dict[str, type]:
    return stages.all()


def get_reader(fmt: str):
    return readers.get(fmt)


def all_readers() -> dict[str, Any]:
    return readers.all()


def check_backend(name: str) -> str:
    """A parameter validator: ``name`` is an installed LLM backend (imports nothing)."""
    if name not in backends:
        raise ValueError(f"unknown backend {name!r}: installed: {', '.join(backends.names())}")
    return name
