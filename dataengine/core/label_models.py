"""Predicting a class label for texts with a fastText or Hugging Face classifier.

The quality classifiers (:mod:`dataengine.core.classifier_models`) score one positive
label; a label check needs the model's best label among all of them, which is what
:func:`label_predictor` returns, for the same model files (``inspect_model`` checks them).
"""

from __future__ import annotations

from typing import Callable

from dataengine.core.classifier_models import LABEL_PREFIX, inspect_model
from dataengine.core.errors import StageError

LabelPredictor = Callable[[list[str]], list[str]]


def label_predictor(path: str, kind: str = "auto", batch_size: int = 32, max_length: int = 512) -> LabelPredictor:
    """A function from texts to their most probable labels (``__label__`` removed)."""
    info = inspect_model(path, kind)
    if info.regression:
        raise StageError(f"{path} is a regression model: a label check needs a classifier with labels")
    if info.kind == "fasttext":
        import fasttext

        fasttext.FastText.eprint = lambda *a, **k: None  # silence the load-model warning
        model = fasttext.load_model(path)

        def predict_fasttext(texts: list[str]) -> list[str]:
            if not texts:
                return []
            labels, _ = model.predict([" ".join(t.split()) for t in texts], k=1)
            return [lab[0][len(LABEL_PREFIX):] if lab and lab[0].startswith(LABEL_PREFIX) else (lab[0] if lab else "")
                    for lab in labels]

        return predict_fasttext
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    names = info.labels

    def predict_hf(texts: list[str]) -> list[str]:
        out: list[str] = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                max_length=max_length, return_tensors="pt")
                out.extend(names[i] for i in model(**enc).logits.argmax(-1).tolist())
        return out

    return predict_hf
