"""The request cache (defined in :mod:`dataengine.core.llm_cache`, re-exported here)."""

from dataengine.core.llm_cache import CACHE_SUBDIR, CachedBackend, RequestCache, cache_path_for

__all__ = ["CACHE_SUBDIR", "CachedBackend", "RequestCache", "cache_path_for"]
