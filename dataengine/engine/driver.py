"""The run loop every executor shares: segments of per-shard work, global reduces, one commit.

A pipeline without global stages is one segment: every shard runs all stages and writes
``<run_dir>/<key>.parquet``. Each global stage ends a segment: its map step is the last
stage of the segment, the reduce runs once over all shards' mapped files, and the next
segment reads each mapped shard file back with the reduce's columns attached (see
:mod:`dataengine.core.global_stage`). Intermediate segments stage under
``<run_dir>/segment-<i>/`` and reduces under ``<run_dir>/reduce-<i>/``; both have done
markers, so a re-run resumes in whichever segment it stopped. Only the last segment
writes to ``<run_dir>`` itself, whose files :func:`commit_run` registers.

An executor supplies two callables:

* ``run_shards(pending, stages, reader, run_dir, bar)``: call :func:`process_shard` on
  every pending shard (in parallel, wherever it likes) and ``bar.advance(rows)`` as each ends;
* ``reduce(stage, mapped_files, out_dir) -> stats``: run a global stage's reduce
  (default :func:`dataengine.engine.reduce_plan.reduce_on_driver`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Callable

from dataengine.engine.base import Plan, RunResult, Shard, commit_run, prepare_run_dir, process_shard, run_lock
from dataengine.core.global_stage import GlobalMapStep, GlobalStage
from dataengine.engine.reduce import ReducedShardReader, reduce_done
from dataengine.engine.reduce_plan import reduce_on_driver
from dataengine.core.progress import shard_progress
from dataengine.core.stage import Stage

#: Reduce stats kept in the run record (the per-step list stays in the reduce's marker).
REDUCE_DETAIL = ("rounds", "shuffle_bytes", "shuffle_bytes_physical")

RunShards = Callable[[list[Shard], list[Stage], object, str, object], None]
Reduce = Callable[[GlobalStage, list[str], str], dict]


@dataclass
class Segment:
    index: int
    stages: list[Stage]
    global_stage: GlobalStage | None  # whose reduce follows this segment


def split_segments(stages: list[Stage]) -> list[Segment]:
    """Cut the stage list after each global stage's map step."""
    segments, current = [], []
    for stage in stages:
        if isinstance(stage, GlobalStage):
            segments.append(Segment(len(segments), current + [GlobalMapStep(stage)], stage))
            current = []
        else:
            current.append(stage)
    segments.append(Segment(len(segments), current, None))
    return segments


def _done(run_dir: str, shard: Shard) -> bool:
    return os.path.exists(os.path.join(run_dir, f"{shard.key}.done.json"))


def execute_plan(
    plan: Plan,
    warehouse,
    executor: str,
    run_shards: RunShards,
    reduce: Reduce | None = None,
    progress: bool = True,
    started: float | None = None,
) -> RunResult:
    """Run every segment of ``plan`` with ``run_shards``, every reduce with ``reduce``, commit once."""
    started = started or time.time()
    with run_lock(plan.run_dir, plan.run_id):
        return _execute_locked(plan, warehouse, executor, run_shards, reduce or reduce_on_driver, progress, started)


def _execute_locked(plan: Plan, warehouse, executor: str, run_shards: RunShards, reduce: Reduce, progress: bool,
                    started: float) -> RunResult:
    prepare_run_dir(plan)
    segments = split_segments(plan.stages)
    shards, reader = plan.shards, plan.reader
    batch_size = plan.pipeline.executor.batch_size
    per_segment: list[list[dict]] = []
    reduce_stats: list[tuple[str, dict]] = []
    resumed = None
    for seg in segments:
        last = seg is segments[-1]
        run_dir = plan.run_dir if last else os.path.join(plan.run_dir, f"segment-{seg.index}")
        os.makedirs(run_dir, exist_ok=True)
        pending = [s for s in shards if not _done(run_dir, s)]
        if resumed is None:
            resumed = len(shards) - len(pending)
        label = plan.pipeline.name if len(segments) == 1 else f"{plan.pipeline.name} [{seg.index + 1}/{len(segments)}]"
        with shard_progress(len(shards), len(shards) - len(pending), label, enabled=progress) as bar:
            if pending:
                run_shards(pending, seg.stages, reader, run_dir, bar)
        # Every shard is done now, so this only reads the markers (a missing one would run here).
        records = [process_shard(s, seg.stages, reader, run_dir, warehouse.config, batch_size) for s in shards]
        per_segment.append(records)
        if seg.global_stage is None:
            continue
        stage = seg.global_stage
        out_dir = os.path.join(plan.run_dir, f"reduce-{seg.index}")
        mapped = [os.path.join(run_dir, f"{s.key}.parquet") for s in shards]
        stats = reduce_done(out_dir) or reduce(stage, mapped, out_dir)
        reduce_stats.append((f"{stage.name}.reduce", stats))
        reader = ReducedShardReader(stage, out_dir)
        shards = [replace(s, path=path, table=None, version=None) for s, path in zip(shards, mapped)]
    records = merge_segment_records(per_segment, reduce_stats)
    result = commit_run(plan, warehouse, records, executor, started)
    result.shards_resumed = resumed or 0
    remove_intermediates(plan.run_dir, len(segments))
    return result


def remove_intermediates(run_dir: str, segments: int) -> None:
    """Drop the map outputs and reduce results of global stages once the run is committed.

    Only the last segment's files are registered in the lake; ``segment-*`` and ``reduce-*``
    exist for resuming an interrupted run (a 1M-document fuzzy dedup leaves ~0.6 GB)."""
    import shutil

    for i in range(segments - 1):
        for name in (f"segment-{i}", f"reduce-{i}"):
            shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)


def merge_segment_records(per_segment: list[list[dict]], reduce_stats: list[tuple[str, dict]]) -> list[dict]:
    """One record per shard: the last segment's files and rows, every segment's stage stats.

    The reduce's rows and time are counted once (on the first shard's record), so the run
    summary shows it as a stage of its own.
    """
    if len(per_segment) == 1:
        return per_segment[0]
    merged = []
    for i, final in enumerate(per_segment[-1]):
        stats, order = {}, []
        for seg_index, records in enumerate(per_segment):
            rec = records[i]
            for name in rec["stage_order"]:
                unique = name if name not in stats else f"{name}#{seg_index}"
                stats[unique] = rec["stats"][name]
                order.append(unique)
            if seg_index < len(per_segment) - 1:
                name, raw = reduce_stats[seg_index]
                name = name if name not in stats else f"{name}#{seg_index}"  # the same stage twice
                rows = raw.get("rows", 0) if i == 0 else 0
                seconds = raw.get("seconds", 0.0) if i == 0 else 0.0
                stats[name] = {"rows_in": rows, "rows_out": rows, "errors": 0, "seconds": seconds, "error_samples": [],
                               "where": raw.get("where")}
                detail = {k: raw[k] for k in REDUCE_DETAIL if k in raw}
                if detail and i == 0:
                    stats[name]["detail"] = detail
                order.append(name)
        merged.append(
            {
                **final,
                "stats": stats,
                "stage_order": order,
                "source_skipped": per_segment[0][i].get("source_skipped", {}),
                "file_errors": per_segment[0][i].get("file_errors", []),
            }
        )
    return merged


# -- configuration and --dry-run ---------------------------------------------------------

def executor_config(pipeline, **overrides):
    """``pipeline.executor`` with overrides applied (None = not given), validated like the YAML."""
    from pydantic import ValidationError

    from dataengine.core.errors import PipelineConfigError
    from dataengine.core.pipeline import ExecutorConfig

    values = {k: v for k, v in overrides.items() if v is not None}
    if not values:
        return pipeline.executor
    try:
        return ExecutorConfig(**{**pipeline.executor.model_dump(), **values})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PipelineConfigError(f"executor: {problems}") from None


def override_executor(pipeline, **overrides) -> None:
    """Apply CLI flags to the pipeline itself (so --dry-run and the run see the same settings)."""
    pipeline.executor = executor_config(pipeline, **overrides)
