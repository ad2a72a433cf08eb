"""Training a fastText quality classifier on text selected by SQL from the warehouse.

``positive`` and ``negative`` are SQL queries whose ``text`` column (or first column) gives
the examples. A deterministic hash of each text puts it in the train or held-out split, so
the same queries and seed give the same split and, with one training thread, the same
model. The held-out precision/recall/F1/accuracy/ROC-AUC are stored with the model
(``dataengine.models`` and ``metrics.json``) as a new version.
"""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np
import pyarrow as pa
import xxhash

from dataengine.core.errors import DataEngineError
from dataengine.core.classifier_models import LABEL_PREFIX, FastTextScorer
from dataengine.core.models import ModelRecord, validate_model_name

_WS = re.compile(r"\s+")


def normalize_for_fasttext(text: str) -> str:
    """One line, single spaces: fastText reads one example per line."""
    return _WS.sub(" ", text).strip()


def texts_from_sql(wh, query: str, what: str) -> list[str]:
    result = wh.sql(query)
    if result.num_columns == 0:
        raise DataEngineError(f"{what} query returned no columns")
    column = result.column("text") if "text" in result.column_names else result.column(0)
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        raise DataEngineError(f"{what} query: column {result.column_names[0]!r} is not text; select a `text` column")
    texts = [normalize_for_fasttext(t) for t in column.to_pylist() if t]
    texts = [t for t in texts if t]
    if not texts:
        raise DataEngineError(f"{what} query returned no non-empty text")
    return texts


def in_holdout(text: str, fraction: float, seed: int) -> bool:
    return (xxhash.xxh64_intdigest(text.encode("utf-8"), seed=seed) % 1_000_000) < fraction * 1_000_000


def binary_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict:
    """Precision, recall, F1 and accuracy at ``threshold``, and ROC AUC (rank statistic)."""
    y_true = y_true.astype(bool)
    pred = scores >= threshold
    tp = int((pred & y_true).sum())
    fp = int((pred & ~y_true).sum())
    fn = int((~pred & y_true).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos and n_neg:
        ranks = _average_ranks(scores)
        auc = (ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    else:
        auc = float("nan")
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "accuracy": round(float((pred == y_true).mean()), 4) if len(y_true) else 0.0,
        "roc_auc": round(float(auc), 4),
        "majority_baseline_accuracy": round(max(n_pos, n_neg) / max(len(y_true), 1), 4),
        "test_positive": n_pos,
        "test_negative": n_neg,
    }


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    # ties share their average rank
    sorted_vals = values[order]
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or sorted_vals[i] != sorted_vals[start]:
            if i - start > 1:
                ranks[order[start:i]] = (start + 1 + i) / 2
            start = i
    return ranks


def train_fasttext_classifier(
    wh,
    name: str,
    positive_sql: str,
    negative_sql: str,
    positive_label: str = "hq",
    negative_label: str = "lq",
    holdout: float = 0.2,
    seed: int = 0,
    epoch: int = 20,
    lr: float = 0.5,
    word_ngrams: int = 2,
    dim: int = 64,
    min_count: int = 1,
    threads: int = 1,
) -> ModelRecord:
    """Train, evaluate on the held-out split, and store as the next version of ``name``."""
    import fasttext

    validate_model_name(name)
    if not 0 < holdout < 1:
        raise DataEngineError(f"--holdout must be between 0 and 1, not {holdout}")
    if positive_label == negative_label:
        raise DataEngineError("positive and negative labels must differ")
    pos = texts_from_sql(wh, positive_sql, "positive")
    neg = texts_from_sql(wh, negative_sql, "negative")
    examples = [(t, 1) for t in pos] + [(t, 0) for t in neg]
    train = [(t, y) for t, y in examples if not in_holdout(t, holdout, seed)]
    test = [(t, y) for t, y in examples if in_holdout(t, holdout, seed)]
    if not test or not train:
        raise DataEngineError(f"too few examples ({len(examples)}) for a {holdout:.0%} held-out split")
    rng = np.random.default_rng(seed)
    train = [train[i] for i in rng.permutation(len(train))]
    labels = {1: LABEL_PREFIX + positive_label, 0: LABEL_PREFIX + negative_label}
    with tempfile.TemporaryDirectory(prefix="dataengine-fasttext-") as tmp:
        train_file = os.path.join(tmp, "train.txt")
        with open(train_file, "w", encoding="utf-8") as fh:
            for text, y in train:
                fh.write(f"{labels[y]} {text}\n")
        params = {"epoch": epoch, "lr": lr, "wordNgrams": word_ngrams, "dim": dim, "minCount": min_count, "thread": threads, "seed": seed}
        model = fasttext.train_supervised(input=train_file, verbose=0, **params)
        model_file = os.path.join(tmp, "model.bin")
        model.save_model(model_file)
        scorer = FastTextScorer(model_file, positive_label)
        scores = scorer([t for t, _ in test])
        metrics = binary_metrics(np.array([y for _, y in test]), scores)
        metrics.update(
            {
                "positive_label": positive_label,
                "negative_label": negative_label,
                "holdout": holdout,
                "seed": seed,
                "train_positive": sum(y for _, y in train),
                "train_negative": sum(1 - y for _, y in train),
                "fasttext": params,
            }
        )
        import json

        return wh.register_model(
            name,
            model_file,
            kind="fasttext",
            labels=[positive_label, negative_label],
            metrics=metrics,
            training_sql=json.dumps({"positive": positive_sql, "negative": negative_sql}),
        )
