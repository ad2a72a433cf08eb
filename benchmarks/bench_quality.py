"""Quality benchmarks: the classifier stage and the heuristic filters, each against a peer.

1. Classifier stage vs a plain loop of ``model.predict(text)`` (fasttext-numpy2) over the
   same texts, same model (trained here on the article/boilerplate pages). The stage's time
   includes Arrow -> Python strings, newline removal and building the score column.
2. All heuristics (``heuristics`` stage: Gopher quality + repetition, C4, FineWeb, NeMo /
   Nemotron-CC ratio rules) vs datatrove's GopherQualityFilter + GopherRepetitionFilter +
   C4QualityFilter + FineWebQualityFilter on the same documents, one process each (docs/s
   per core). datatrove runs in its own venv (``--datatrove-python``, default
   /tmp/dtvenv/bin/python; ``python -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install
   datatrove==0.10.1``); it is never a project dependency. Our stage is also timed with
   only the presets datatrove covers (gopher, c4, fineweb).

Documents: the demo corpus (400 documents) and the article/boilerplate pages of
tests/data (362), repeated to ``--docs``.

Usage: python benchmarks/bench_quality.py [--docs 4000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATATROVE_SCRIPT = r"""
import json, sys, time
from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter
texts = [json.loads(l)["text"] for l in open(sys.argv[1])]
repeats = int(sys.argv[2])
filters = [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(filter_no_terminal_punct=False), FineWebQualityFilter()]
for f in filters:
    f.filter(Document(text="warm up the word tokenizer. " * 10, id="w"))
times = []
for _ in range(repeats):
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    start = time.perf_counter()
    kept = 0
    for d in docs:
        ok = True
        for f in filters:  # every filter on every document: the same work as annotating
            r = f.filter(d)
            ok = ok and (r is True)
        kept += ok
    times.append(time.perf_counter() - start)
print(json.dumps({"times": times, "kept": kept}))
"""


def load_texts(n: int) -> list[str]:
    with gzip.open(resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz", "rt") as fh:
        texts = [json.loads(line)["text"] for line in fh]
    with gzip.open(ROOT / "tests" / "data" / "aeb_quality.jsonl.gz", "rt") as fh:
        texts += [json.loads(line)["text"] for line in fh]
    return [texts[i % len(texts)] for i in range(n)]


def train_model(folder: str) -> str:
    import fasttext

    with gzip.open(ROOT / "tests" / "data" / "aeb_quality.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh]
    train = os.path.join(folder, "train.txt")
    with open(train, "w") as fh:
        for r in rows:
            label = "hq" if r["kind"] == "article" else "lq"
            fh.write(f"__label__{label} {' '.join(r['text'].split())}\n")
    model = fasttext.train_supervised(train, epoch=10, lr=0.5, wordNgrams=2, dim=64, verbose=0, thread=1)
    path = os.path.join(folder, "model.bin")
    model.save_model(path)
    return path


def bench_classifier(texts: list[str], repeats: int, batch_size: int = 2000) -> dict:
    import fasttext

    from dataengine.filters.classifiers import Classifiers

    with tempfile.TemporaryDirectory() as tmp:
        path = train_model(tmp)
        model = fasttext.load_model(path)
        stage = Classifiers({"classifiers": [{"name": "q", "model": path, "label": "hq"}]})
        stage.ensure_setup()
        batches = [pa.table({"text": texts[i : i + batch_size]}) for i in range(0, len(texts), batch_size)]
        loop_times, stage_times = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            for t in texts:
                model.predict(t.replace("\n", " "), k=-1)
            loop_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            for b in batches:
                stage(b)
            stage_times.append(time.perf_counter() - start)
    return {"loop": loop_times, "stage": stage_times}


def bench_heuristics(texts: list[str], repeats: int, batch_size: int = 2000) -> dict:
    from dataengine.filters.heuristics import Heuristics

    out = {}
    for label, presets in (("all presets", ["gopher", "c4", "fineweb", "nemotron-cc"]), ("gopher+c4+fineweb", ["gopher", "c4", "fineweb"])):
        stage = Heuristics({"presets": presets})
        stage(pa.table({"text": texts[:10]}))
        batches = [pa.table({"text": texts[i : i + batch_size]}) for i in range(0, len(texts), batch_size)]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for b in batches:
                stage(b)
            times.append(time.perf_counter() - start)
        out[label] = times
    return out


def bench_datatrove(texts: list[str], repeats: int, python: str) -> dict | None:
    if not os.path.exists(python):
        print(f"datatrove python {python} not found: skipping the peer", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        docs = os.path.join(tmp, "docs.jsonl")
        with open(docs, "w") as fh:
            for t in texts:
                fh.write(json.dumps({"text": t}) + "\n")
        script = os.path.join(tmp, "dt.py")
        Path(script).write_text(DATATROVE_SCRIPT)
        proc = subprocess.run([python, script, docs, str(repeats)], capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datatrove-python", default="/tmp/dtvenv/bin/python")
    args = parser.parse_args()
    texts = load_texts(args.docs)
    n = len(texts)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"documents: {n} ({mb:.1f} MB of text)\n")

    cls = bench_classifier(texts, args.repeats)
    loop, stage = min(cls["loop"]), min(cls["stage"])
    print("| classifier run | seconds per repeat | best | docs/s |\n|---|---|---|---|")
    print(f"| plain loop `model.predict(text)` | {', '.join(f'{t:.2f}' for t in cls['loop'])} | {loop:.2f} | {n / loop:,.0f} |")
    print(f"| `classifiers` stage (batches of 2000) | {', '.join(f'{t:.2f}' for t in cls['stage'])} | {stage:.2f} | {n / stage:,.0f} |")
    print(f"\nstage throughput vs plain loop: **{loop / stage:.0%}** (target >= 80%)\n")

    heur = bench_heuristics(texts, args.repeats)
    dt = bench_datatrove(texts, args.repeats, args.datatrove_python)
    print("| heuristics run (1 process) | seconds per repeat | best | docs/s per core |\n|---|---|---|---|")
    for label, times in heur.items():
        print(f"| ours: `heuristics` stage, {label} | {', '.join(f'{t:.2f}' for t in times)} | {min(times):.2f} | {n / min(times):,.0f} |")
    if dt:
        times = dt["times"]
        print(f"| datatrove 0.10.1: Gopher quality + repetition, C4, FineWeb | {', '.join(f'{t:.2f}' for t in times)} | {min(times):.2f} | {n / min(times):,.0f} |")
        print(f"\nours (gopher+c4+fineweb) vs datatrove: **{min(dt['times']) / min(heur['gopher+c4+fineweb']):.1f}x**; "
              f"with every preset: **{min(dt['times']) / min(heur['all presets']):.1f}x**")


if __name__ == "__main__":
    main()
