"""Peak memory of ingesting hostile inputs: dataengine vs warcio reading the same file.

Every hostile file of ``tests/reliability/hostile.py`` (a 2 MB gzip bomb named .warc.gz
inflating to 2 GiB, a 2 GiB record, a 2 GiB header line, a 1 GiB Content-Encoding bomb,
garbage between gzip members, a 100,000-deep page) goes next to a good 4-record WARC into
`dataengine run --from DIR/*.warc.gz --to docs --workers 1` (the deep page also through
`--stage extract`). The peer is a plain warcio loop over the hostile file
(``ArchiveIterator`` + ``content_stream().read()``), which is what the WARC reader fell back
to before. Peak RSS is the kernel's (``ru_maxrss`` from wait4); a process passing the
``--kill-above`` line is killed and reported as such, so the host never runs out of memory.

    python benchmarks/bench_hostile_inputs.py [--kill-above 6GB]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

import hostile  # noqa: E402

CASES = [
    ("gzip bomb named .warc.gz (2 MB -> 2 GiB)", hostile.gzip_bomb, []),
    ("2 GiB record between two good ones", hostile.huge_record, []),
    ("2 GiB WARC header line", hostile.header_line_bomb, []),
    ("1 GiB Content-Encoding: gzip body", hostile.content_encoding_bomb, []),
    ("5,000 garbage bytes between gzip members", hostile.garbage_between_members, []),
    ("100,000-deep HTML page, with extract", hostile.deep_html, ["--stage", "extract"]),
]

PEER = """
import sys
from warcio.archiveiterator import ArchiveIterator
n = 0
try:
    with open(sys.argv[1], "rb") as fh:
        for rec in ArchiveIterator(fh):
            rec.content_stream().read()
            n += 1
    print(f"records={n}")
except Exception as exc:
    print(f"records={n} then {type(exc).__name__}: {str(exc)[:60]!r}")
"""


def measure(cmd: list[str], kill_above: int) -> dict:
    """Run ``cmd``; kill it above ``kill_above`` bytes RSS. Peak RSS from wait4."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed = []

    def watch():
        try:
            ps = psutil.Process(proc.pid)
            while True:
                if ps.memory_info().rss > kill_above:
                    killed.append(True)
                    proc.kill()
                    return
                time.sleep(0.02)
        except psutil.Error:
            return

    threading.Thread(target=watch, daemon=True).start()
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    reader.join(10)
    return {
        "rc": os.waitstatus_to_exitcode(status),
        "peak_mb": usage.ru_maxrss / 1024,
        "seconds": time.perf_counter() - start,
        "killed": bool(killed),
        "out": b"".join(out).decode(errors="replace"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kill-above", default="6GB", help="RSS at which a process is killed (protects the host)")
    args = ap.parse_args()
    kill_above = int(float(args.kill_above.upper().rstrip("GB")) * 2**30)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| hostile input | dataengine peak RSS | rows kept / skipped | seconds | warcio peak RSS | warcio |")
    print("|---|---|---|---|---|---|")
    from dataengine.warehouse import Warehouse, init_warehouse

    for label, make, extra in CASES:
        with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
            tmp = Path(tmp)
            (tmp / "in").mkdir()
            path = make(tmp / "in" / "hostile.warc.gz")
            hostile.good_warc(tmp / "in" / "good.warc.gz", first=900, count=4)
            init_warehouse(tmp / "wh")
            ours = measure([sys.executable, "-m", "dataengine.cli", "--warehouse", str(tmp / "wh"), "run", "--from",
                            str(tmp / "in" / "*.warc.gz"), *extra, "--to", "docs", "--workers", "1", "-q"], kill_above)
            wh = Warehouse(tmp / "wh")
            rows = wh.sql("SELECT count(*) FROM docs").column(0)[0].as_py() if wh.table_exists("docs") else 0
            stats = wh.sql("SELECT stats FROM dataengine.runs").column(0).to_pylist() if rows else []
            skipped = json.loads(stats[0]).get("(source)", {}).get("skipped", {}) if stats else {}
            peer = measure([sys.executable, "-c", PEER, str(path)], kill_above)
            peer_note = "killed (RSS limit)" if peer["killed"] else peer["out"].strip().splitlines()[-1][:70]
            ours_peak = f"{ours['peak_mb']:.0f} MB" + (" (killed)" if ours["killed"] else "")
            peer_peak = f"> {kill_above / 2**30:.0f} GB" if peer["killed"] else f"{peer['peak_mb']:.0f} MB"
            print(f"| {label} | {ours_peak} | {rows} ({rows - 4} from the hostile file) / "
                  f"{', '.join(f'{k} {v}' for k, v in sorted(skipped.items())) or '-'} | {ours['seconds']:.1f} | "
                  f"{peer_peak} | {peer_note} |", flush=True)


if __name__ == "__main__":
    main()
