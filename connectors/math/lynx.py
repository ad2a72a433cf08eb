"""``lynx -dump`` as the layout renderer, many pages per lynx process.

Starting lynx costs more than rendering a page (~50 pages/s one process per page), so a
batch of pages goes through one process: each page's body (re-serialised by lxml, so
every tag is closed and nothing can leak into the next page) is followed by a separator
paragraph, and the dump is split on the separators. The time limit is per page: a batch
gets ``timeout_s * pages``; a batch that runs out is split in halves until the slow page
is alone, and that page gets None (the caller renders it another way).
"""

from __future__ import annotations

import re
import shutil
import subprocess

_SEPARATOR = "ZZLYNXPAGE{}ZZ"
_SEPARATOR_LINE = re.compile(r"^\s*ZZLYNXPAGE(\d+)ZZ\s*$", re.M)
LYNX_ARGS = ("-dump", "-stdin", "-force_html", "-nolist", "-width=10000", "-assume_charset=utf-8",
             "-display_charset=utf-8", "-nomargins", "-hiddenlinks=ignore", "-noreferer")


def lynx_path() -> str | None:
    return shutil.which("lynx")


class LynxRenderer:
    def __init__(self, timeout_s: float = 5.0, executable: str | None = None, startup_s: float = 1.0):
        self.executable = executable or lynx_path()
        if self.executable is None:
            raise FileNotFoundError("lynx is not installed (apt-get install lynx)")
        self.timeout_s = timeout_s
        self.startup_s = startup_s  # allowance for starting the process, on top of the per-page limit

    def render_many(self, bodies: list[str]) -> list[str | None]:
        """Text for each HTML body, in order; None for a page lynx could not render in time."""
        if not bodies:
            return []
        try:
            return self._run(bodies)
        except (subprocess.TimeoutExpired, subprocess.CalledProcessError, OSError):
            if len(bodies) == 1:
                return [None]
            half = len(bodies) // 2
            return self.render_many(bodies[:half]) + self.render_many(bodies[half:])

    def _run(self, bodies: list[str]) -> list[str]:
        parts = ['<html><head><meta charset="utf-8"></head><body>']
        for i, body in enumerate(bodies):
            parts.append(f"<div>{body}</div><p>{_SEPARATOR.format(i)}</p>")
        parts.append("</body></html>")
        result = subprocess.run(
            [self.executable, *LYNX_ARGS],
            input="".join(parts).encode("utf-8"),
            capture_output=True,
            timeout=self.timeout_s * len(bodies) + self.startup_s,
            check=True,
        )
        return _split(result.stdout.decode("utf-8", "replace"), len(bodies))


def _split(dump: str, count: int) -> list[str]:
    texts = [""] * count
    start = 0
    for match in _SEPARATOR_LINE.finditer(dump):
        index = int(match.group(1))
        if 0 <= index < count:
            texts[index] = _tidy(dump[start:match.start()])
        start = match.end()
    return texts


_EMPTY_BULLET = re.compile(r"^\s*[*+o#@]\s*$")


def _centred(line: str) -> bool:
    return len(line) - len(line.lstrip(" ")) > 40


def _tidy(text: str) -> str:
    # lynx centres headings and <center> across the 10000-column page: drop that margin
    lines = [line.strip() if _centred(line) else line.rstrip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if _EMPTY_BULLET.match(line):
            continue  # a list item whose only content was an icon or image
        if not line and (not out or not out[-1]):
            continue  # one blank line between paragraphs is enough
        out.append(line)
    return "\n".join(out).strip("\n")
