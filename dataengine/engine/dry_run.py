"""``dataengine run --dry-run``: what a run would do, without reading or writing data."""

from __future__ import annotations

import os

from dataengine.core.global_stage import GlobalMapStep
from dataengine.engine.base import Shard, plan_run
from dataengine.engine.driver import split_segments
from dataengine.engine.executor import executor_class


def describe_plan(pipeline, warehouse) -> str:
    """What a run would do, without reading or writing data: for ``dataengine run --dry-run``."""
    from dataengine.engine.base import plan_run

    plan = plan_run(pipeline, warehouse)
    cfg = pipeline.executor
    runner = executor_class(cfg.kind)(cfg, warehouse)
    where = runner.where()
    if cfg.memory_limit:
        where += f", {cfg.memory_limit} per worker"
    lines = [
        f"pipeline   {plan.pipeline.name}",
        f"run id     {plan.run_id}",
        f"executor   {cfg.kind} ({where})",
        f"source     {plan.source_desc}",
        f"output     {plan.output_table} ({plan.pipeline.write_mode}), one snapshot",
        f"shards     {len(plan.shards)}: " + ", ".join(_shard_label(s) for s in plan.shards[:5])
        + (f", ... ({len(plan.shards) - 5} more)" if len(plan.shards) > 5 else ""),
        "stages",
    ]
    step = 0
    for seg in split_segments(plan.stages):
        for stage in seg.stages:
            step += 1
            note = "  (global: map step)" if isinstance(stage, GlobalMapStep) else ""
            lines.append(f"  {step:>2}. {stage.name} v{stage.version}{note}")
        if seg.global_stage is not None:
            step += 1
            place = runner.reduce_place()
            key = f" by {seg.global_stage.reduce_key}" if seg.global_stage.reduce_key else ""
            lines.append(f"  {step:>2}. {seg.global_stage.name} reduce{key}: {place}")
    lines.append(f"batch size {cfg.batch_size} rows; staging in {plan.run_dir}")
    return "\n".join(lines)


def _shard_label(shard: Shard) -> str:
    if shard.path is not None:
        return os.path.basename(shard.path)
    return f"{shard.table}@{shard.version} part {shard.part}/{shard.parts}"
