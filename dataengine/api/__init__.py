"""The Python API: everything the CLI does, as functions. The CLI calls only this.

    import dataengine as de

    wh = de.open_warehouse("./warehouse", create=True)
    de.ingest_warc(wh, ["crawl/*.warc.gz"], table="raw")
    de.run(wh, de.pipeline("raw", ["heuristics", "exact_dedup", "fuzzy_dedup"], to="raw"))
    wh.sql("SELECT language, count(*) FROM raw GROUP BY 1")
    de.create_blend(wh, "web", {"all": ("SELECT id, text FROM raw WHERE fuzzy_dup_keep", 1.0)})
    de.freeze_blend(wh, "web")
    de.train(wh, "web@1", overrides={"steps": 100})

Every function takes the warehouse first (a :class:`~dataengine.warehouse.Warehouse` or a
path). See docs/api.md.
"""

from dataengine.core.errors import DataEngineError
from dataengine.core.pipeline import PipelineConfig
from dataengine.core.stage import Stage, StageParams
from dataengine.engine.base import RunResult
from dataengine.warehouse import Warehouse
from dataengine.api.blends import (
    blend_version,
    blends,
    create_blend,
    diff_blends,
    export_blend,
    freeze_blend,
    list_blend_versions,
    list_blends,
    list_tokenizers,
    read_blend_file,
    train_tokenizer,
)
from dataengine.api.dedup import dedup_report
from dataengine.api.diversity import DiversityReport, blend_diversity, diversity
from dataengine.api.generate import generate, list_recipes, tiny_chat_model
from dataengine.api.ingest import extraction_counts, ingest_cc, ingest_jsonl, ingest_parquet, ingest_warc
from dataengine.api.prismatic import PrismaticResult, generate_prismatic, prismatic_rounds
from dataengine.api.pipelines import StageInfo, list_stages, pipeline, plan, run, stage
from dataengine.api.quality import (
    apply_quality,
    fit_quality,
    list_classifiers,
    quality_report,
    quality_thresholds,
    quality_view,
    train_classifier,
)
from dataengine.api.reports import (
    ReportTarget,
    blend_report,
    dedup_report_file,
    list_runs,
    prepare_charts,
    quality_report_file,
    read_only_query,
    report_html,
    resolve_target,
    table_report_file,
    write_report,
)
from dataengine.api.train import describe_post_training, parse_overrides, resolve_init, train, training_runs
from dataengine.api.translate import TranslateResult, translate, translation_steps
from dataengine.api.warehouse import create_warehouse, open_warehouse, query, warehouse_path, write_sql

__all__ = [
    "DataEngineError", "DiversityReport", "PipelineConfig", "RunResult", "Stage", "StageInfo", "StageParams", "Warehouse",
    "apply_quality", "blend_diversity", "blend_report", "blend_version", "blends", "create_blend", "create_warehouse", "dedup_report",
    "ReportTarget", "dedup_report_file", "describe_post_training", "list_blend_versions", "list_runs", "prepare_charts",
    "quality_report_file", "read_only_query", "report_html", "resolve_target", "table_report_file", "write_report", "diff_blends", "diversity", "export_blend", "extraction_counts", "fit_quality",
    "freeze_blend", "generate", "generate_prismatic", "prismatic_rounds", "PrismaticResult",
    "ingest_cc", "ingest_jsonl", "ingest_parquet", "ingest_warc", "list_blends", "list_classifiers", "list_recipes",
    "list_stages", "list_tokenizers", "open_warehouse", "pipeline", "plan", "quality_report", "quality_thresholds",
    "parse_overrides", "quality_view", "query", "read_blend_file", "resolve_init", "run", "stage", "tiny_chat_model", "train", "train_classifier", "train_tokenizer", "training_runs", "TranslateResult", "translate", "translation_steps",
    "warehouse_path", "write_sql",
]
