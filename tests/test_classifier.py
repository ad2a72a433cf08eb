"""Classifier training through the CLI on real text, the scoring stage, and its up-front errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import run_cli
from dataengine.core.errors import StageError
from dataengine.filters.classifiers import Classifiers
from dataengine.warehouse import Warehouse

DATA = Path(__file__).parent / "data"
ARTICLES = "SELECT text FROM pages WHERE kind = 'article'"
BOILERPLATE = "SELECT text FROM pages WHERE kind = 'boilerplate'"


def _one_line_error(proc, needle: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], proc.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A warehouse with the article/boilerplate pages and a classifier trained by the CLI."""
    w = tmp_path_factory.mktemp("cls") / "w"
    run_cli("init", warehouse=w, check=True)
    run_cli("run", "--from", str(DATA / "aeb_quality.jsonl.gz"), "--to", "pages", "-q", warehouse=w, check=True)
    proc = run_cli("classifier", "train", "--positive", ARTICLES, "--negative", BOILERPLATE, "--name", "article",
                   warehouse=w, check=True)
    return w, proc


@pytest.mark.slow
def test_cli_training_separates_held_out_pages(trained):
    w, proc = trained
    assert "trained article@1" in proc.stdout
    wh = Warehouse(w)
    row = wh.sql("SELECT * FROM dataengine.models WHERE name = 'article'").to_pylist()[0]
    metrics = json.loads(row["metrics"])
    # real article bodies vs real page boilerplate, held out by hash: far better than chance
    assert metrics["test_positive"] >= 15 and metrics["test_negative"] >= 15
    assert metrics["roc_auc"] >= 0.9
    assert metrics["accuracy"] >= metrics["majority_baseline_accuracy"] + 0.25
    assert metrics["precision"] >= 0.8 and metrics["recall"] >= 0.8
    folder = Path(w) / "models" / "article" / "v1"
    assert (folder / "model.bin").stat().st_size > 0
    assert json.loads((folder / "metrics.json").read_text())["roc_auc"] == metrics["roc_auc"]
    assert json.loads(row["training_sql"]) == {"positive": ARTICLES, "negative": BOILERPLATE}
    assert json.loads(row["labels"]) == ["hq", "lq"]
    print(f"held-out: {metrics}")


@pytest.mark.slow
def test_training_again_adds_a_version(trained):
    w, _ = trained
    run_cli("classifier", "train", "--positive", ARTICLES, "--negative", BOILERPLATE, "--name", "article",
            "--epoch", "5", warehouse=w, check=True)
    listing = run_cli("classifier", "list", warehouse=w, check=True).stdout
    assert "article@1" in listing and "article@2" in listing
    versions = Warehouse(w).sql("SELECT version FROM dataengine.models WHERE name = 'article' ORDER BY 1")
    assert versions.column(0).to_pylist() == [1, 2]
    assert (Path(w) / "models" / "article" / "v2" / "model.bin").exists()


@pytest.mark.slow
def test_scoring_stage_by_name_and_by_path(trained):
    w, _ = trained
    path = str(Path(w) / "models" / "article" / "v1" / "model.bin")
    spec = f"classifiers:classifiers=[{{name: art, model: article@1}}, {{name: boiler, model: '{path}', label: lq}}]"
    run_cli("run", "--from", "pages", "--stage", spec, "--to", "scored", "-q", warehouse=w, check=True)
    rows = Warehouse(w).sql(
        "SELECT kind AS kind, avg(art_score) AS art, avg(boiler_score) AS boiler, count(art_score) AS n "
        "FROM scored GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    article, boiler = rows
    assert article["kind"] == "article" and article["art"] > 0.8 and boiler["art"] < 0.2
    # the same model scored for the other label is its complement
    assert article["art"] + article["boiler"] == pytest.approx(1.0, abs=1e-3)
    assert article["n"] + boiler["n"] == 362


def test_stage_scores_equal_a_plain_fasttext_loop(trained):
    import fasttext

    w, _ = trained
    path = str(Path(w) / "models" / "article" / "v1" / "model.bin")
    texts = Warehouse(w).sql("SELECT text FROM pages ORDER BY id LIMIT 50").column(0).to_pylist()
    stage = Classifiers({"classifiers": [{"name": "art", "model": path, "label": "hq"}]})
    got = stage(pa.table({"text": texts}))["art_score"].to_numpy()
    model = fasttext.load_model(path)
    expected = []
    for t in texts:
        labels, probs = model.predict(t.replace("\n", " "), k=-1)
        expected.append(dict(zip(labels, probs))["__label__hq"])
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.slow
def test_missing_model_fails_before_any_work(trained):
    w, _ = trained
    wh = Warehouse(w)
    before = wh.current_snapshot()
    runs_dir = Path(w) / "data" / "_runs"
    runs_before = set(os.listdir(runs_dir))
    missing = run_cli("run", "--from", "pages", "--stage", "classifiers:classifiers=[{name: x, model: /nope/model.bin}]",
                      "--to", "scored2", "-q", warehouse=w)
    _one_line_error(missing, "does not exist")
    unknown = run_cli("run", "--from", "pages", "--stage", "classifiers:classifiers=[{name: x, model: no_such_model}]",
                      "--to", "scored2", "-q", warehouse=w)
    _one_line_error(unknown, "no model named 'no_such_model'")
    bad_version = run_cli("run", "--from", "pages", "--stage", "classifiers:classifiers=[{name: x, model: article@9}]",
                          "--to", "scored2", "-q", warehouse=w)
    _one_line_error(bad_version, "has no version 9")
    assert wh.current_snapshot() == before
    assert set(os.listdir(runs_dir)) == runs_before  # no run folder: nothing started


def test_label_mismatch_fails_before_any_work(trained, tmp_path):
    w, _ = trained
    path = str(Path(w) / "models" / "article" / "v1" / "model.bin")
    proc = run_cli("run", "--from", "pages", "--stage", f"classifiers:classifiers=[{{name: x, model: '{path}', label: edu}}]",
                   "--to", "scored3", "-q", warehouse=w)
    _one_line_error(proc, "label 'edu' is not one of the model's labels ['hq', 'lq']")
    assert not Warehouse(w).table_exists("scored3")
    not_a_model = tmp_path / "junk.bin"
    not_a_model.write_bytes(b"x" * 200)
    with pytest.raises(StageError, match="not a fastText model"):
        Classifiers({"classifiers": [{"name": "x", "model": str(not_a_model), "label": "hq"}]})
    with pytest.raises(StageError, match="give the positive `label`"):
        Classifiers({"classifiers": [{"name": "x", "model": path}]})


# -- Hugging Face models from a local path ------------------------------------------------

def _tiny_bert(folder: Path, num_labels: int, id2label: dict | None = None) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(0)
    words = "the a of and to in is was for on article page cookie privacy login menu home news city river".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=num_labels)
    if id2label:
        config.id2label = id2label
        config.label2id = {v: k for k, v in id2label.items()}
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _direct_scores(folder: Path, texts: list[str], index: int | None):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    out = []
    with torch.inference_mode():
        for t in texts:
            logits = model(**tok(t, return_tensors="pt", truncation=True, max_length=64)).logits[0]
            out.append(float(logits[0]) if index is None else float(torch.softmax(logits, -1)[index]))
    return np.array(out)


@pytest.mark.slow
def test_hf_classifier_and_regression_from_a_local_path(tmp_path):
    texts = ["the city and the river", "login menu home cookie privacy", "", "news of the city was on the page"]
    cls_dir = _tiny_bert(tmp_path / "cls", 2, {0: "low", 1: "high"})
    reg_dir = _tiny_bert(tmp_path / "reg", 1)
    stage = Classifiers(
        {
            "classifiers": [
                {"name": "cls", "model": str(cls_dir), "label": "high"},
                {"name": "edu", "model": str(reg_dir)},
            ],
            "batch_size": 3,
            "max_length": 64,
        }
    )
    out = stage(pa.table({"text": texts}))
    cls = out["cls_score"].to_numpy()
    edu = out["edu_score"].to_numpy()
    np.testing.assert_allclose(cls, _direct_scores(cls_dir, texts, 1), atol=1e-4)
    np.testing.assert_allclose(edu, _direct_scores(reg_dir, texts, None), atol=1e-4)
    assert ((cls > 0) & (cls < 1)).all()
    with pytest.raises(StageError, match="label 'edu' is not one of the model's labels"):
        Classifiers({"classifiers": [{"name": "x", "model": str(cls_dir), "label": "edu"}]})
    with pytest.raises(StageError, match="no config.json"):
        Classifiers({"classifiers": [{"name": "x", "model": str(tmp_path), "kind": "hf"}]})
