"""Set up each stage once per worker process, not once per shard.

Executors ship stages to workers pickled (parameters only, see ``Stage.__getstate__``), so
every shard task gets fresh stage objects and would run ``setup()`` again: loading the
language-id models alone takes ~1 s, paid per shard. Worker processes (pool processes,
Dask workers, reused Spark Python workers) outlive a task, so a shard task swaps its
stages for ones this process already set up. One copy per thread: stages may keep
state that is not thread-safe (a DuckDB connection). The cache keeps the stages of the
last few pipelines only, so a long-lived cluster does not pile up models.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

from dataengine.engine.base import process_shard
from dataengine.core.stage import Stage

MAX_CACHED_STAGES = 32

_stages: OrderedDict[tuple, Stage] = OrderedDict()
_lock = threading.Lock()


def _identity(stage: Stage) -> tuple:
    kind = type(stage)
    return (
        threading.get_ident(),
        kind.__module__,
        kind.__qualname__,
        stage.name,
        json.dumps(stage.fingerprint(), sort_keys=True, default=str),
    )


def reuse_setup(stages: list[Stage]) -> list[Stage]:
    """The stages this thread already set up for the same class and fingerprint, else these."""
    out = []
    with _lock:
        for stage in stages:
            key = _identity(stage)
            cached = _stages.get(key)
            if cached is None:
                _stages[key] = cached = stage
                while len(_stages) > MAX_CACHED_STAGES:
                    _stages.popitem(last=False)
            else:
                _stages.move_to_end(key)
            out.append(cached)
    return out


def process_shard_in_worker(shard, stages, reader, run_dir, warehouse_config, batch_size) -> dict:
    """:func:`process_shard` with the stages this worker process has already set up."""
    return process_shard(shard, reuse_setup(stages), reader, run_dir, warehouse_config, batch_size)


def warm_up(stages) -> None:
    """Set ``stages`` up in this worker before its first shard arrives (errors surface then)."""
    import pyarrow as pa

    try:
        for stage in reuse_setup(stages):
            stage.ensure_setup()
    except Exception:  # noqa: BLE001 - the shard task runs setup() again and reports the error
        pass
    pa.array([0])  # pyarrow imports pandas on its first list conversion (~0.2 s): do it now
