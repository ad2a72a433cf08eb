"""Run model-written Python in a child process that cannot reach the network, write outside its
temp folder, or outlive its limits.

Layers, each enough on its own for the usual accident and together for the usual reward hack:

- **limits by the kernel**: ``RLIMIT_CPU`` (CPU seconds), ``RLIMIT_AS`` (memory), ``RLIMIT_FSIZE``
  (largest file, which also caps stdout/stderr: they go to files, not pipes, so a program
  printing forever is killed by ``SIGXFSZ`` instead of filling memory), no core dumps; a wall
  clock limit kills the whole process group (``os.setsid`` + ``killpg``), so sleeping or
  blocked programs die too;
- **no network**: when the machine allows unprivileged user namespaces (or runs as root), the
  child runs under ``unshare --user --map-root-user --net``, in a network namespace with no
  interface but a down loopback;
- **an audit hook** (PEP 578) installed before the program runs, which cannot be removed from
  Python: it refuses opening a file for writing, renaming, deleting or linking outside the temp
  folder, creating sockets, starting processes (fork, exec, subprocess, os.system), loading
  native code through ctypes, and importing the modules that do those things;
- an isolated interpreter (``-I -S``: no site-packages, no environment variables), a fresh
  temp folder as working directory and ``HOME``, deleted afterwards.

This is defence in depth for code from a model being trained, not a boundary for hostile code
written by a person: run untrusted workloads in a container or VM as well.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GUARD = r'''
import os, sys
ROOT = os.path.realpath(sys.argv[1])
PROGRAM = sys.argv[2]
BLOCKED_IMPORTS = {"socket", "_socket", "ssl", "_ssl", "ctypes", "_ctypes", "subprocess", "_posixsubprocess",
                   "multiprocessing", "_multiprocessing", "pty"}
BLOCKED_EVENTS = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
                  "os.killpg", "subprocess.Popen", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
                  "os.startfile", "webbrowser.open", "urllib.Request"}
PATH_EVENTS = {"os.rename": 2, "os.replace": 2, "os.remove": 1, "os.unlink": 1, "os.rmdir": 1, "os.mkdir": 1,
               "os.symlink": 2, "os.link": 2, "os.chmod": 1, "os.chown": 1, "os.truncate": 1, "os.utime": 1,
               "os.chdir": 1, "os.chroot": 1, "shutil.rmtree": 1, "shutil.move": 2, "shutil.copyfile": 2,
               "shutil.copytree": 2}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def inside(path):
    if isinstance(path, int):
        return True  # a file descriptor the program already holds
    path = os.fsdecode(path)
    real = os.path.realpath(os.path.join(os.getcwd(), path))
    return real == ROOT or real.startswith(ROOT + os.sep)

def hook(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE_FLAGS)
        if writing and path is not None and not inside(path):
            raise PermissionError(f"sandbox: no writing outside the temp folder ({path})")
    elif event in PATH_EVENTS:
        for path in args[: PATH_EVENTS[event]]:
            if path is not None and not inside(path):
                raise PermissionError(f"sandbox: {event} outside the temp folder ({path})")
    elif event.startswith("socket.") or event in BLOCKED_EVENTS:
        raise PermissionError(f"sandbox: {event} is not allowed")
    elif event == "import" and args[0].split(".")[0] in BLOCKED_IMPORTS:
        raise ImportError(f"sandbox: import of {args[0]} is not allowed")

import runpy
sys.addaudithook(hook)
sys.argv = [PROGRAM]
runpy.run_path(PROGRAM, run_name="__main__")
'''


@dataclass
class SandboxResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool  # the wall clock or CPU limit ended it
    seconds: float
    pid: int
    network_isolated: bool  # ran in its own network namespace

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@functools.lru_cache(maxsize=1)
def _unshare_prefix() -> tuple[str, ...]:
    """``unshare`` arguments for a private network namespace, or () where this machine refuses them."""
    exe = shutil.which("unshare")
    if not exe:
        return ()
    cmd = (exe, "--user", "--map-root-user", "--net")
    try:
        probe = subprocess.run([*cmd, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return cmd if probe.returncode == 0 else ()


def _limits(cpu_seconds: int, memory_bytes: int, file_bytes: int):
    def apply() -> None:
        os.setsid()  # its own process group: killpg reaches everything it started
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_python(code: str, time_limit: float = 5.0, memory_mb: int = 512, output_kb: int = 64,
               python: str | None = None) -> SandboxResult:
    """Run ``code`` as ``__main__`` under the limits above; never raises for what the code does."""
    work = Path(tempfile.mkdtemp(prefix="dataengine-sandbox-"))
    logs = Path(tempfile.mkdtemp(prefix="dataengine-sandbox-logs-"))
    try:
        box = work / "box"
        box.mkdir()
        (work / "guard.py").write_text(GUARD)
        program = box / "main.py"
        program.write_text(code)
        prefix = _unshare_prefix()
        cmd = [*prefix, python or sys.executable, "-I", "-S", "-B", str(work / "guard.py"), str(box), str(program)]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(box), "TMPDIR": str(box), "LANG": "C.UTF-8"}
        start = time.perf_counter()
        with open(logs / "out", "wb") as out, open(logs / "err", "wb") as err:
            proc = subprocess.Popen(cmd, cwd=box, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    preexec_fn=_limits(max(1, int(round(time_limit))), memory_mb << 20,
                                                       output_kb << 10))
            timed_out = False
            try:
                proc.wait(timeout=time_limit * 2 + 1)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
        seconds = time.perf_counter() - start
        if proc.returncode is not None and proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and not timed_out:
            timed_out = proc.returncode == -signal.SIGXCPU or seconds >= time_limit
        _kill_group(proc)  # anything it left behind in its group
        read = lambda p: p.read_bytes()[: output_kb << 10].decode("utf-8", "replace")  # noqa: E731
        return SandboxResult(proc.returncode, read(logs / "out"), read(logs / "err"), timed_out, seconds, proc.pid,
                             bool(prefix))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
        pass
