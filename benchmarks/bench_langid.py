"""Language id accuracy per language and speed on one core: lid.176 alone vs the `langid` default.

Data: Leipzig sentences from lingua-py's test set (one sentence a line, file = language).
A language counts for a method when that method can output it ("over its languages").
Norwegian Bokmål is ``nb`` in the data and ``no`` in both models: they are the same here.

    OMP_NUM_THREADS=1 python benchmarks/bench_langid.py [--data DIR] [--limit N]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "langid" / "sentences"
SAME = {"nb": "no"}


def load_sentences(folder, limit: int | None = None) -> list[tuple[str, str]]:
    rows = []
    for path in sorted(Path(folder).glob("*.txt")):
        lang = SAME.get(path.stem, path.stem)
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows.extend((lang, line) for line in lines[:limit])
    return rows


def per_language(rows, predicted) -> dict[str, float]:
    hits, totals = defaultdict(int), defaultdict(int)
    for (lang, _), pred in zip(rows, predicted):
        totals[lang] += 1
        hits[lang] += pred == lang
    return {lang: hits[lang] / totals[lang] for lang in totals}


def run(stage, texts, repeat: int = 1) -> tuple[list[str | None], float]:
    """Labels and sentences per CPU-second (process time: one thread, and fair on a machine
    other people's jobs share; best of ``repeat``)."""
    stage.ensure_setup()
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        langs, _ = stage.identify(texts)
        best = min(best, time.process_time() - start)
    return langs, len(texts) / best


def main() -> None:
    from dataengine.filters.langid import LangId

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--limit", type=int, default=None, help="sentences per language")
    args = ap.parse_args()
    rows = load_sentences(args.data, args.limit)
    texts = [t for _, t in rows]

    lid_only = LangId({"confirm_below": 0})
    default = LangId()
    lid_only.ensure_setup()
    default.ensure_setup()
    lid_labels = {label[9:] for label in lid_only._model.get_labels()}
    py3_labels = set(default._second.nb_classes)

    results = {}
    for name, stage, labels in (("lid.176", lid_only, lid_labels), ("default", default, lid_labels | py3_labels)):
        langs, rate = run(stage, texts, repeat=3)
        acc = per_language(rows, langs)
        supported = {k: v for k, v in acc.items() if k in labels}
        results[name] = (acc, supported, rate, labels)
        print(f"{name}: mean accuracy over its {len(supported)} languages {sum(supported.values()) / len(supported):.4f}, "
              f"{rate:,.0f} sentences per CPU-second", flush=True)

    print(f"\n{len(rows):,} sentences, {len({l for l, _ in rows})} languages\n")
    print("| language | lid.176 | default (lid.176 + py3langid) |")
    print("|---|---|---|")
    for lang in sorted({l for l, _ in rows}):
        cells = []
        for name in ("lid.176", "default"):
            acc, _, _, labels = results[name]
            cells.append(f"{acc[lang]:.3f}" if lang in labels else "n/a")
        print(f"| {lang} | {' | '.join(cells)} |")
    cells = []
    for name in ("lid.176", "default"):
        _, supported, rate, _ = results[name]
        cells.append(f"**{sum(supported.values()) / len(supported):.3f}** ({len(supported)} langs, {rate:,.0f}/s)")
    print(f"| mean over its languages (speed, 1 core) | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
