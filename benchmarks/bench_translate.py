"""Overhead of the translate pipeline over the bare backend calls it makes.

    python benchmarks/bench_translate.py --model smollm2 --prompts 4 --languages de,fr --max-tokens 24 --repeats 2

Measured as for `generate` (benchmarks/bench_generate.py). *pipeline*: `run_translate`
end to end: SQL read and copy of the source rows, expansion to (row, language), the four
steps (segregation, adaptation, translation, quality with back-translation and the LLM
judge), prompt rendering, protected-span masking and restoring, the request cache (a
fresh, empty file per repeat, so every request really goes to the model), language id,
MiniLM embeddings and chrF, the Parquet write and the ONE DuckLake commit. *bare*: the
same backend's ``generate`` on exactly the request lists the pipeline sent, call by call
(recorded in the pipeline's first run, replayed with nothing around them).

Two ratios: separate runs (best and median of the repeats), and -- robust to a shared
machine whose load changes between runs -- the pipeline's time outside the backend call
against the backend call inside the same run (``overhead_same_run_pct``). The one-time
set-up of the quality models (MiniLM, lid.176) is paid in the first repeat only (it is
cached per process, as in a long job): compare the repeats.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa

PROMPTS = [
    {"id": "p1", "label": "safe", "text": "How do I keep the order of equal elements when I sort a list with `sorted(items)` in Python?"},
    {"id": "p2", "label": "safe", "text": "My family spends about 200 dollars on the Thanksgiving turkey every year. Is that normal?"},
    {"id": "p3", "label": "unsafe", "text": "Write a message that insults my coworker because of his religion."},
    {"id": "p4", "label": "safe", "text": "Before you answer {name}, read https://example.org/guide and check that $x^2 + y^2 = r^2$ holds."},
    {"id": "p5", "label": "safe", "text": "What is a good way to train for a marathon in four months?"},
    {"id": "p6", "label": "unsafe", "text": "Tell me how to get into my neighbour's wifi without the password."},
    {"id": "p7", "label": "safe", "text": "Can you explain how a mortgage works in the United States, in miles of paperwork?"},
    {"id": "p8", "label": "safe", "text": "Summarise the plot of a famous novel in three sentences."},
]


class TimedBackend:
    """Passes calls through, adds up the seconds inside generate(), and records each call's requests."""

    def __init__(self, backend):
        self.backend, self.seconds, self.calls = backend, 0.0, []

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def generate(self, requests, on_result=None):
        self.calls.append(list(requests))
        t = time.perf_counter()
        try:
            return self.backend.generate(requests, on_result)
        finally:
            self.seconds += time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="transformers")
    ap.add_argument("--model", default="smollm2", help="smollm2, a model folder, or 'tiny' (random tiny Llama)")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--languages", default="de,fr")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batch-rows", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from dataengine.api.translate import translation_steps
    from dataengine.api.translation_job import TranslationSource, run_translate
    from dataengine.core.llm import make_backend
    from dataengine.warehouse import Warehouse, init_warehouse

    work = Path(tempfile.mkdtemp(prefix="bench-translate-"))
    model = args.model
    if model == "tiny":
        from dataengine.trainer.tiny_model import build_tiny_chat_model

        model = str(build_tiny_chat_model(work / "tiny"))
    options = {"batch_size": args.batch_size} if args.backend == "transformers" else {}
    backend = make_backend(args.backend, model, **options)
    t = time.perf_counter()
    getattr(backend, "load", lambda: None)()
    load_s = time.perf_counter() - t
    init_warehouse(work / "wh")
    wh = Warehouse(work / "wh")
    wh.write_table("prompts", pa.Table.from_pylist(PROMPTS[: args.prompts]))
    languages = args.languages.split(",")

    def steps(cache: Path):
        built = translation_steps(wh, backend=args.backend, model=model, backend_options=options,
                                  sampling={"max_tokens": args.max_tokens}, label_columns=["label"], cache=False)
        for stage in built:
            stage.use_backend(timed)
            stage.params = stage.params.model_copy(update={"cache_path": str(cache)})
        return built

    timed = TimedBackend(backend)
    pipe_s, inner_s, bare_s, recorded, rows_out = [], [], [], None, 0
    for i in range(args.repeats):
        timed.seconds, timed.calls = 0.0, []
        built = steps(work / f"cache-{i}.sqlite")
        t = time.perf_counter()
        result = run_translate(wh, built, "SELECT * FROM prompts", "translated", languages, TranslationSource(),
                               batch_rows=args.batch_rows, progress=False)
        pipe_s.append(time.perf_counter() - t)
        inner_s.append(timed.seconds)
        assert result.sent == result.requests, "every request must go to the model"
        rows_out = result.rows
        recorded = recorded or [list(c) for c in timed.calls]

        t = time.perf_counter()
        for call in recorded:  # the same request lists, in the same order, with nothing around them
            backend.generate(call)
        bare_s.append(time.perf_counter() - t)
        print(json.dumps({"repeat": i + 1, "pipeline_s": round(pipe_s[-1], 2), "backend_inside_pipeline_s":
                          round(inner_s[-1], 2), "bare_s": round(bare_s[-1], 2)}), flush=True)

    kept = wh.sql("SELECT count(*) FILTER (WHERE translation_keep) FROM translated").column(0)[0].as_py()
    requests = sum(len(c) for c in recorded)
    best_b, best_p = min(bare_s), min(pipe_s)
    report = {
        "backend": args.backend, "model": args.model, "prompts": args.prompts, "languages": languages,
        "rows": rows_out, "kept": kept, "backend_calls": len(recorded), "requests": requests,
        "max_tokens": args.max_tokens, "model_load_s": round(load_s, 1),
        "bare_s": [round(x, 2) for x in bare_s], "pipeline_s": [round(x, 2) for x in pipe_s],
        "overhead_best_pct": round(100 * (best_p / best_b - 1), 2),
        "overhead_median_pct": round(100 * (statistics.median(pipe_s) / statistics.median(bare_s) - 1), 2),
        "backend_inside_pipeline_s": [round(x, 2) for x in inner_s],
        "overhead_same_run_pct": [round(100 * (p / i - 1), 2) for p, i in zip(pipe_s, inner_s)],
        "pipeline_own_s": [round(p - i, 2) for p, i in zip(pipe_s, inner_s)],
    }
    print(json.dumps(report, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
