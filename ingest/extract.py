"""Main-text extraction with trafilatura, isolated in a child process with a per-page CPU-time limit.

Why a process: a check after the call cannot stop a page that sends lxml into a minutes-long loop, and
signal handlers only run on the main thread, which Beam workers do not run bundles on. In the child they do:
a CPU-time timer (ITIMER_PROF) interrupts the page at `timeout_seconds` of the child's own CPU time, so the
same page gets the same decision on an idle and on a loaded worker (a wall-clock limit made the kept set
depend on how busy the machine was). A C call that runs long without returning to Python delays the
interrupt; the parent then kills the child at `wall_limit_seconds` of wall time, the one machine-dependent
limit. The child is restarted after a limit and every `restart_every` documents, so memory growth inside
lxml cannot creep.

Why fail loudly: if trafilatura cannot even import (e.g. lxml_html_clean missing), starting the extractor
raises ExtractorUnavailable, which stops the run instead of turning every page into a silent timeout.
"""

from __future__ import annotations

import html as html_lib
import logging
import multiprocessing
import os
import re
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, NoReturn

from ingest import speedups
from ingest.render import document_text
from schemas.recipe import ExtractConfig
from schemas.records import STAGE_EXTRACT, Decision

# trafilatura logs every page it cannot parse at ERROR level; the ledger records those pages instead.
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
logging.getLogger("htmldate").setLevel(logging.CRITICAL)
logging.getLogger("courlan").setLevel(logging.CRITICAL)


class ExtractorUnavailable(RuntimeError):
    """trafilatura (or its dependencies) cannot be imported or started: the run must stop."""


@dataclass(frozen=True, slots=True)
class Extracted:
    text: str
    title: str
    published_date: str


_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_META_DATE = re.compile(
    r"""<meta[^>]+(?:property|name|itemprop)\s*=\s*["'](?:article:published_time|datePublished|"""
    r"""date|dc\.date|dcterms\.created|og:published_time|pubdate|publish[-_]date)["'][^>]*>""",
    re.IGNORECASE,
)
_CONTENT_ATTR = re.compile(r"""content\s*=\s*["']([^"']{4,40})["']""", re.IGNORECASE)
_WS = re.compile(r"\s+")


def head_metadata(page: str) -> tuple[str, str]:
    """(title, published date) read from the <head> with two regexes: microseconds, not milliseconds."""
    head = page[:65536]
    title = ""
    if m := _TITLE.search(head):
        title = _WS.sub(" ", html_lib.unescape(m.group(1))).strip()[:1000]
    date = ""
    if (m := _META_DATE.search(head)) and (c := _CONTENT_ATTR.search(m.group(0))):
        date = c.group(1).strip()
    return title, date


# An invisible block runs to the first closing tag of its name, a comment to the first "-->": what the lazy
# `<(script|...)\b.*?</\1\s*>|<!--.*?-->` matches, written as runs of characters that cannot start the end
# ("unrolling the loop"), possessive so a block never closed fails without backtracking. The lazy form tried the
# end at every character of a script; this one ~1.8x faster on the bench crawl's pages (quick_text 0.42 ->
# 0.25 ms a page at 8e36f4e, /tmp script over the 1,500 pages bench/throughput.py times). Same spans:
# tests/test_filters.py compares both on hostile markup, tests/test_perdoc_reference.py the texts.
_INVISIBLE = (r"<(script|style|noscript|template|svg|textarea)\b[^<]*+(?:<(?!/\1\s*>)[^<]*+)*+</\1\s*>"
              r"|<!--[^-]*+(?:-(?!->)[^-]*+)*+-->")
# Invisible blocks first, else any tag: one left-to-right scan, so it can stop once it has enough text.
_HIDDEN_OR_TAG = re.compile(_INVISIBLE + r"|<[^>]*>", re.S | re.I)


def quick_text(page: str, max_chars: int = 2000, scan_chars: int = 300_000) -> str:
    """All visible-looking text of a page, tags stripped by regex: navigation and footers included, so it is
    no substitute for extraction, but enough for a language guess at ~0.25 ms instead of trafilatura's ~30 ms
    (the cheap-first cascade). Only the first `scan_chars` of the page are read, and the scan stops as soon
    as `max_chars` of text are collected: a page's first 2,000 characters of text usually sit in its first
    few kilobytes, so most of the page is never looked at."""
    page = page[:scan_chars]
    pieces: list[str] = []
    have = 0
    start = 0
    for m in _HIDDEN_OR_TAG.finditer(page):
        if m.start() > start:
            piece = " ".join(html_lib.unescape(page[start:m.start()]).split())
            if piece:
                pieces.append(piece)
                have += len(piece) + 1
                if have > max_chars:
                    break
        start = m.end()
    else:
        pieces.append(" ".join(html_lib.unescape(page[start:]).split()))
    return " ".join(p for p in pieces if p)[:max_chars]


def extract_main_text(page: str, url: str, config: ExtractConfig) -> Extracted:
    """Run trafilatura on one decoded page. Raises whatever trafilatura raises."""
    import trafilatura
    from trafilatura.deduplication import LRUCache

    speedups.install()  # same text, faster, on the trafilatura release they were verified on; cheap once done
    result = trafilatura.bare_extraction(
        page,
        url=url or None,
        fast=config.fast,
        favor_precision=config.favor_precision,
        include_comments=config.include_comments,
        include_tables=config.include_tables,
        # A fresh cache per page: in-page deduplication of repeated segments, as FineWeb ran it, without the
        # process-global cache that would make the output depend on the order documents arrive in.
        deduplicate=LRUCache(maxsize=4096) if config.deduplicate else False,
        with_metadata=config.with_metadata,
    )
    text = ""
    if result is not None:
        text = document_text(result.body, result.commentsbody if config.include_comments else None,
                             config.table_text)
    title, date = head_metadata(page)
    if config.with_metadata and result is not None:
        title = result.title or title
        date = result.date or date
    return Extracted(text=text, title=title, published_date=date)


ExtractFn = Callable[[str, str, ExtractConfig], Extracted]
_FIXED_MALLOC = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
WARM_UP_PAGE = "<html><body><p>warm up</p></body></html>"


class _CpuLimit(BaseException):
    """Raised in the child when a page has used its CPU seconds. A BaseException, so that trafilatura's own
    `except Exception` blocks cannot swallow it."""


# After the limit, SIGPROF comes again every this many CPU seconds until the page ends: a _CpuLimit raised where
# Python cannot propagate it (a finalizer or a weakref callback prints "Exception ignored") is raised again.
_REPEAT_SECONDS = 0.1


class _Timer:
    """The child's per-page CPU-time limit: ITIMER_PROF counts this process's user and system time, and its
    SIGPROF raises _CpuLimit while a page is armed (a signal that arrives after the page ended does nothing)."""

    def __init__(self) -> None:
        self.armed = False
        signal.signal(signal.SIGPROF, self._expired)

    def _expired(self, _signum: int, _frame: Any) -> None:
        if self.armed:
            raise _CpuLimit

    def disarm(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0)
        self.armed = False

    def run(self, seconds: float, fn: Callable[[], Extracted]) -> Extracted:
        self.armed = True
        signal.setitimer(signal.ITIMER_PROF, seconds, _REPEAT_SECONDS)
        try:
            return fn()
        finally:
            self.disarm()


def _leave(conn: Any) -> NoReturn:
    """End the child now that the parent is done with it, without the interpreter's shutdown.

    Why: a spawned child that returns goes through Python's full finalization, which with trafilatura and lxml
    loaded took 0.3-0.8 s, and the worker's teardown waits for it (`Extractor._stop`), one child after the other:
    most of the ~0.7 s each SDK worker took to stop at the end of a run (BundleProcessorCache.shutdown, 300-page
    bench crawl, 2026-12-07). The child holds nothing to write back: its results went through `conn`."""
    with suppress(Exception):
        conn.close()
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    os._exit(0)


def _child_main(conn: Any, config: ExtractConfig, extract_fn: ExtractFn) -> None:
    """Child process loop: import once, then extract page after page until told to stop, each page within
    `config.timeout_seconds` of CPU time; after a page that reached it, the child ends (the interrupt may have
    left trafilatura's or lxml's state half-changed) and the parent starts another."""
    try:
        extract_fn(WARM_UP_PAGE, "", config)
        timer = _Timer()
    except BaseException:  # noqa: BLE001 - report any start-up failure to the parent verbatim
        conn.send(("fatal", traceback.format_exc()))
        return
    conn.send(("ready", speedups.status()))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            _leave(conn)
        if message is None:
            _leave(conn)
        page, url = message
        start = time.process_time()  # CPU seconds: a child that waits for a core is not extracting
        try:
            result = timer.run(config.timeout_seconds, lambda: extract_fn(page, url, config))  # noqa: B023
        except _CpuLimit:
            timer.disarm()  # a repeat that came while the first unwound
            conn.send(("timeout", None, time.process_time() - start))
            return
        except Exception as exc:  # noqa: BLE001 - a page's failure is that page's ledger reason
            conn.send(("error", f"{type(exc).__name__}: {exc}"[:500], time.process_time() - start))
        else:
            conn.send(("ok", result, time.process_time() - start))


@contextmanager
def _not_inherited() -> Iterator[None]:
    """While a child starts: hide the process-wide state it would otherwise inherit and should not, then put
    it back. Both items are read only at the child's start, so the change lasts no longer than that.

    - glibc's fixed mmap and trim thresholds (environment variables run_pipeline sets for the driver and the
      workers): the child keeps glibc's own dynamic ones. The fixed ones made trafilatura ~9 % slower (400
      bench pages, three alternating pairs of runs), and the child's memory is bounded by restart_every.
    - The parent's __main__: multiprocessing's spawn runs it again in the child (as __mp_main__) so that
      functions defined there can be unpickled. In an SDK worker __main__ is Beam's sdk_worker_main (or
      harness/local_worker.py, which runs it, in a local run's worker processes), in a local run in one process
      run_pipeline.py or the tokenmill command: every extraction child imported Apache Beam, gRPC and the worker harness
      (~0.6-0.9 s of CPU at each start) without ever using them. The child needs only this module and the
      ones its extract function and config come from, which pickle by reference to importable modules (an
      extract function defined in a __main__ script cannot be used)."""
    fixed = {name: os.environ.pop(name) for name in _FIXED_MALLOC if name in os.environ}
    main = sys.modules.get("__main__")
    names = ("__spec__", "__file__")
    saved = {name: main.__dict__[name] for name in names if main is not None and name in main.__dict__}
    try:
        if main is not None:
            main.__spec__ = None  # no module name to import ...
            main.__dict__.pop("__file__", None)  # ... and no path to run
        yield
    finally:
        os.environ.update(fixed)
        if main is not None:
            for name in names:
                if name in saved:
                    main.__dict__[name] = saved[name]
                else:
                    main.__dict__.pop(name, None)


class Extractor:
    """Per-worker extraction front: `extract(page, url)` -> Extracted | Decision.

    With isolation="process" the work runs in a killable child; "inline" calls trafilatura directly
    (no time limit; for debugging and profiling). `extract_fn` must be a module-level function (it is
    pickled into the child); tests swap in slow or broken ones. With wait=False the constructor returns while
    the child is still starting; the first extract() or ensure_ready() waits for it and raises if it failed.

    `extract` is `submit` then `collect`. A caller that has other work can do it in between: the child
    extracts the page meanwhile (one page at a time; the CPU-time limit counts the child's own CPU time, the
    wall-clock limit counts from `submit`). `seconds` is the CPU time the last collected page took inside the
    extraction call (the time limit for a page that hit it).
    """

    def __init__(
        self,
        config: ExtractConfig,
        extract_fn: ExtractFn = extract_main_text,
        start_timeout: float = 120.0,
        wait: bool = True,
    ) -> None:
        self.config = config
        self.extract_fn = extract_fn
        self.start_timeout = start_timeout
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Any = None
        self._served = 0
        self._starting = False  # a child was started and has not yet said it is ready
        self._pending: tuple[str, str] | None = None  # the submitted page (inline) / (page, url) sent to the child
        self._sent_at = 0.0
        self._lost: str = ""  # why sending the submitted page failed
        self.seconds = 0.0
        # What the extracting process runs (ingest.speedups.status()), known once it is ready.
        self.speedups: dict[str, Any] = {}
        if config.isolation == "inline":
            try:
                extract_fn(WARM_UP_PAGE, "", config)
            except Exception as exc:
                raise ExtractorUnavailable(f"trafilatura cannot run: {exc!r}") from exc
            self.speedups = speedups.status()
        else:
            self._start()
            if wait:
                self.ensure_ready()

    def _start(self) -> None:
        """Start a child; it imports trafilatura and extracts a warm-up page while the caller goes on (~1 s
        that the worker spends reading and prechecking its first pages instead of waiting)."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_child_main, args=(child, self.config, self.extract_fn), daemon=True)
        with _not_inherited():
            process.start()
        child.close()
        self._process, self._conn, self._served, self._starting = process, parent, 0, True

    def ensure_ready(self) -> None:
        """Wait for a starting child to report; raise ExtractorUnavailable if it cannot run (the run must stop,
        not drop every page as a timeout)."""
        if not self._starting:
            return
        process, parent = self._process, self._conn
        self._starting = False
        if not parent.poll(self.start_timeout):
            self._kill()
            raise ExtractorUnavailable("the extraction worker did not start in time")
        try:
            kind, payload = parent.recv()
        except EOFError as exc:
            self._kill()
            raise ExtractorUnavailable("the extraction worker died while starting") from exc
        if kind != "ready":
            process.join(5)
            self._kill()
            raise ExtractorUnavailable(f"trafilatura cannot run in the extraction worker:\n{payload}")
        self.speedups = payload

    def _stop(self) -> None:
        if self._process is None:
            return
        self._starting = False
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._process.join(1)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()
        self._process = self._conn = None

    def _kill(self) -> None:
        self._starting = False
        if self._process is not None:
            self._process.kill()
            self._process.join()
            self._conn.close()
            self._process = self._conn = None

    def extract(self, page: str, url: str) -> Extracted | Decision:
        self.submit(page, url)
        return self.collect()

    def submit(self, page: str, url: str) -> None:
        """Hand one page to the extractor; `collect` returns its result."""
        if self._pending is not None and self.config.isolation != "inline":
            self._kill()  # a page never collected (its caller failed): its answer must not become the next one's
        self._pending, self._lost = (page, url), ""
        if self.config.isolation == "inline":
            return
        if self._process is None or self._served >= self.config.restart_every:
            self._stop()
            self._start()
        self.ensure_ready()
        self._served += 1
        try:
            self._conn.send((page, url))
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            self._lost = f"extraction worker lost: {exc}"
        self._sent_at = time.monotonic()

    def collect(self) -> Extracted | Decision:
        """The submitted page's text, or the Decision that drops it (timeout, error, lost worker)."""
        if self._pending is None:
            raise RuntimeError("collect() without submit()")
        page, url = self._pending
        self._pending = None
        if self.config.isolation == "inline":
            start = time.process_time()
            try:
                return self.extract_fn(page, url, self.config)
            except Exception as exc:  # noqa: BLE001
                return Decision(STAGE_EXTRACT, "extract_error", detail=f"{type(exc).__name__}: {exc}"[:500])
            finally:
                self.seconds = time.process_time() - start
        self.seconds = 0.0
        if self._lost:
            return Decision(STAGE_EXTRACT, "extract_error", detail=self._lost)
        limit, wall = self.config.timeout_seconds, self.config.wall_limit_seconds
        try:
            ready = self._conn.poll(max(0.0, wall - (time.monotonic() - self._sent_at)))
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            return Decision(STAGE_EXTRACT, "extract_error", detail=f"extraction worker lost: {exc}")
        if not ready:  # a C call that did not return to Python for the CPU-time interrupt: cut by wall time
            self._kill()
            self.seconds = limit
            return Decision(STAGE_EXTRACT, "extract_timeout", limit, detail=f"wall-clock limit {wall:g} s")
        try:
            kind, payload, self.seconds = self._conn.recv()
        except EOFError:
            self._kill()
            return Decision(STAGE_EXTRACT, "extract_error", detail="extraction worker crashed")
        if kind == "ok":
            return payload
        if kind == "timeout":  # the child stops after a timeout: the next page starts another
            self._kill()
            self.seconds = limit
            return Decision(STAGE_EXTRACT, "extract_timeout", limit)
        return Decision(STAGE_EXTRACT, "extract_error", detail=payload)

    def close(self) -> None:
        self._stop()

    def __del__(self) -> None:  # best effort; DoFn.teardown calls close()
        try:
            self._stop()
        except Exception:  # noqa: BLE001
            pass


class ExtractorPool:
    """`children` Extractors behind one worker: `submit` hands each page to the next child in turn, `collect`
    returns the results in the order the pages were submitted, so a caller that keeps up to `depth` pages in
    flight gets the same results, in the same order, as from one Extractor. Each child keeps its own limits
    and restarts (a page that times out in one does not touch the other's page).

    Why: a worker hands pages to its child one at a time and meanwhile runs the later stages on the page
    before. Extraction takes 1-30+ ms a page and those stages a few, so on a page that extracts quickly the
    worker was still busy and the child idle, and on a slow page the worker waited: on a 2-core machine whose
    one worker runs in the driver's process (driver/runner.py: IN_PROCESS_EXTRACT_CHILDREN) the worker waited
    1.2 s of a 300-page crawl's 2.9 s of records while its child extracted for 1.6 s. A second child takes
    the next page meanwhile. Where every core already has a worker and its child (the multi-process local
    runner, a cluster), one child a worker is enough."""

    def __init__(self, config: ExtractConfig, children: int = 1, extract_fn: ExtractFn = extract_main_text,
                 wait: bool = True) -> None:
        self.extractors = [Extractor(config, extract_fn, wait=wait) for _ in range(max(1, children))]
        self.depth = len(self.extractors)
        self._turn = 0
        self._order: deque[Extractor] = deque()  # the child of each page in flight, oldest first
        self.seconds = 0.0

    @property
    def speedups(self) -> dict[str, Any]:
        """What the extracting processes run (the same in every child: one module, one interpreter)."""
        return self.extractors[0].speedups

    def ensure_ready(self) -> None:
        for extractor in self.extractors:
            extractor.ensure_ready()

    def drop_in_flight(self) -> None:
        """Forget the pages a caller submitted and never collected (a bundle abandoned half-way); the next page
        goes to the first child again. A child holding one is killed when it is next handed a page
        (Extractor.submit does that to its own uncollected page), so no answer to one can become a later page's."""
        self._order.clear()
        self._turn = 0

    def submit(self, page: str, url: str) -> None:
        """Hand one page to the next child; at most `depth` pages may be in flight."""
        if len(self._order) >= self.depth:
            raise RuntimeError(f"{self.depth} pages in flight already: collect() first")
        extractor = self.extractors[self._turn]
        self._turn = (self._turn + 1) % self.depth
        self._order.append(extractor)
        extractor.submit(page, url)

    def collect(self) -> Extracted | Decision:
        """The oldest page in flight's text, or the Decision that drops it; `seconds` as Extractor's."""
        if not self._order:
            raise RuntimeError("collect() without submit()")
        extractor = self._order.popleft()
        try:
            return extractor.collect()
        finally:
            self.seconds = extractor.seconds

    def extract(self, page: str, url: str) -> Extracted | Decision:
        self.submit(page, url)
        return self.collect()

    def close(self) -> None:
        for extractor in self.extractors:
            extractor.close()
