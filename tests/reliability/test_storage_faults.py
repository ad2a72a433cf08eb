"""Storage faults: a damaged staged file, a full disk during the commit.

A staged shard file damaged after its done marker was written (a disk error, a stray
editor) is found before anything is registered; a catalog on a full disk fails the commit
with the cause and leaves the table as it was. In both cases a re-run completes.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest

from conftest import demo_records, run_cli
from faults import ROOT, done_markers, kill_group, leftovers, split_corpus, start_cli, wait_for

pytestmark = pytest.mark.slow  # real processes racing or failing: see docs/reliability.md


def test_a_damaged_staged_file_is_found_before_the_commit_and_redone(wh, tmp_path):
    corpus = split_corpus(tmp_path / "corpus", demo_records(), parts=1, files=8)[0]
    args = ["run", "--from", corpus, "--stage", "throttle:seconds=0.5", "--to", "raw", "--workers", "1", "-q"]
    proc = start_cli(wh.config.root, *args)
    wait_for(lambda: len(done_markers(wh.config.root)) >= 3, proc, what="3 staged shards")
    kill_group(proc)
    staged = sorted(glob.glob(os.path.join(wh.config.runs_path, "*", "file-*.parquet")))
    assert len(staged) >= 3
    victim = staged[1]
    with open(victim, "r+b") as fh:  # damage the footer: the last bytes of a Parquet file
        fh.seek(-64, os.SEEK_END)
        fh.write(b"\x00" * 64)
    before = wh.current_snapshot()

    first = run_cli(*args, warehouse=wh.config.root)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "damaged" in first.stderr and os.path.basename(victim) in first.stderr and "Traceback" not in first.stderr
    assert wh.current_snapshot() == before and not wh.table_exists("raw")  # nothing registered

    run_cli(*args, warehouse=wh.config.root, check=True)  # redoes the damaged shard only
    assert wh.sql("SELECT count(*) FROM raw").column(0)[0].as_py() == 400
    assert wh.sql("SELECT count(DISTINCT id) FROM raw").column(0)[0].as_py() == 400
    assert leftovers(wh.config.root) == []


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt && umount /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs `unshare -rm` (user namespaces) to mount a small tmpfs")
def test_a_full_disk_during_the_commit_commits_nothing_and_a_rerun_completes(tmp_path):
    """The catalog lives on a 4 MiB tmpfs (in a private mount namespace), the data elsewhere;
    the tmpfs is filled up between the staging of the shards and their commit."""
    batches = split_corpus(tmp_path / "corpus", demo_records())
    mnt, data = tmp_path / "mnt", tmp_path / "data"
    mnt.mkdir()
    data.mkdir()
    cli = f"{sys.executable} -m dataengine.cli --warehouse {mnt}/wh"
    script = f"""
set -u
mount -t tmpfs -o size=4m tmpfs {mnt}
{cli} init --data-path {data} >/dev/null
{cli} run --from '{batches[0]}' --to raw -q >/dev/null && echo "FIRST ok"
dd if=/dev/zero of={mnt}/filler bs=16k 2>/dev/null
{cli} run --from '{batches[1]}' --to raw --mode append -q; echo "FULL rc=$?"
{cli} sql "SELECT count(*) AS n FROM raw" --format csv | tail -1 | sed 's/^/COUNT /'
rm {mnt}/filler
{cli} run --from '{batches[1]}' --to raw --mode append -q >/dev/null; echo "AGAIN rc=$?"
{cli} sql "SELECT count(*) AS n, count(DISTINCT id) AS d FROM raw" --format csv | tail -1 | sed 's/^/FINAL /'
{cli} sql "SELECT count(*) AS n FROM dataengine.runs" --format csv | tail -1 | sed 's/^/RUNS /'
"""
    proc = subprocess.run(["unshare", "-rm", "bash", "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    out = proc.stdout + proc.stderr
    assert "FIRST ok" in out, out
    assert "FULL rc=1" in out and ("disk is full" in out.lower() or "no space left on device" in out.lower()), out
    assert "Traceback" not in out, out
    assert "COUNT 200" in out, out  # the table as it was before the failed commit
    assert "AGAIN rc=0" in out and "FINAL 400,400" in out and "RUNS 2" in out, out
