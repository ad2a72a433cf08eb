"""`translation_quality` rows/s on CPU without the LLM judge, against the bare library calls.

    python benchmarks/bench_translation_quality.py --rows 2000 --repeats 2

Rows: real Leipzig sentences (tests/data/langid, 11 target languages) as translations of
real English sentences, with an English back-translation column (another English
sentence), so every signal is computed: language id (lid.176 + py3langid), length ratio,
untranslated 4-grams, protected spans, MiniLM cosine and chrF of the back-translation.

*bare*: the libraries the stage calls, on the same texts with nothing around them --
``LangId.identify`` on the outputs, ``SentenceTransformer.encode`` on sources and
back-translations, sacrebleu's sentence chrF per row. *stage*: ``TranslationQuality``
on Arrow batches of ``--batch`` rows (what every executor runs), models loaded before the
clock starts. Also the stage without back-translations (no embeddings, no chrF).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import pyarrow as pa

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "langid"
TARGETS = ["ar", "de", "es", "fr", "hi", "ja", "th", "zh", "ru", "ko", "it"]


def sentences(lang: str) -> list[str]:
    return [s.strip() for s in (DATA / f"{lang}.txt").read_text(encoding="utf-8").splitlines() if s.strip()]


def workload(rows: int) -> pa.Table:
    english = sentences("en")
    targets = {lang: sentences(lang) for lang in TARGETS}
    src, text, lang, back = [], [], [], []
    for i in range(rows):
        code = TARGETS[i % len(TARGETS)]
        src.append(english[i % len(english)])
        text.append(targets[code][(i // len(TARGETS)) % len(targets[code])])
        lang.append(code)
        back.append(english[(i * 7 + 3) % len(english)])
    return pa.table({"source_text": src, "text": text, "language": lang, "back": back})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from sacrebleu.metrics import CHRF

    from dataengine.core.registry import get_stage

    table = workload(args.rows)
    with_back = get_stage("translation_quality")({"back_translation_column": "back"})
    without_back = get_stage("translation_quality")({})
    t = time.perf_counter()
    with_back.ensure_setup()
    without_back.ensure_setup()
    setup_s = time.perf_counter() - t
    langid, model = with_back.langid, with_back.embedder.model  # the same loaded models
    data = table.to_pydict()

    def bare() -> None:
        langid.identify(data["text"])
        model.encode(data["source_text"] + data["back"], batch_size=64, normalize_embeddings=True,
                     show_progress_bar=False)
        metric = CHRF()
        for hyp, ref in zip(data["back"], data["source_text"]):
            metric.sentence_score(hyp, [ref])

    def staged(stage) -> None:
        for start in range(0, table.num_rows, args.batch):
            stage(table.slice(start, args.batch))

    runs = {"bare": [], "stage": [], "stage_no_backsim": []}
    for _ in range(args.repeats):
        for name, fn in (("bare", bare), ("stage", lambda: staged(with_back)),
                         ("stage_no_backsim", lambda: staged(without_back))):
            t = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - t)
    out = with_back(table.slice(0, min(table.num_rows, 1000))).to_pydict()
    best = {k: min(v) for k, v in runs.items()}
    report = {
        "rows": args.rows, "batch": args.batch, "setup_s": round(setup_s, 1),
        "seconds": {k: [round(x, 2) for x in v] for k, v in runs.items()},
        "rows_per_s_best": {k: round(args.rows / v, 1) for k, v in best.items()},
        "rows_per_s_median": {k: round(args.rows / statistics.median(v), 1) for k, v in runs.items()},
        "stage_over_bare": round(best["stage"] / best["bare"], 3),
        "lang_ok_rate": round(sum(bool(x) for x in out["translation_lang_ok"]) / len(out["translation_lang_ok"]), 3),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
