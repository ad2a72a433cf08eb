"""SIGKILL of the driver or of a worker at random points; the re-run completes with exact rows.

For every case: nothing half-written is visible after the kill (the table is at its old
snapshot, or the run is committed whole), the re-run of the same command exits 0, the table
has exactly the rows an uninterrupted run gives, and no partial files are left behind. The
kill point is drawn from a seeded RNG (see ``faults.fault_rng``): the message of a failure
names the seed and the point.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from conftest import demo_records, run_cli
from faults import (
    done_markers,
    fault_rng,
    finish,
    kill_at_random_point,
    kill_group,
    leftovers,
    pool_workers,
    split_corpus,
    start_cli,
    wait_for,
)


def _state(wh, table: str) -> tuple[int, int | None]:
    count = wh.sql(f"SELECT count(*) FROM {table}").column(0)[0].as_py() if wh.table_exists(table) else None
    return wh.current_snapshot(), count


@pytest.fixture
def corpus(tmp_path):
    return split_corpus(tmp_path / "corpus", demo_records(), parts=1, files=8)[0]


def _expected_ids(records) -> set[str]:
    return {r["id"] for r in records}  # JSONL ingest keeps the user's ids


INGEST = ["run", "--from", None, "--stage", "text_stats", "--stage", "throttle:seconds=0.4", "--to", "raw",
          "--workers", "2", "-q"]


def _ingest_args(corpus: str) -> list[str]:
    return [corpus if a is None else a for a in INGEST]


def _check_after_kill(wh, before: tuple, table: str, where: str, seed: int, full_rows: int) -> None:
    """Either nothing of the run is visible, or all of it is (a kill after the commit)."""
    after = _state(wh, table)
    assert after == before or (after[0] == before[0] + 1 and after[1] == (before[1] or 0) + full_rows), (
        f"half-written state {after} (before {before}), killed {where}, seed {seed}")


@pytest.mark.slow
def test_driver_killed_during_ingest_resumes_exactly(wh, corpus, request):
    seed, rng = fault_rng(request.node.name)
    before = _state(wh, "raw")
    proc = start_cli(wh.config.root, *_ingest_args(corpus))
    where = kill_at_random_point(proc, wh.config.root, shards=8, rng=rng)
    _check_after_kill(wh, before, "raw", where, seed, 400)
    run_cli(*_ingest_args(corpus), warehouse=wh.config.root, check=True)
    ids = wh.sql("SELECT id FROM raw").column(0).to_pylist()
    assert len(ids) == 400 and set(ids) == _expected_ids(demo_records()), f"killed {where}, seed {seed}"
    assert leftovers(wh.config.root) == [], f"killed {where}, seed {seed}"
    assert wh.sql("SELECT count(*) FROM dataengine.runs").column(0)[0].as_py() == 1


@pytest.mark.slow
def test_a_killed_pool_worker_fails_the_run_clearly_and_the_rerun_completes(wh, corpus):
    proc = start_cli(wh.config.root, *_ingest_args(corpus))
    wait_for(lambda: len(pool_workers(proc.pid)) >= 1 and len(done_markers(wh.config.root)) >= 1, proc,
             what="a busy pool worker")
    os.kill(pool_workers(proc.pid)[0], signal.SIGKILL)
    rc, out = finish(proc)
    assert rc == 1 and "a worker process died" in out and "Traceback" not in out, out
    assert not wh.table_exists("raw")
    run_cli(*_ingest_args(corpus), warehouse=wh.config.root, check=True)
    assert wh.sql("SELECT count(DISTINCT id) FROM raw").column(0)[0].as_py() == 400
    assert wh.sql("SELECT count(*) FROM raw").column(0)[0].as_py() == 400
    assert leftovers(wh.config.root) == []


@pytest.mark.slow
def test_driver_killed_during_an_annotation_in_place_resumes_exactly(wh, corpus, request):
    seed, rng = fault_rng(request.node.name)
    run_cli("run", "--from", corpus, "--to", "raw", "-q", warehouse=wh.config.root, check=True)
    before = _state(wh, "raw")
    args = ["run", "--from", "raw", "--stage", "text_stats", "--stage", "throttle:seconds=0.4", "--to", "raw",
            "--partitions", "6", "--workers", "2", "-q"]
    proc = start_cli(wh.config.root, *args)
    where = kill_at_random_point(proc, wh.config.root, shards=6 + 8, rng=rng)  # the ingest's 8 markers count too
    after = _state(wh, "raw")
    assert after[1] == 400 and after[0] in (before[0], before[0] + 1), f"killed {where}, seed {seed}"
    run_cli(*args, warehouse=wh.config.root, check=True)
    rows = wh.sql("SELECT text, text_words FROM raw").to_pylist()
    assert len(rows) == 400 and all(r["text_words"] == len(r["text"].split()) for r in rows), f"killed {where}"
    assert leftovers(wh.config.root) == []


@pytest.mark.slow
def test_driver_killed_during_dedup_resumes_to_the_uninterrupted_result(wh, tmp_path, corpus, request):
    from dataengine.warehouse import Warehouse, init_warehouse

    seed, rng = fault_rng(request.node.name)
    records = demo_records()
    copies = [{**r, "id": f"{r['id']}-copy"} for r in records[:60]]  # 60 exact copies of the text
    dup_corpus = split_corpus(tmp_path / "dups", records + copies, parts=1, files=8)[0]
    args = ["run", "--from", dup_corpus, "--stage", "throttle:seconds=0.3", "--stage", "exact_dedup",
            "--stage", "text_stats", "--to", "dedup", "--workers", "2", "-q"]
    proc = start_cli(wh.config.root, *args)
    where = kill_at_random_point(proc, wh.config.root, shards=16, rng=rng)  # 8 map + 8 apply shards
    assert not wh.table_exists("dedup") or wh.sql("SELECT count(*) FROM dedup").column(0)[0].as_py() == 460
    run_cli(*args, warehouse=wh.config.root, check=True)

    init_warehouse(tmp_path / "clean")
    clean = Warehouse(tmp_path / "clean")
    run_cli(*args, warehouse=clean.config.root, check=True)
    q = "SELECT id, dup_cluster_size, dup_keep, text_words FROM dedup ORDER BY id"
    got, want = wh.sql(q).to_pylist(), clean.sql(q).to_pylist()
    assert got == want, f"killed {where}, seed {seed}"
    assert sum(not r["dup_keep"] for r in got) == 60
    assert leftovers(wh.config.root) == []


@pytest.mark.slow
def test_blend_freeze_killed_during_export_records_one_complete_version(wh, corpus, request):
    import hashlib
    import time
    from pathlib import Path

    seed, rng = fault_rng(request.node.name)
    run_cli("run", "--from", corpus, "--to", "docs", "-q", warehouse=wh.config.root, check=True)
    run_cli("blend", "create", "mix", "-c", "all=SELECT id, text FROM docs:1", warehouse=wh.config.root, check=True)
    freeze = ["blend", "freeze", "mix", "--tokenizer", "gpt2"]
    proc = start_cli(wh.config.root, *freeze)
    delay = rng.uniform(1.0, 4.0)  # imports, resolving, tokenizing, recording: anywhere in there
    time.sleep(delay)
    kill_group(proc)
    run_cli(*freeze, warehouse=wh.config.root, check=True)
    versions = wh.sql("SELECT version, tokens FROM dataengine.blend_versions WHERE blend = 'mix' ORDER BY 1").to_pylist()
    # the killed attempt recorded a whole version or none; the re-run recorded the next one
    assert [v["version"] for v in versions] in ([1], [1, 2]), f"killed after {delay:.2f}s, seed {seed}"
    assert len({v["tokens"] for v in versions}) == 1
    comps = wh.sql("SELECT version, count(*) AS n FROM dataengine.blend_version_components GROUP BY 1").to_pylist()
    assert all(c["n"] == 1 for c in comps) and len(comps) == len(versions)
    # the token files are complete: their bytes hash to what their done records say
    done_files = list(Path(wh.config.root).glob("exports/tokens/*/*/done.json"))
    assert len(done_files) == 1
    rec = json.loads(done_files[0].read_text())
    assert hashlib.sha256(Path(rec["prefix"] + ".bin").read_bytes()).hexdigest() == rec["bin_sha256"]
    assert rec["tokens"] == versions[-1]["tokens"]
