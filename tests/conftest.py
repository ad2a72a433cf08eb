"""Shared fixtures: a real DuckLake warehouse per test, a small real corpus, the CLI."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from dataengine.warehouse import Warehouse, init_warehouse


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    """A fresh warehouse with the default (SQLite) catalog."""
    init_warehouse(tmp_path / "wh")
    return Warehouse(tmp_path / "wh")


def demo_records() -> list[dict]:
    path = resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture
def corpus_files(tmp_path) -> list[Path]:
    """The demo corpus split into 8 JSONL files (8 shards), 400 documents in all."""
    records = demo_records()
    folder = tmp_path / "corpus"
    folder.mkdir()
    files = []
    for i in range(8):
        path = folder / f"part-{i}.jsonl"
        with open(path, "w") as fh:
            for rec in records[i::8]:
                fh.write(json.dumps(rec) + "\n")
        files.append(path)
    return files


def run_cli(*args: str, warehouse: str | os.PathLike | None = None, check: bool = False, timeout: float = 300, **kw):
    """Run the real `dataengine` CLI in a subprocess."""
    cmd = [sys.executable, "-P", "-m", "dataengine.cli"]  # -P: the repository folder is not on sys.path
    if warehouse is not None:
        cmd += ["--warehouse", str(warehouse)]
    cmd += list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
