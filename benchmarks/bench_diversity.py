"""G-Vendi benchmarks: gradient-stage throughput and memory, and diversity quality on real text.

    python benchmarks/bench_diversity.py throughput --samples 32            # 135M proxy vs a torch.func loop
    python benchmarks/bench_diversity.py memory --rows 2000 --proxy tiny     # RSS while streaming rows
    python benchmarks/bench_diversity.py quality --proxy smollm2             # near-duplicates vs distinct
    python benchmarks/bench_diversity.py prismatic --rows 600                # selection vs random subsets

throughput: the ``proxy_gradients`` path (padded micro-batches, ``vmap(grad)``) against a
plain ``torch.func.grad`` loop over the same samples, one at a time at their own length;
both project with the same code in the same batches, so the ratio isolates how the
per-sample gradients are computed. The projection's share is reported beside it.

Prints one JSON object per measurement (append them to benchmarks/RESULTS.md by hand).
Real text: the demo corpus (in the package), and where /work/shared/testdata exists, the
scrapinghub article bodies and GSM8K train problems (MIT); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import sys
import threading
import time
from importlib import resources
from pathlib import Path

import numpy as np

TESTDATA = Path(os.environ.get("DATAENGINE_TESTDATA", "/work/shared/testdata"))


def demo_texts() -> list[str]:
    path = resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz"
    with gzip.open(str(path), "rt") as fh:
        return [json.loads(line)["text"] for line in fh]


def article_texts() -> list[str]:
    path = TESTDATA / "extraction" / "scrapinghub-aeb" / "ground-truth.json"
    if not path.exists():
        return []
    return [v["articleBody"] for v in json.loads(path.read_text()).values() if len(v.get("articleBody") or "") > 400]


def gsm8k_texts() -> list[str]:
    path = TESTDATA / "reasoning" / "gsm8k" / "train.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in rows]


def tiny_model() -> str:
    from dataengine.trainer.tiny_model import build_tiny_chat_model

    return str(build_tiny_chat_model(Path("/tmp/dataengine-bench-tiny-chat")))


def proxy_spec(name: str) -> str:
    return tiny_model() if name == "tiny" else name


def machine() -> dict:
    return {"cpus": os.cpu_count(), "load_at_start": os.getloadavg()[0], "python": sys.version.split()[0]}


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


# -- throughput ----------------------------------------------------------------------------------

def throughput(args) -> None:
    import torch
    from torch.func import grad

    from dataengine.filters.proxy_model import ProxyModel

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    proxy = ProxyModel.load(proxy_spec(args.proxy), args.params.split(","), args.dim, 0, args.max_tokens)
    load_s = time.perf_counter() - t0
    texts = (article_texts() or demo_texts())[: args.samples]
    samples = [proxy.encoder.text(t) for t in texts]
    tokens = sum(len(s.ids) for s in samples)

    # the stage's path: padded micro-batches through vmap(grad), then the projection
    grad_s = proj_s = 0.0
    order = sorted(range(len(samples)), key=lambda i: len(samples[i].ids))
    stage_vectors = np.zeros((len(samples), args.dim), np.float32)
    for start in range(0, len(order), args.batch_size):
        chunk = order[start : start + args.batch_size]
        t = time.perf_counter()
        grads, _ = proxy.per_sample_gradients([samples[i] for i in chunk])
        grad_s += time.perf_counter() - t
        t = time.perf_counter()
        stage_vectors[chunk] = proxy.project(grads).numpy()
        proj_s += time.perf_counter() - t
    stage_s = grad_s + proj_s

    # the peer: a plain torch.func loop, one sample at a time at its own length; the same
    # projection in the same batches
    loop_grad_s = loop_proj_s = 0.0
    loop_vectors = np.zeros_like(stage_vectors)
    for start in range(0, len(order), args.batch_size):
        chunk = order[start : start + args.batch_size]
        t = time.perf_counter()
        per = [grad(proxy.loss)(proxy.params, torch.tensor(samples[i].ids), torch.tensor(samples[i].labels))
               for i in chunk]
        stacked = {n: torch.stack([g[n] for g in per]) for n in proxy.param_names}
        del per
        loop_grad_s += time.perf_counter() - t
        t = time.perf_counter()
        loop_vectors[chunk] = proxy.project(stacked).numpy()
        loop_proj_s += time.perf_counter() - t
    loop_s = loop_grad_s + loop_proj_s
    cos = np.sum(stage_vectors * loop_vectors, axis=1) / (
        np.linalg.norm(stage_vectors, axis=1) * np.linalg.norm(loop_vectors, axis=1))
    emit({
        "bench": "throughput", "proxy": args.proxy, "params": args.params, "dim": args.dim,
        "columns": proxy.num_columns, "samples": len(samples), "tokens": tokens, "batch_size": args.batch_size,
        "threads": args.threads, "load_s": round(load_s, 1),
        "stage_samples_per_s": round(len(samples) / stage_s, 3), "loop_samples_per_s": round(len(samples) / loop_s, 3),
        "ratio_stage_over_loop": round(loop_s / stage_s, 3),
        "gradients_only_ratio": round(loop_grad_s / grad_s, 3),
        "stage_projection_share": round(proj_s / stage_s, 3),
        "same_vectors_min_cosine": round(float(cos.min()), 6), "peak_rss_mb": peak_rss_mb(), **machine(),
    })


# -- memory ----------------------------------------------------------------------------------------

def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(args) -> None:
    """Stream ``rows`` rows through the stage in executor-sized Arrow batches; sample RSS."""
    import pyarrow as pa

    from dataengine.filters.proxy_gradients import ProxyGradients

    stage = ProxyGradients({"model": proxy_spec(args.proxy), "params": args.params.split(","), "dim": args.dim,
                            "max_tokens": args.max_tokens, "batch_size": args.batch_size})
    stage.ensure_setup()
    pool = (article_texts() or []) + demo_texts()
    after_setup = current_rss_mb()
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append(current_rss_mb())
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    done, per_batch, t0 = 0, [], time.perf_counter()
    while done < args.rows:
        n = min(args.arrow_batch, args.rows - done)
        texts = [pool[(done + i) % len(pool)] for i in range(n)]
        out = stage(pa.table({"id": [str(done + i) for i in range(n)], "text": texts}))
        assert out.num_rows == n
        done += n
        per_batch.append(round(current_rss_mb(), 1))
    stop.set()
    watcher.join()
    seconds = time.perf_counter() - t0
    emit({
        "bench": "memory", "proxy": args.proxy, "params": args.params, "rows": done, "arrow_batch": args.arrow_batch,
        "batch_size": args.batch_size, "max_tokens": args.max_tokens, "rss_after_setup_mb": round(after_setup, 1),
        "rss_after_each_arrow_batch_mb": per_batch[:20] + (["..."] + per_batch[-5:] if len(per_batch) > 25 else per_batch[20:]),
        "peak_rss_mb": round(max(samples + per_batch), 1),
        "growth_first_to_last_batch_mb": round(per_batch[-1] - per_batch[0], 1),
        "rows_per_s": round(done / seconds, 2), **machine(),
    })


# -- quality ---------------------------------------------------------------------------------------

def near_duplicate_sets(texts: list[str], groups: int, copies: int, edits: int, seed: int = 0):
    from dataengine.filters.near_duplicates import edit_words

    rng = random.Random(seed)
    base = texts[:groups]
    near = [" ".join(edit_words(t.split(), rng, edits)) for t in base for _ in range(copies)]
    distinct = texts[groups : groups + groups * copies]
    return near, distinct


def quality(args) -> None:
    from dataengine.filters.embeddings import MiniLMEmbedder
    from dataengine.filters.proxy_model import ProxyModel
    from dataengine.filters.vendi import vendi_score

    proxy = ProxyModel.load(proxy_spec(args.proxy), args.params.split(","), args.dim, 0, args.max_tokens)
    embedder = MiniLMEmbedder()
    for corpus, texts in (("articles", article_texts()), ("shakespeare", demo_texts())):
        if len(texts) < args.groups * (args.copies + 1):
            continue
        near, distinct = near_duplicate_sets(texts, args.groups, args.copies, args.edits)
        scores = {}
        for name, subset in (("near_duplicates", near), ("distinct", distinct)):
            g, _ = proxy.gradients([proxy.encoder.text(t) for t in subset], batch_size=args.batch_size)
            e = embedder.embed(subset)
            scores[name] = {"n": len(subset), "g_vendi": round(vendi_score(g), 2),
                            "g_vendi_q2": round(vendi_score(g, q=2), 2), "vendi_embedding": round(vendi_score(e), 2)}
        emit({"bench": "quality", "corpus": corpus, "proxy": args.proxy, "params": args.params, "dim": args.dim,
              "groups": args.groups, "copies": args.copies, "word_edits_per_copy": args.edits, **scores,
              "g_vendi_ratio": round(scores["near_duplicates"]["g_vendi"] / scores["distinct"]["g_vendi"], 3),
              "embedding_ratio": round(scores["near_duplicates"]["vendi_embedding"] / scores["distinct"]["vendi_embedding"], 3)})


# -- prismatic selection ---------------------------------------------------------------------------

def prismatic(args) -> None:
    """Gradients -> gradient_clusters -> prismatic_select through a real pipeline; the selected
    subset's G-Vendi against random subsets of the same size."""
    import shutil
    import tempfile

    import pyarrow as pa

    import dataengine as de
    from dataengine.filters.vendi import vendi_score

    texts = gsm8k_texts() or demo_texts()
    corpus = "gsm8k_train" if gsm8k_texts() else "shakespeare"
    rng = random.Random(0)
    texts = rng.sample(texts, min(args.rows, len(texts)))
    root = tempfile.mkdtemp(prefix="bench-prismatic-")
    try:
        wh = de.open_warehouse(root, create=True)
        wh.write_table("docs", pa.table({"id": [f"r{i:06d}" for i in range(len(texts))], "text": texts}))
        stages = [de.stage("proxy_gradients", model=proxy_spec(args.proxy), params=args.params.split(","),
                           dim=args.dim, max_tokens=args.max_tokens, batch_size=args.batch_size),
                  de.stage("gradient_clusters", k=args.clusters), de.stage("prismatic_select", budget=args.budget)]
        t0 = time.perf_counter()
        de.run(wh, de.pipeline("docs", stages, to="docs", workers=args.workers), progress=False)
        seconds = time.perf_counter() - t0
        rows = wh.sql("SELECT proxy_grad, prismatic_selected FROM docs WHERE proxy_grad IS NOT NULL").to_pylist()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    vectors = np.array([r["proxy_grad"] for r in rows])
    chosen = [i for i, r in enumerate(rows) if r["prismatic_selected"]]
    nrng = np.random.default_rng(0)
    randoms = [vendi_score(vectors[nrng.choice(len(rows), len(chosen), replace=False)]) for _ in range(50)]
    selected = vendi_score(vectors[chosen])
    emit({"bench": "prismatic_selection", "corpus": corpus, "rows": len(rows), "budget": len(chosen),
          "clusters": args.clusters, "proxy": args.proxy, "params": args.params, "dim": args.dim,
          "g_vendi_all_rows": round(vendi_score(vectors), 2), "g_vendi_selected": round(selected, 2),
          "g_vendi_random_mean": round(float(np.mean(randoms)), 2),
          "g_vendi_random_max_of_50": round(float(np.max(randoms)), 2),
          "ratio_selected_over_random": round(selected / float(np.mean(randoms)), 3),
          "pipeline_seconds": round(seconds, 1), **machine()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["throughput", "memory", "quality", "prismatic"])
    parser.add_argument("--proxy", default="smollm2", help="smollm2 | tiny | a model folder")
    parser.add_argument("--params", default="last_block,head")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--arrow-batch", type=int, default=256)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--copies", type=int, default=12)
    parser.add_argument("--edits", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=64)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    {"throughput": throughput, "memory": memory, "quality": quality, "prismatic": prismatic}[args.what](args)


if __name__ == "__main__":
    main()
