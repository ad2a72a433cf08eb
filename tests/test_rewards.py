"""The `reward` stage on hand-written tricky cases of every kind, and the code sandbox's walls."""

from __future__ import annotations

import os
import socket
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataengine.filters.rewards.sandbox import run_python
from dataengine.filters.rewards.stage import Reward
from dataengine.filters.rewards.verifiers import extract_program

# (kind, completion, answer, reward, status)
CASES = [
    # math: equivalence, not string equality
    ("math", "So the probability is $\\boxed{\\frac{1}{2}}$.", "0.5", 1.0, "correct"),
    ("math", "Adding them: 48 + 24 = 72.\n#### 72", "Natalia sold 48/2 = 24 clips in May.\n#### 72", 1.0, "correct"),
    ("math", "The total is 1,234 dollars.", "1234", 1.0, "correct"),
    ("math", "The answer is $\\boxed{x^2 + 2x + 1}$", "(x+1)^2", 1.0, "correct"),
    ("math", "I got 50%.", "\\frac{1}{2}", 1.0, "correct"),
    ("math", "The answer is \\boxed{3}.", "4", 0.0, "wrong"),
    ("math", "I am not sure how to solve this.", "4", 0.0, "unparseable"),
    ("math", "", "4", 0.0, "unparseable"),
    ("math", "It is 4.", "\\frac{", 0.0, "bad_answer"),
    ("math", "It is 4.", "banana", 0.0, "bad_answer"),
    ("math", "so $y = 1 + x^2$", "x^2+1", 1.0, "correct"),
    # exact: whitespace, a final period and case do not matter, anything else does
    ("exact", "  Paris.\n", "paris", 1.0, "correct"),
    ("exact", "New   York", "new york", 1.0, "correct"),
    ("exact", "Paris, France", "Paris", 0.0, "wrong"),
    ("exact", "   ", "Paris", 0.0, "unparseable"),
    # choice: the picked letter, however it is written
    ("choice", "Let me think... the answer is (C).", "C", 1.0, "correct"),
    ("choice", "Final answer: \\boxed{B}", "(B)", 1.0, "correct"),
    ("choice", "**Answer: D**", "d", 1.0, "correct"),
    ("choice", "Answer: A", "B", 0.0, "wrong"),
    ("choice", "I think it is a cat.", "A", 0.0, "unparseable"),  # the article 'a' is not a pick
    # code: the last fenced block runs against the tests
    ("code", "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nDone.", "assert add(2, 3) == 5", 1.0, "correct"),
    ("code", "def add(a, b):\n    return a - b", "assert add(2, 3) == 5", 0.0, "wrong"),
    ("code", "```python\ndef add(a, b:\n```", "assert add(2, 3) == 5", 0.0, "unparseable"),
    ("code", "No code today.", "assert add(2, 3) == 5", 0.0, "unparseable"),
    ("code", "```python\nwhile True:\n    pass\n```", "assert True", 0.0, "timeout"),
    ("code", "```\ndef sq(x): return x * x\n```", '["assert sq(3) == 9", "assert sq(-2) == 4"]', 1.0, "correct"),
]


@pytest.mark.slow
def test_every_kind_on_tricky_cases():
    stage = Reward({"kind": "auto", "code_time_limit": 1.0})
    rewards, statuses = stage.score([c[1] for c in CASES], [c[2] for c in CASES], [c[0] for c in CASES])
    got = list(zip([c[0] for c in CASES], [c[1][:40] for c in CASES], rewards, statuses))
    want = [(c[0], c[1][:40], c[3], c[4]) for c in CASES]
    assert got == want


def test_conversations_are_scored_by_their_last_assistant_message():
    chat = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "It is 4."}]
    rewards, statuses = Reward({"kind": "math"}).score([chat, None], ["4", "4"])
    assert rewards == [1.0, 0.0] and statuses == ["correct", "unparseable"]


def test_program_extraction_prefers_the_last_python_block():
    text = "```bash\nls\n```\n```python\nx = 1\n```\n```python\nx = 2\n```"
    assert extract_program(text) == "x = 2\n"
    assert extract_program("   ") is None


def test_code_cannot_write_outside_its_temp_folder(tmp_path):
    target = tmp_path / "escaped.txt"
    code = f"""
import os, shutil
open('inside.txt', 'w').write('fine')            # its own folder: allowed
assert open('inside.txt').read() == 'fine'
for attempt in (lambda: open({str(target)!r}, 'w'),
                lambda: os.open({str(target)!r}, os.O_WRONLY | os.O_CREAT),
                lambda: os.rename('inside.txt', {str(target)!r}),
                lambda: shutil.copyfile('inside.txt', {str(target)!r}),
                lambda: os.symlink('/etc/passwd', 'link') or open('link', 'a')):
    try:
        attempt()
    except (PermissionError, OSError) as exc:
        print('refused:', exc)
"""
    result = run_python(code, time_limit=5)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("refused") == 5
    assert not target.exists()


@pytest.mark.slow
def test_code_cannot_reach_the_network():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(3)
    port = server.getsockname()[1]
    connections = []

    def accept():
        try:
            connections.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'leak')"
    result = run_python(code, time_limit=5)
    thread.join()
    server.close()
    assert result.returncode != 0
    assert "not allowed" in result.stderr
    assert connections == []  # nothing reached the listening socket


@pytest.mark.slow
def test_code_cannot_outlive_its_time_limit():
    for code in ("while True:\n    pass", "import time\ntime.sleep(60)"):  # burning CPU, and sleeping
        started = time.perf_counter()
        result = run_python(code, time_limit=1)
        assert result.timed_out and not result.ok
        assert time.perf_counter() - started < 10
        with pytest.raises(ProcessLookupError):  # the process (and its group) is gone
            os.kill(result.pid, 0)


def test_code_output_and_memory_are_capped():
    result = run_python("while True:\n    print('x' * 1000)", time_limit=5, output_kb=16)
    assert not result.ok and len(result.stdout) <= 16 * 1024  # killed by SIGXFSZ, not by the clock
    result = run_python("blob = bytearray(2_000_000_000)", time_limit=5, memory_mb=256)
    assert not result.ok and "MemoryError" in result.stderr


@pytest.mark.slow
def test_the_reward_stage_runs_in_a_pipeline_and_counts_unparseable(tmp_path, wh):
    from conftest import run_cli

    rows = [{"id": str(i), "completion": c, "answer": a} for i, (c, a) in enumerate(
        [("The answer is \\boxed{12}", "12"), ("no idea", "12"), ("#### 7", "#### 8"), ("x = \\frac{3}{6}", "1/2")])]
    src = tmp_path / "samples.parquet"
    pq.write_table(pa.Table.from_pylist(rows), src)
    proc = run_cli("ingest", "parquet", str(src), "--table", "samples", "--text-field", "", warehouse=wh.config.root)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("run", "--from", "samples", "--stage", "reward:kind=math,completion_column=completion,answer_column=answer",
                   "--to", "scored", "-q", warehouse=wh.config.root)
    assert proc.returncode == 0, proc.stderr
    out = wh.sql("SELECT id, reward, reward_status FROM scored ORDER BY id").to_pylist()
    assert [(r["reward"], r["reward_status"]) for r in out] == [
        (1.0, "correct"), (0.0, "unparseable"), (0.0, "wrong"), (1.0, "correct")]
    assert str(wh.schema("scored").field("reward").type) == "double"
