"""Hostile inputs through the real CLI under a memory watchdog: good records kept, bad ones
counted, whole-file failures in one line, peak RSS under 1 GB whatever the inflated size.

Each case ingests a folder holding one hostile file and one good WARC. The CLI runs with one
worker (in its own process) while a watchdog kills it above 2 GB, so a regression fails the
test instead of the machine; the kernel's own peak RSS of the process (wait4) must be < 1 GB.
``benchmarks/bench_hostile_inputs.py`` prints the same measurements for RESULTS.md.
"""

from __future__ import annotations

import pytest

import hostile
from faults import run_with_memory_watchdog

LIMIT = 2 * 2**30  # the watchdog's kill line
TARGET = 2**30  # the target: under 1 GB for every hostile input


CASES = {
    # name: (make the file, rows kept from it, expected skip counts (subset), file error text or None)
    "gzip_bomb": (hostile.gzip_bomb, 0, {"unreadable_file": 1}, "gzip data that is not WARC or ARC"),
    "2gib_record": (hostile.huge_record, 2, {"too_large": 1}, None),
    "garbage_between_members": (hostile.garbage_between_members, 16, {"resyncs": 1, "skipped_bytes": 5000}, None),
    "2gib_header_line": (hostile.header_line_bomb, 2, {"resyncs": 1}, None),
    "content_encoding_bomb": (hostile.content_encoding_bomb, 2, {"too_large": 1}, None),
    "empty_warc": (hostile.empty_warc, 0, {"empty_file": 1}, "empty file"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_warc_input(wh, tmp_path, case):
    make, kept, skips, file_error = CASES[case]
    folder = tmp_path / "in"
    folder.mkdir()
    make(folder / f"{case}.warc.gz")
    hostile.good_warc(folder / "good.warc.gz", first=900, count=4)
    rc, out, peak = run_with_memory_watchdog(
        wh.config.root, ["run", "--from", str(folder / "*.warc.gz"), "--to", "docs", "--workers", "1"], LIMIT)
    assert rc == 0, out
    assert peak < TARGET, f"{case}: peak RSS {peak / 2**20:.0f} MiB"
    assert wh.sql("SELECT count(*) FROM docs").column(0)[0].as_py() == kept + 4
    stats = wh.sql("SELECT stats FROM dataengine.runs").column(0)[0].as_py()
    import json

    source = json.loads(stats).get("(source)", {})
    for reason, n in skips.items():
        assert source.get("skipped", {}).get(reason) == n, (case, source)
    if file_error:
        assert any(file_error in line and case in line for line in source["file_errors"]), source
        assert file_error in out  # printed, one line per unreadable file
    assert "Traceback" not in out


@pytest.mark.slow
def test_100k_deep_html_is_counted_and_its_neighbours_extracted(wh, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    hostile.deep_html(folder / "deep.warc.gz")
    rc, out, peak = run_with_memory_watchdog(
        wh.config.root, ["run", "--from", str(folder / "*.warc.gz"), "--stage", "extract", "--to", "docs",
                         "--workers", "1"], LIMIT)
    assert rc == 0, out
    assert peak < TARGET, f"peak RSS {peak / 2**20:.0f} MiB"
    rows = wh.sql("SELECT url, text FROM docs ORDER BY url").to_pylist()
    assert len(rows) == 3
    good = [r for r in rows if not r["url"].endswith("/501")]
    assert all("Readable text number" in r["text"] for r in good)
    deep = next(r for r in rows if r["url"].endswith("/501"))
    assert deep["text"] in (None, "deep")  # refused as too deep (counted) or extracted: never a crash


@pytest.mark.slow
def test_a_file_that_is_not_parquet_is_reported_and_the_others_ingested(wh, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-broken.parquet").write_bytes(b"PAR1 this is not a parquet file at all")
    pq.write_table(pa.table({"id": ["1", "2"], "text": ["one", "two"]}), folder / "b-good.parquet")
    rc, out, _ = run_with_memory_watchdog(
        wh.config.root, ["run", "--from", str(folder / "*.parquet"), "--to", "docs", "--workers", "1"], LIMIT)
    assert rc == 0 and "Traceback" not in out, out
    assert wh.sql("SELECT count(*) FROM docs").column(0)[0].as_py() == 2
    stats = wh.sql("SELECT stats FROM dataengine.runs").column(0)[0].as_py()
    assert "a-broken.parquet" in stats and "a-broken.parquet" in out
    assert "partial failure" in out and "--new-run" in out


@pytest.mark.slow
def test_bad_values_in_jsonl_and_parquet_cost_the_value_not_the_file(wh, tmp_path):
    import gzip
    import json

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    folder.mkdir()
    # JSONL: a lone surrogate, a line that is not JSON, and a 300 MB line, between good records
    with gzip.open(folder / "a.jsonl.gz", "wb", compresslevel=1) as fh:
        fh.write(b'{"id": "j1", "text": "good one"}\n')
        fh.write(b'{"id": "j2", "text": "lone \\ud83d surrogate"}\n')
        fh.write(b'{"id": "j3", "text": "' + b"x" * (300 * 2**20) + b'"}\n')
        fh.write(b'not json at all\n')
        fh.write(json.dumps({"id": "j5", "text": "good five"}).encode() + b"\n")
    rc, out, peak = run_with_memory_watchdog(
        wh.config.root, ["run", "--from", str(folder / "a.jsonl.gz"), "--to", "docs", "--workers", "1"], LIMIT)
    assert rc == 0 and "Traceback" not in out, out
    rows = {r["id"]: r["text"] for r in wh.sql("SELECT id, text FROM docs").to_pylist()}
    assert rows == {"j1": "good one", "j2": "lone \ufffd surrogate", "j5": "good five"}
    assert peak < TARGET, f"peak RSS {peak / 2**20:.0f} MiB"
    skipped = json.loads(wh.sql("SELECT stats FROM dataengine.runs").column(0)[0].as_py())["(source)"]["skipped"]
    assert skipped == {"invalid_unicode": 1, "too_long_line": 1, "bad_json": 1}

    # Parquet: invalid UTF-8 in a string column (Parquet does not check it), one value per row group
    values = [b"good", b"bad\xff\xfe bytes", b"fine"]
    offsets = np.cumsum([0] + [len(v) for v in values]).astype(np.int32)
    text = pa.Array.from_buffers(pa.string(), 3, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(values))])
    pq.write_table(pa.table({"id": ["p1", "p2", "p3"], "text": text}), folder / "b.parquet", row_group_size=1)
    rc, out, _ = run_with_memory_watchdog(
        wh.config.root, ["run", "--from", str(folder / "b.parquet"), "--to", "pq", "--workers", "1"], LIMIT)
    assert rc == 0 and "Traceback" not in out, out
    rows = {r["id"]: r["text"] for r in wh.sql("SELECT id, text FROM pq").to_pylist()}
    assert rows == {"p1": "good", "p2": "bad\ufffd\ufffd bytes", "p3": "fine"}
