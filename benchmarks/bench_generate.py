"""Overhead of the recipe pipeline vs the bare backend call on the same prompts.

    python benchmarks/bench_generate.py --model smollm2 --docs 8 --max-tokens 32 --repeats 2

*bare*: ``backend.generate(requests)`` on the exact requests the recipe sends (built
before the clock starts). *pipeline*: ``run_generate`` end to end: SQL read and copy of
the source rows, chunking with token counting, prompt rendering, the request cache
(a fresh, empty cache file per repeat, so every request really goes to the model),
post-processing, the Parquet write and the ONE DuckLake commit with its run record.
Greedy decoding, one loaded model shared by both, runs interleaved; best and median of
the repeats are reported, and -- robust to a shared machine whose load changes between
runs -- the pipeline's time outside the backend call against the backend call inside the
same run (``overhead_same_run_pct``). Transformers on CPU here; pass --backend vllm on a CUDA GPU.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

import pyarrow as pa


def _docs(n: int, words: int) -> list[dict]:
    path = resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz"
    with gzip.open(str(path), "rt") as fh:
        records = [json.loads(line) for line in fh]
    records = [r for r in records if len(r["text"].split()) >= words][:n]
    return [{"id": f"doc-{i}", "text": " ".join(r["text"].split()[:words])} for i, r in enumerate(records)]


class TimedBackend:
    """Passes calls through to a backend and adds up the seconds spent inside generate()."""

    def __init__(self, backend):
        self.backend, self.seconds = backend, 0.0

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def generate(self, requests, on_result=None):
        t = time.perf_counter()
        try:
            return self.backend.generate(requests, on_result)
        finally:
            self.seconds += time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="transformers")
    ap.add_argument("--model", default="smollm2", help="smollm2, a model folder, or 'tiny' (random tiny Llama)")
    ap.add_argument("--docs", type=int, default=8)
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from dataengine.core.registry import get_stage
    from dataengine.generators.backends import make_backend
    from dataengine.api.generation import run_generate
    from dataengine.warehouse import Warehouse, init_warehouse

    work = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    model = args.model
    if model == "tiny":
        from dataengine.trainer.tiny_model import build_tiny_chat_model

        model = str(build_tiny_chat_model(work / "tiny"))
    options = {"batch_size": args.batch_size} if args.backend == "transformers" else {}
    backend = make_backend(args.backend, model, **options)
    t = time.perf_counter()
    backend.load()
    load_s = time.perf_counter() - t
    init_warehouse(work / "wh")
    wh = Warehouse(work / "wh")
    wh.write_table("docs", pa.Table.from_pylist(_docs(args.docs, args.words)))

    def recipe(cache: Path | None):
        r = get_stage("nemotron_cc")({
            "backend": args.backend, "model": model, "prompts": ["wikipedia"], "max_input_tokens": 4096,
            "min_output_words": 0, "sampling": {"max_tokens": args.max_tokens, "temperature": 0},
            "cache_path": str(cache) if cache else None,
        })
        r.use_backend(timed)
        r.ensure_setup()
        return r

    timed = TimedBackend(backend)
    requests = [j.request for j in recipe(None).plan(wh.sql("SELECT * FROM docs"))]
    bare_s, pipe_s, inner_s, tokens = [], [], [], 0
    bare_texts = pipe_texts = None
    for i in range(args.repeats):
        t = time.perf_counter()
        results = backend.generate(requests)
        bare_s.append(time.perf_counter() - t)
        tokens = sum(r.completion_tokens for r in results)
        bare_texts = sorted(r.text for r in results)

        timed.seconds = 0.0
        t = time.perf_counter()
        res = run_generate(wh, recipe(work / f"cache-{i}.sqlite"), "SELECT * FROM docs", "synthetic", progress=False)
        pipe_s.append(time.perf_counter() - t)
        inner_s.append(timed.seconds)
        assert res.sent == len(requests), "every request must go to the model"
        pipe_texts = sorted(wh.sql("SELECT raw_output FROM synthetic").column(0).to_pylist())
    same = bare_texts == pipe_texts
    best_b, best_p = min(bare_s), min(pipe_s)
    report = {
        "backend": args.backend, "model": args.model, "docs": args.docs, "requests": len(requests),
        "max_tokens": args.max_tokens, "completion_tokens": tokens, "model_load_s": round(load_s, 1),
        "bare_s": [round(x, 2) for x in bare_s], "pipeline_s": [round(x, 2) for x in pipe_s],
        "overhead_best_pct": round(100 * (best_p / best_b - 1), 2),
        "overhead_median_pct": round(100 * (statistics.median(pipe_s) / statistics.median(bare_s) - 1), 2),
        "bare_tokens_per_s": round(tokens / best_b, 1), "same_outputs": same,
        # robust to the machine's load changing between runs: the pipeline's own time outside
        # the backend call, against the backend call inside the same run
        "backend_inside_pipeline_s": [round(x, 2) for x in inner_s],
        "overhead_same_run_pct": [round(100 * (p / i - 1), 2) for p, i in zip(pipe_s, inner_s)],
    }
    print(json.dumps(report, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
