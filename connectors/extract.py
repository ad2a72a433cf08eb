"""Stage `extract`: page HTML -> main text and title (trafilatura or resiliparse).

The outcome of every row is an ``extract_status`` column (annotate, don't delete):
``ok``, ``empty`` (the extractor found no main text), ``not_html``, ``no_html``,
``too_large``, ``too_deep``, ``timeout`` or ``error``. ``SELECT extract_status, count(*)``
gives the counts; the ingest command prints them.

A pathological page cannot stall a run:
* size: pages over ``max_html_bytes`` are not parsed at all (``too_large``);
* nesting: lxml (trafilatura's parser) cuts trees at depth 255 by itself; resiliparse's
  main-content pass is quadratic in depth (10k levels: 3 s, 30k: 24 s), so pages deeper
  than ``max_depth`` are refused after lexbor's fast parse (``too_deep``), found by a CSS
  child chain ``* > * > ...`` matched in C (~0.3 ms a page);
* time: trafilatura runs Python code, so a timer interrupts it after ``timeout_s``
  (``timeout``): SIGALRM in a process's main thread (local and Spark workers), and in other
  threads (Dask worker threads) a timer thread that raises the timeout in the extracting
  thread with ``PyThreadState_SetAsyncExc`` (delivered between bytecodes, i.e. as soon as
  a running lxml call returns); resiliparse is C and bounded by the two guards above.
"""

from __future__ import annotations

import re
import signal
import threading
from contextlib import contextmanager
from typing import Literal

import pyarrow as pa
from pydantic import Field

from dataengine.connectors.extractors import TooDeep
from dataengine.core.stage import Stage, StageParams

_HTML_MIME = re.compile(r"html|xml", re.I)
_SPACES = re.compile(r"\s+")


class ExtractionTimeout(BaseException):
    """Raised by the alarm; a BaseException so library code's ``except Exception`` can't eat it."""


class _ThreadAlarm:
    """The timer for threads that cannot take signals: a timer thread raises
    :class:`ExtractionTimeout` asynchronously in the thread that armed it.

    A generation counter under a lock makes a timer that fires while being disarmed a no-op,
    and disarming clears an exception the timer set but Python has not yet delivered, so a
    timeout never escapes the page it was armed for."""

    def __init__(self):
        self._target = threading.get_ident()
        self._lock = threading.Lock()
        self._generation = 0
        self._fired = False
        self._timer: threading.Timer | None = None

    def arm(self, seconds: float) -> None:
        import ctypes

        with self._lock:
            self._generation += 1
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._fired:  # fired but perhaps not delivered yet: take it back
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._target), None)
                self._fired = False
            if seconds > 0:
                self._timer = threading.Timer(seconds, self._fire, args=(self._generation,))
                self._timer.daemon = True
                self._timer.start()

    def _fire(self, generation: int) -> None:
        import ctypes

        with self._lock:
            if generation != self._generation:
                return
            self._fired = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._target),
                                                       ctypes.py_object(ExtractionTimeout))


@contextmanager
def alarm_clock():
    """Arm-able per-document timer: yields ``arm(seconds)`` (0 disarms)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        alarm = _ThreadAlarm()
        try:
            yield alarm.arm
        finally:
            alarm.arm(0)
        return

    def ring(signum, frame):
        raise ExtractionTimeout()

    previous = signal.signal(signal.SIGALRM, ring)
    try:
        yield lambda seconds: signal.setitimer(signal.ITIMER_REAL, max(seconds, 0))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class ExtractParams(StageParams):
    extractor: Literal["trafilatura", "resiliparse"] = Field(
        "trafilatura", description="trafilatura (quality) or resiliparse (speed)"
    )
    favour: Literal["balanced", "precision", "recall"] = Field(
        "recall", description="trafilatura: favour precision, recall, or neither (recall scored best, see docs/decisions.md)"
    )
    fallback: bool = Field(
        False,
        description="trafilatura: also run its readability/jusText fallbacks (slower; with favour=recall no better F1)",
    )
    include_tables: bool = Field(True, description="keep text inside <table>")
    keep_html: bool = Field(False, description="keep the html column (else it is dropped after extraction)")
    max_html_bytes: int = Field(5_000_000, ge=1, description="larger pages (UTF-8 bytes) are not parsed (too_large)")
    max_depth: int = Field(1000, ge=10, description="resiliparse: deeper DOMs are refused (too_deep)")
    timeout_s: float = Field(10.0, ge=0, description="trafilatura: per-page time limit in seconds; 0 = none")


class Extract(Stage):
    """HTML -> main text + title, per page, with limits so one page can't stall a run."""

    name = "extract"
    version = "1"
    description = "HTML -> main text and title (trafilatura or resiliparse), extract_status per row"
    inputs = ("html",)
    Params = ExtractParams

    def output_columns(self):
        return {"text": pa.string(), "title": pa.string(), "extract_status": pa.string()}

    def setup(self) -> None:
        p = self.params
        if p.extractor == "trafilatura":
            from dataengine.connectors.extractors import TrafilaturaExtractor

            self._extractor = TrafilaturaExtractor(p.favour, p.fallback, p.include_tables)
        else:
            from dataengine.connectors.extractors import ResiliparseExtractor

            self._extractor = ResiliparseExtractor(p.include_tables, p.max_depth)

    def process(self, batch: pa.Table) -> pa.Table:
        import pyarrow.compute as pc

        column = batch.column("html")
        sizes = pc.binary_length(column).to_pylist()
        htmls = column.to_pylist()  # str: both extractors parse from str (see dataengine.connectors.extractors)
        n = len(htmls)
        mimes = batch.column("content_type").to_pylist() if "content_type" in batch.column_names else [None] * n
        urls = batch.column("url").to_pylist() if "url" in batch.column_names else [None] * n
        texts, titles, statuses = [], [], []
        with alarm_clock() as arm:
            for html, size, mime, url in zip(htmls, sizes, mimes, urls):
                text, title, status = self._one(html, size, mime, url, arm)
                texts.append(text)
                titles.append(title)
                statuses.append(status)
        out = batch
        for name, values in (("text", texts), ("title", titles), ("extract_status", statuses)):
            column = pa.array(values, type=pa.string())
            if name in out.column_names:
                out = out.set_column(out.column_names.index(name), name, column)
            else:
                out = out.append_column(name, column)
        if not self.params.keep_html:
            out = out.drop_columns(["html"])
        return out

    def _one(self, html, size, mime, url, arm) -> tuple[str | None, str | None, str]:
        """(text, title, status) for one page (str or UTF-8 bytes); never raises."""
        if html is None:
            return None, None, "no_html"
        if mime and not _HTML_MIME.search(mime):
            return None, None, "not_html"
        if size > self.params.max_html_bytes:
            return None, _title_from_head(html), "too_large"
        try:
            arm(self.params.timeout_s)
            try:
                text, title = self._extractor(html, url)
            finally:
                arm(0)
        except ExtractionTimeout:
            return None, _title_from_head(html), "timeout"
        except TooDeep:
            return None, _title_from_head(html), "too_deep"
        except Exception:  # noqa: BLE001 - a page the library chokes on is a counted outcome
            return None, None, "error"
        title = _clean(title)
        text = text.strip() if text else None
        return (text, title, "ok") if text else (None, title, "empty")


_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.I | re.S)


def _title_from_head(html: str | bytes) -> str | None:
    """Title of a page that is not parsed (too large, too deep, timed out): regex on the head."""
    import html as html_lib

    if isinstance(html, bytes):
        html = html[:200_000].decode("utf-8", "replace")
    match = _TITLE.search(html, 0, 200_000)
    return _clean(html_lib.unescape(match.group(1))) if match else None


def _clean(title: str | None) -> str | None:
    if not title:
        return None
    title = _SPACES.sub(" ", title).strip()
    return title or None
