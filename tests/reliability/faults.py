"""Helpers of the fault-injection suite: start the real CLI, wait for a point in a run, kill it.

Every helper works on real processes (the ``dataengine`` CLI in a subprocess, its own
process group) so a kill is a real SIGKILL of the driver and of everything it started.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_cmd(warehouse, *args: str) -> list[str]:
    return [sys.executable, "-m", "dataengine.cli", "--warehouse", str(warehouse), *map(str, args)]


def start_cli(warehouse, *args: str, env: dict | None = None) -> subprocess.Popen:
    """The CLI in its own process group (so a kill takes its workers too)."""
    return subprocess.Popen(
        cli_cmd(warehouse, *args),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    """Wait for ``proc``; returns (exit code, stdout + stderr)."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def wait_for(predicate, proc: subprocess.Popen | None = None, timeout: float = 120, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail if ``proc`` ends first or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended (rc {proc.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def done_markers(warehouse) -> list[str]:
    """Done markers of every run folder of ``warehouse`` (last segment and intermediate ones)."""
    runs = os.path.join(str(warehouse), "data", "_runs")
    return glob.glob(os.path.join(runs, "*", "*.done.json")) + glob.glob(os.path.join(runs, "*", "segment-*", "*.done.json"))


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and every process it started (its session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def leftovers(warehouse) -> list[str]:
    """Partial files a killed attempt can leave: ``*.tmp-PID`` staged files and commit folders."""
    runs = os.path.join(str(warehouse), "data", "_runs")
    found = glob.glob(os.path.join(runs, "**", "*.tmp-*"), recursive=True)
    found += glob.glob(os.path.join(runs, "_commit", "commit-*"))
    return sorted(found)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
    return path


def split_corpus(folder: Path, records: list[dict], parts: int = 2, files: int = 4) -> list[str]:
    """``records`` as ``parts`` folders of ``files`` JSONL files each; returns a glob per folder."""
    size = len(records) // parts
    globs = []
    for half in range(parts):
        chunk = records[half * size : (half + 1) * size]
        for i in range(files):
            write_jsonl(folder / f"batch{half}" / f"part-{i}.jsonl", chunk[i::files])
        globs.append(str(folder / f"batch{half}" / "*.jsonl"))
    return globs


def fault_rng(name: str):
    """A seeded RNG per test: the seed is DATAENGINE_FAULT_SEED (default 20) plus the test's name,
    so a failure is reproduced by running the test again with the seed its message prints."""
    import random
    import zlib

    seed = int(os.environ.get("DATAENGINE_FAULT_SEED", "20"))
    return seed, random.Random(seed * 1_000_003 + zlib.crc32(name.encode()))


def kill_at_random_point(proc: subprocess.Popen, warehouse, shards: int, rng, settle: float = 0.6) -> str:
    """SIGKILL ``proc`` (and its workers) once a random number of shards (0..shards) is done,
    after a further random delay: anywhere from the first shard to the commit window.
    Returns where it was killed, for messages."""
    target = rng.randint(0, shards)
    delay = rng.uniform(0.0, settle)
    wait_for(lambda: len(done_markers(warehouse)) >= target or proc.poll() is not None, timeout=180,
             what=f"{target} done shards")
    time.sleep(delay)
    finished = proc.poll() is not None
    kill_group(proc)
    return f"after {target} shards + {delay:.2f}s" + (" (it had finished)" if finished else "")


def pool_workers(pid: int) -> list[int]:
    """Process ids of the spawned pool workers of the driver ``pid`` (not the resource tracker)."""
    import psutil

    workers = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in cmd:
            workers.append(child.pid)
    return workers


def run_with_memory_watchdog(warehouse, args: list[str], limit: int, timeout: float = 300) -> tuple[int, str, int]:
    """Run the CLI; kill it if its RSS passes ``limit`` bytes. Returns (exit code, output,
    peak RSS in bytes: the largest VmHWM of the CLI or any of its worker processes).

    Not ``ru_maxrss`` from wait4: the kernel carries the forking process's high-water mark
    across exec into it, so a CLI started from a pytest process that has grown to 1 GB by
    earlier tests would "peak" at 1 GB whatever it did. VmHWM belongs to the exec'd image;
    it is polled every 20 ms (the last 20 ms before exit can go unseen)."""
    import threading

    import psutil

    proc = subprocess.Popen(cli_cmd(warehouse, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    exceeded = []
    high_water: dict[int, int] = {}

    def watch():
        try:
            ps = psutil.Process(proc.pid)
            while proc.returncode is None:
                tree = [ps, *ps.children(recursive=True)]
                for p in tree:
                    high_water[p.pid] = max(high_water.get(p.pid, 0), _vm_hwm(p.pid))
                rss = sum(p.memory_info().rss for p in tree)
                if rss > limit:
                    exceeded.append(rss)
                    proc.kill()
                    return
                time.sleep(0.02)
        except psutil.Error:
            return

    threading.Thread(target=watch, daemon=True).start()
    chunks = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    deadline = time.time() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.time() > deadline:
            proc.kill()
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(10)
    out = b"".join(chunks).decode(errors="replace")
    assert not exceeded, f"killed by the watchdog at {exceeded[0] / 2**20:.0f} MiB RSS:\n{out[-3000:]}"
    del usage  # ru_maxrss would include the forking pytest process's high-water mark
    assert high_water, "the CLI exited before its memory could be sampled once"
    return proc.returncode, out, max(high_water.values(), default=0)


def _vm_hwm(pid: int) -> int:
    """Peak resident set size of process ``pid`` since its exec, in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
