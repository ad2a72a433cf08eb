"""The request cache: a re-run after a crash or partial failure sends only what is missing.

Successful results are stored in SQLite (WAL mode, so concurrent jobs can share it)
under ``WAREHOUSE/cache/generate/requests.sqlite``, keyed by sha256 of (model, prompt,
sampling parameters, seed). Failed requests are never stored, so the next run retries
exactly those. :class:`CachedBackend` wraps any backend with it. In the core because every
LLM-using stage (recipes, ``translation_quality``) shares one cache file per warehouse.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Sequence

from dataengine.core.llm import Backend, GenerationRequest, GenerationResult, ResultHook

CACHE_SUBDIR = os.path.join("cache", "generate")


def cache_path_for(warehouse_root: str | os.PathLike) -> Path:
    return Path(warehouse_root) / CACHE_SUBDIR / "requests.sqlite"


class RequestCache:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, model TEXT, result TEXT, created_at REAL)"
        )
        self._con.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, GenerationResult]:
        found: dict[str, GenerationResult] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, raw in self._con.execute(f"SELECT key, result FROM results WHERE key IN ({marks})", chunk):
                    found[key] = GenerationResult.from_json(raw)
        return found

    def put(self, key: str, model: str, result: GenerationResult) -> None:
        if not result.ok:
            return
        with self._lock:
            self._con.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)", (key, model, result.to_json(), time.time())
            )
            self._con.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._con.execute("SELECT count(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self._con.close()


class CachedBackend(Backend):
    """A backend that answers from the cache first and sends only the misses.

    Each result is stored as soon as it arrives (through the backend's result hook), so a
    job killed mid-call keeps everything that had come back.
    """

    def __init__(self, backend: Backend, cache: RequestCache | None):
        super().__init__(backend.model)
        self.kind = backend.kind
        self.backend = backend
        self.cache = cache
        self.sent = 0  # requests that went to the backend (tests and progress read it)

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    def generate(self, requests: Sequence[GenerationRequest], on_result: ResultHook | None = None) -> list[GenerationResult]:
        model = self.backend.model_id
        keys = [r.cache_key(model) for r in requests]
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        results: list[GenerationResult | None] = [hits.get(k) for k in keys]
        if on_result:
            for i, res in enumerate(results):
                if res is not None:
                    on_result(i, res)
        # Identical requests in one call are sent once.
        first_index: dict[str, int] = {}
        for i, (key, res) in enumerate(zip(keys, results)):
            if res is None and key not in first_index:
                first_index[key] = i
        misses = list(first_index.values())
        if misses:

            def store(j: int, res: GenerationResult) -> None:
                i = misses[j]
                if self.cache is not None:
                    self.cache.put(keys[i], model, res)
                if on_result:
                    on_result(i, res)

            fresh = self.backend.generate([requests[i] for i in misses], on_result=store)
            self.sent += len(misses)
            for i, res in zip(misses, fresh):
                results[i] = res
            for i, key in enumerate(keys):
                if results[i] is None:
                    results[i] = results[first_index[key]]
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self.backend.close()
