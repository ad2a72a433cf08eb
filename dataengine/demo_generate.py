"""The `dataengine demo` step for synthetic data: Nemotron-CC rephrasing on a tiny model.

A tiny random chat model (built offline in a few seconds) stands in for SmolLM2 so the
step stays well under 30 s on 2 cores; its text is gibberish, the provenance is real.
Routing uses `text_words` as the quality column, to show that the column is a parameter.
"""

from __future__ import annotations

from pathlib import Path


def demo_generate(wh, show) -> None:
    from rich.console import Console

    from dataengine.core.registry import get_stage
    from dataengine.api.generation import default_cache_path, run_generate
    from dataengine.trainer.tiny_model import build_tiny_chat_model

    out = Console()
    model = build_tiny_chat_model(Path(wh.config.root) / "models" / "tiny-chat")
    params = {
        "model": str(model), "quality_column": "text_words", "threshold": 200, "max_input_tokens": 1024,
        "high_quality_prompts": ["diverse_qa", "knowledge_list"], "min_output_words": 5,
        "sampling": {"max_tokens": 8, "temperature": 0.8}, "cache_path": default_cache_path(wh),
        "backend_options": {"batch_size": 8},
    }
    query = "SELECT id, text, text_words FROM raw ORDER BY id LIMIT 3"
    out.print(f"[dim]dataengine generate nemotron_cc --from \"{query}\" --to synthetic --model {model} ...[/dim]")
    for attempt in ("first run", "re-run (answered from the request cache)"):
        result = run_generate(wh, get_stage("nemotron_cc")(params), query, "synthetic", progress=False)
        out.print(f"{attempt}: {result.rows} rows, {result.requests} requests, {result.sent} sent to the model, "
                  f"snapshot {result.snapshot_id}")
    show(wh, "SELECT left(s.source_id, 8) AS source, d.text_words AS words, s.prompt, s.prompt_version AS v, "
             "len(s.segment_ids) AS segs, s.completion_tokens AS tokens, s.finish_reason AS finish, s.keep "
             "FROM synthetic s JOIN raw d ON s.source_id = d.id ORDER BY 1, 3")
