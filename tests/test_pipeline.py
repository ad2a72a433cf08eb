"""Pipeline definitions fail early, naming the stage and field."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dataengine.core.errors import PipelineConfigError
from dataengine.engine.base import plan_run
from dataengine.core.pipeline import load_pipeline, parse_inline_stage, pipeline_from_dict
from dataengine.core.registry import all_stages
from dataengine.core.stage import StageStats, run_stage_safely
from dataengine.filters.basic import TextStats


def _pipeline(**over):
    raw = {"source": {"table": "raw"}, "stages": ["text_stats"], "output": {"table": "out"}}
    raw.update(over)
    return pipeline_from_dict(raw)


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("source:\n  table: raw\nstages: [text_stats\noutput: {table: x}\n")
    with pytest.raises(PipelineConfigError, match=r"malformed YAML at line \d+"):
        load_pipeline(path)


def test_unknown_stage_suggests_a_name(wh):
    wh.write_table("raw", pa.table({"id": ["a"], "text": ["hello"]}))
    with pytest.raises(PipelineConfigError, match="unknown stage 'text_stat'.*did you mean 'text_stats'"):
        plan_run(_pipeline(stages=["text_stat"]), wh)


def test_wrong_parameter_type_names_stage_and_field(wh):
    wh.write_table("raw", pa.table({"id": ["a"], "text": ["hello"]}))
    bad = _pipeline(stages=[{"name": "throttle", "params": {"seconds": "soon"}}])
    with pytest.raises(PipelineConfigError, match="stage 'throttle': bad parameter seconds"):
        plan_run(bad, wh)
    unknown = _pipeline(stages=[{"name": "text_stats", "params": {"prefx": "t"}}])
    with pytest.raises(PipelineConfigError, match="prefx"):
        plan_run(unknown, wh)


def test_missing_column_fails_before_work(wh):
    wh.write_table("raw", pa.table({"id": ["a"], "body": ["hello"]}))
    with pytest.raises(PipelineConfigError, match="stage 'text_stats' needs column\\(s\\) text"):
        plan_run(_pipeline(), wh)
    assert not wh.table_exists("out")


def test_missing_source_table_and_bad_structure(wh):
    with pytest.raises(PipelineConfigError, match="source table 'raw' does not exist"):
        plan_run(_pipeline(), wh)
    with pytest.raises(PipelineConfigError, match="exactly one of source.table or source.files"):
        pipeline_from_dict({"source": {}, "output": {"table": "x"}})
    with pytest.raises(PipelineConfigError, match="output"):
        pipeline_from_dict({"source": {"table": "raw"}})


def test_inline_stage_parsing():
    sc = parse_inline_stage("sql_filter:where=text_words > 3 AND lang IN ('en','de')")
    assert sc.name == "sql_filter"
    assert sc.params == {"where": "text_words > 3 AND lang IN ('en','de')"}
    sc = parse_inline_stage("throttle:seconds=0.5")
    assert sc.params == {"seconds": 0.5}
    with pytest.raises(PipelineConfigError, match="not key=value"):
        parse_inline_stage("throttle:seconds")


def test_in_place_annotation_defaults_to_overwrite():
    assert _pipeline(output={"table": "raw"}).write_mode == "overwrite"
    assert _pipeline().write_mode == "append"


def test_every_registered_stage_declares_itself():
    stages = all_stages()
    assert {"text_stats", "sql_filter", "throttle"} <= set(stages)
    for name, cls in stages.items():
        assert cls.name == name and cls.version and cls.description, name


def test_bad_rows_are_isolated_and_counted():
    class Picky(TextStats):
        def process(self, batch):
            if any(t == "boom" for t in batch.column("text").to_pylist()):
                raise ValueError("cannot handle boom")
            return super().process(batch)

    stage = Picky()
    stats = StageStats()
    batch = pa.table({"id": ["a", "b", "c"], "text": ["one two", "boom", "three"]})
    out = run_stage_safely(stage, batch, stats)
    assert out.num_rows == 3, "no row may be lost"
    assert out.column("text_words").to_pylist() == [2, None, 1]
    assert stats.errors == 1 and stats.rows_in == 3 and stats.rows_out == 3
    assert "cannot handle boom" in stats.error_samples[0]


def test_text_stats_counts_unicode_whitespace_and_empty_text():
    out = TextStats()(pa.table({"text": ["", "  a  b ", "x", None, "a\u3000b\n\nc"]}))
    assert out.column("text_words").to_pylist() == [0, 2, 1, None, 3]
    assert out.column("text_lines").to_pylist() == [0, 1, 1, None, 3]
    assert out.column("text_chars").to_pylist() == [0, 7, 1, None, 6]
