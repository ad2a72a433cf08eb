"""Servers a run starts listen on loopback only, unless the user opens them on purpose."""

from __future__ import annotations

import re
import shutil
import subprocess

import psutil
import pytest

from conftest import demo_records
from faults import done_markers, finish, split_corpus, start_cli, wait_for

pytestmark = pytest.mark.slow  # real processes racing or failing: see docs/reliability.md


def tcp_listeners(pids: set[int]) -> list[tuple[str, int]]:
    """(address, pid) of every listening TCP socket of ``pids``: from `ss -ltnp` (psutil where
    ss is not installed)."""
    if shutil.which("ss"):
        out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
        found = []
        for line in out.splitlines():
            fields = line.split()
            local = fields[3]
            for pid in map(int, re.findall(r"pid=(\d+)", line)):
                if pid in pids:
                    found.append((local.rsplit(":", 1)[0].strip("[]"), pid))
        return found
    return [(c.laddr.ip, c.pid) for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in pids]


def _tree(pid: int) -> set[int]:
    try:
        proc = psutil.Process(pid)
        return {pid} | {c.pid for c in proc.children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def test_a_dask_run_listens_only_on_loopback(wh, tmp_path):
    files = split_corpus(tmp_path / "corpus", demo_records(), parts=1, files=4)[0]
    proc = start_cli(wh.config.root, "run", "--from", files, "--stage", "throttle:seconds=1.5", "--to", "raw",
                     "--executor", "dask", "--workers", "2", "-q")
    # while the workers are busy with their first shards, the whole cluster is up
    wait_for(lambda: len(tcp_listeners(_tree(proc.pid))) >= 3, proc, what="the Dask cluster to listen")
    listeners = tcp_listeners(_tree(proc.pid))
    rc, out = finish(proc)
    assert rc == 0, out
    # scheduler, dashboard, and each worker and nanny: all of them, and only, on 127.0.0.1
    assert len(listeners) >= 4, listeners
    assert {addr for addr, _ in listeners} == {"127.0.0.1"}, listeners
    assert len(done_markers(wh.config.root)) == 4
