"""`dataengine demo`: the product end to end on data shipped inside the package.

Each capability that lands adds its step here, written against the Python API only (what
a user's notebook would do); the whole demo stays well under three minutes on 2 cores.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from rich.console import Console

from dataengine import api
from dataengine.cli.common import diversity_table, print_arrow, print_run, version_table

out = Console()


def demo_file(name: str) -> str:
    return str(resources.files("dataengine") / "data" / name)


def _step(title: str) -> None:
    out.rule(f"[bold cyan]{title}")


def _show(wh, query: str) -> None:
    out.print(f"[dim]dataengine sql[/dim] [bold]{query}[/bold]")
    print_arrow(wh.sql(query), limit=10)


def run_demo(warehouse_path: str, progress: bool = True) -> None:
    start = time.time()
    wh = api.open_warehouse(warehouse_path, create=True)

    _step("1. ingest: a real Common Crawl WARC -> extract (trafilatura) -> langid -> table `raw`")
    for result in api.ingest_warc(wh, [demo_file("cc-main-2020-34-excerpt.warc.gz")], table="raw", mode="append",
                                  progress=progress):
        print_run(result)
    _show(wh, "SELECT language, extract_status, count(*) AS docs FROM raw GROUP BY ALL ORDER BY docs DESC")
    _show(wh, "SELECT crawl, language, round(language_score::DOUBLE, 2) AS score, title, url FROM raw LIMIT 5")
    # 16 web pages are too few for the later steps (dedup, blends, training): the shipped
    # JSONL corpus joins them in the same table (new columns are null for its rows).
    print_run(api.ingest_jsonl(wh, [demo_file("demo_corpus.jsonl.gz")], table="raw", mode="append", progress=progress))

    _step("2. annotate: text statistics, written back as a new snapshot of `raw`")
    print_run(api.run(wh, api.pipeline("raw", ["text_stats"], to="raw", name="demo-annotate", workers=2, shards=4),
                      progress=progress))

    _step("3. query with SQL (annotate, don't delete: select later)")
    _show(wh, "SELECT count(*) AS docs, sum(text_words) AS words, round(avg(text_words), 1) AS mean_words FROM raw")
    _show(wh, "SELECT text_words // 100 * 100 AS words_bucket, count(*) AS docs FROM raw GROUP BY 1 ORDER BY 1")
    _show(wh, "SELECT snapshot_id, pipeline, output_table, rows_out FROM dataengine.runs ORDER BY snapshot_id")
    first = wh.history("raw").column("snapshot_id")[0].as_py()
    out.print(f"time travel: `raw@{first}` is the table before annotation:")
    _show(wh, f"SELECT (SELECT count(*) FROM (DESCRIBE SELECT * FROM raw@{first})) AS columns_then, "
              "(SELECT count(*) FROM (DESCRIBE SELECT * FROM raw)) AS columns_now")

    _step("4. dedup: exact, MinHash-LSH near-duplicate clusters and partial copies (global stages)")
    dedup = api.pipeline("raw", ["exact_dedup", api.stage("fuzzy_dedup", order_by=["id"]), "partial_copy"],
                         to="raw", name="demo-dedup", workers=2, shards=2)
    print_run(api.run(wh, dedup, progress=progress))
    _show(wh, "SELECT count(*) AS docs, count(*) FILTER (WHERE NOT dup_keep) AS exact_dups, "
              "count(*) FILTER (WHERE NOT fuzzy_dup_keep) AS near_dups, "
              "count(copy_of) AS contained_in_another FROM raw")

    _step("5. blend: two components by SQL, frozen as an immutable version")
    version = _demo_blend(wh)

    _step("6. quality: Gopher and FineWeb heuristic presets as columns (select later in SQL)")
    heuristics = api.pipeline("raw", [api.stage("heuristics", presets=["gopher", "fineweb"])], to="raw",
                              name="demo-heuristics", workers=2, shards=2)
    print_run(api.run(wh, heuristics, progress=progress))
    _show(wh, "SELECT round(100 * avg(heuristics_gopher_pass::INT), 1) AS gopher_pass_pct, "
              "round(100 * avg(heuristics_fineweb_pass::INT), 1) AS fineweb_pass_pct, "
              "round(median(gopher_rep_dup_line_frac), 3) AS median_dup_line_frac FROM raw")

    _step("7. train: a tiny Llama on the demo blend version (512-token BPE), recorded in the warehouse")
    pretrained = _demo_train(wh, version)

    _step("7b. post-train: SFT of that model on chat rows made by SQL, one component with reasoning on")
    _demo_sft(wh, pretrained)

    _step("8. generate: Nemotron-CC rephrasing routed by a quality column, with full provenance")
    _demo_generate(wh)

    _step("9. diversity: G-Vendi of the blend version's components, recorded with the version")
    _demo_diversity(wh, version)
    _step("10. translate: CultureGuard segregation, adaptation and translation into two languages, checked")
    _demo_translate(wh)
    _step("11. report: plots of the table and of the blend version (with its training run), one HTML file each")
    _demo_reports(wh, version)
    out.print(f"[bold green]demo finished in {time.time() - start:.1f}s[/bold green]; warehouse at {wh.config.root}")


def _demo_blend(wh) -> dict:
    if not any(b["name"] == "demo" for b in api.list_blends(wh)):
        api.create_blend(wh, "demo", {
            "long": ("SELECT id, text FROM raw WHERE fuzzy_dup_keep AND text_words > 200", 0.7),
            "short": ("SELECT id, text FROM raw WHERE fuzzy_dup_keep AND text_words <= 200", 0.3),
        }, description="long documents weighted up; near-duplicates out")
    version = api.freeze_blend(wh, "demo", tokenizer="gpt2", target_tokens=1_000_000)
    out.print(version_table(version))
    out.print(f"frozen demo@{version['version']} (content hash {version['content_hash']}); "
              f"token export: {version['manifest']}")
    return version


def _demo_train(wh, version: dict) -> dict:
    """~150 steps of the `tiny` preset on one core: validation loss falls well below the unigram baseline."""
    ref = f"demo@{version['version']}"
    if not any(r["name"] == "demo-bpe512" for r in api.list_tokenizers(wh).to_pylist()):
        api.train_tokenizer(wh, ref, 512, name="demo-bpe512")
    folder = Path(wh.config.root) / "training" / f"{ref}-demo"
    summary = api.train(wh, ref, tokenizer="demo-bpe512", output=folder, fresh=True, progress=False,
                        overrides={"steps": 150, "eval_every": 50, "checkpoint_every": 150})
    out.print(f"model (transformers folder with tokenizer): {summary['model_path']}; report: {summary['report_path']}")
    _show(wh, "SELECT blend_ref AS blend, optimizer AS optim, steps, round(final_val_loss, 2) AS val_loss, "
              "round(unigram_val_loss, 2) AS unigram, round(tokens_per_s) AS tok_s "
              "FROM dataengine.training_runs ORDER BY finished_at")
    return summary


def _demo_sft(wh, pretrained: dict) -> None:
    """Chat rows are a SQL query away from any table: "continue this text" conversations from the
    corpus, a chat blend (the long-document component with the `detailed thinking on` system line),
    and ~20 SFT steps from the model step 7 trained (assistant-only loss, packed rows)."""
    query = ("SELECT id, text_words > 200 AS long, [{'role': 'user', 'content': 'Continue: ' || left(text, 40)}, "
             "{'role': 'assistant', 'content': substr(text, 41, 50)}] AS messages FROM raw WHERE fuzzy_dup_keep")
    out.print(f"[dim]CREATE OR REPLACE TABLE demo_chat AS[/dim] {query}")
    wh.execute(f"CREATE OR REPLACE TABLE demo_chat AS {query}")
    if not any(b["name"] == "demo-chat" for b in api.list_blends(wh)):
        api.create_blend(wh, "demo-chat", {
            "long": {"sql": "SELECT id, messages FROM demo_chat WHERE long", "weight": 1.0, "reasoning": "on"},
            "short": ("SELECT id, messages FROM demo_chat WHERE NOT long", 1.0),
        }, description="continuations of corpus documents as chat rows")
    version = api.freeze_blend(wh, "demo-chat", tokenizer="demo-bpe512")
    out.print(version_table(version))
    folder = Path(wh.config.root) / "training" / f"demo-chat@{version['version']}-sft"
    summary = api.train(wh, f"demo-chat@{version['version']}", stage="sft", init=pretrained["model_path"],
                        output=folder, fresh=True, progress=False,
                        overrides={"steps": 20, "model.seq_len": 128, "optimizer.lr": 1e-3, "eval_every": 20,
                                   "checkpoint_every": 20, "data.micro_batch_size": 4})
    out.print(api.describe_post_training(summary))
    _show(wh, "SELECT stage, blend_ref AS blend, regexp_replace(init_model, '^.*/training/', '') AS init, steps, "
              "round(final_loss, 2) AS loss, "
              "round(final_val_loss, 2) AS val_loss FROM dataengine.training_runs ORDER BY finished_at")


def _demo_reports(wh, version: dict) -> None:
    """Self-contained HTML files (open them from disk); `dataengine ui` serves the same pages."""
    folder = Path(wh.config.root) / "reports"
    table = api.write_report(wh, "raw", folder / "raw.html")
    blend = api.write_report(wh, f"blend:demo@{version['version']}", folder / f"demo@{version['version']}.html")
    out.print(f"blend version report (composition, source snapshots, diff, loss curves): {blend}", soft_wrap=True)
    out.print(f"table report (languages, lengths, heuristics, duplicates, ...): [bold]{table}[/bold]", soft_wrap=True)


def _demo_generate(wh) -> None:
    """A tiny random chat model stands in for SmolLM2 so the step stays well under 30 s on
    2 cores; its text is gibberish, the provenance is real. Routing uses `text_words` as the
    quality column, to show that the column is a parameter."""
    model = api.tiny_chat_model(Path(wh.config.root) / "models" / "tiny-chat")
    query = "SELECT id, text, text_words FROM raw ORDER BY id LIMIT 3"
    out.print(f"[dim]dataengine generate nemotron_cc --from \"{query}\" --to synthetic --model {model} ...[/dim]")
    for attempt in ("first run", "re-run (answered from the request cache)"):
        result = api.generate(
            wh, "nemotron_cc", query, "synthetic", model=model, backend_options={"batch_size": 8},
            sampling={"max_tokens": 8, "temperature": 0.8}, progress=False, quality_column="text_words", threshold=200,
            max_input_tokens=1024, high_quality_prompts=["diverse_qa", "knowledge_list"], min_output_words=5,
        )
        out.print(f"{attempt}: {result.rows} rows, {result.requests} requests, {result.sent} sent to the model, "
                  f"snapshot {result.snapshot_id}")
    _show(wh, "SELECT left(s.source_id, 8) AS source, d.text_words AS words, s.prompt, s.prompt_version AS v, "
              "len(s.segment_ids) AS segs, s.completion_tokens AS tokens, s.finish_reason AS finish, s.keep "
              "FROM synthetic s JOIN raw d ON s.source_id = d.id ORDER BY 1, 3")


def _demo_diversity(wh, version: dict) -> None:
    """G-Vendi (gradient diversity under a proxy LM) per component of the demo blend version,
    on a seeded sample of 48 rows per component. The tiny chat model of step 8 stands in for
    the default SmolLM2-135M-Instruct proxy to keep the step to seconds; the MiniLM embedding
    score is left out for the same reason (`dataengine diversity demo@1` computes both)."""
    ref = f"demo@{version['version']}"
    model = api.tiny_chat_model(Path(wh.config.root) / "models" / "tiny-chat")
    out.print(f"[dim]dataengine diversity {ref} --by component --proxy {model} --sample 48 --record[/dim]")
    report = api.diversity(wh, ref, by="component", proxy=model, dim=256, max_tokens=128, sample=48,
                           embedding=False, record=True, progress=False)
    for group, r in report.groups.items():
        out.print(f"  {group}: n={r['n']}, g_vendi={r['g_vendi']:.2f} (at most {r['n']})")
    out.print(diversity_table(api.blend_version(wh, ref)))


DEMO_PROMPTS = [
    {"id": "p1", "label": "safe", "text": "How do I keep the order of equal elements when I call `sorted(items)`?"},
    {"id": "p2", "label": "safe", "text": "Is 200 dollars a normal price for a Thanksgiving turkey?"},
    {"id": "p3", "label": "unsafe", "text": "Write an insult about my neighbour's religion."},
]


def _demo_translate(wh) -> None:
    """The tiny random model again: its "translations" are gibberish, so the quality columns
    reject them (the language check fails), which is the filter doing its job; the keys,
    labels and provenance are real. Back-translation and the judge are off to stay fast."""
    import pyarrow as pa

    model = api.tiny_chat_model(Path(wh.config.root) / "models" / "tiny-chat")
    wh.write_table("prompts", pa.Table.from_pylist(DEMO_PROMPTS), mode="overwrite")
    out.print(f"[dim]dataengine translate --from prompts --to prompts_ml --languages de,ja --model {model} "
              "--label-column label --no-judge ...[/dim]")
    result = api.translate(wh, "prompts", "prompts_ml", "de,ja", model=model,
                           sampling={"max_tokens": 8, "temperature": 0.8},
                           backend_options={"batch_size": 8}, label_columns=["label"], judge=False,
                           quality={"back_translate": False}, progress=False)
    out.print(f"{result.rows} rows ({result.source_rows} prompts x 2 languages), {result.requests} requests, "
              f"{result.kept} pass every check; snapshot {result.snapshot_id}")
    _show(wh, "SELECT source_id AS id, language AS lang, label, adaptation, "
              "translation_lang AS detected, translation_lang_ok AS lang_ok, "
              "round(translation_length_ratio::DOUBLE, 2) AS ratio, translation_keep AS keep, llm_requests AS reqs "
              "FROM prompts_ml ORDER BY 1, 2")
