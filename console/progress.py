"""One live progress line for a run on a terminal: input bytes read of total, records, documents past the
filters, rate, time left.

The local runner gives the driver no metrics until the run ends, and its workers are other processes. So, only
when the driver asks for it (a local run whose standard error is a terminal, not --quiet), the read and filter
steps each keep a small JSON file of their running counts in the run's _staging/ folder, rewritten at most once
a second (`ProgressFile`); the driver reads them twice a second and redraws the line (`ProgressLine`). A run on
a cluster never writes them: its progress is the engine's own UI.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any

PREFIX = "progress-"  # file names in the run's _staging/ folder: progress-<kind>-<id>.json


class ProgressFile:
    """A step's running counts, rewritten whole at most every `every` seconds (and by `flush`)."""

    def __init__(self, folder: str, kind: str, every: float = 1.0) -> None:
        self.path = f"{folder}/{PREFIX}{kind}-{uuid.uuid4().hex[:12]}.json"
        self.counts: dict[str, int] = {}
        self.every = every
        self._last = 0.0

    def add(self, **counts: int) -> None:
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        if time.monotonic() - self._last >= self.every:
            self.flush()

    def flush(self) -> None:
        from apache_beam.io.filesystems import FileSystems

        self._last = time.monotonic()
        try:
            with FileSystems.create(self.path) as f:
                f.write(json.dumps(self.counts).encode())
        except Exception:  # noqa: BLE001 - progress is for show; it never fails a step
            pass


def totals(folder: str) -> dict[str, int]:
    """The counts of every progress file in `folder`, summed (a file caught while being rewritten is skipped)."""
    out: dict[str, int] = {}
    try:
        names = [n for n in os.listdir(folder) if n.startswith(PREFIX)]
    except OSError:
        return out
    for name in names:
        try:
            with open(os.path.join(folder, name)) as f:
                counts = json.load(f)
        except (OSError, ValueError):
            continue
        for key, value in counts.items():
            out[key] = out.get(key, 0) + int(value)
    return out


def render(counts: dict[str, int], total_bytes: int, elapsed: float) -> str:
    """The line: 'read 12.0 of 48.0 MB (25%), 1,204 records, 310 past the filters, 96 records/s, 0:38 left'."""
    done = min(counts.get("bytes", 0), total_bytes) if total_bytes else counts.get("bytes", 0)
    records = counts.get("records", 0)
    share = f" ({done / total_bytes:.0%})" if total_bytes else ""
    # kB under a megabyte: the demo crawl read 'read 0.0 of 0.0 MB (96%)'.
    unit, scale = ("MB", 1e6) if max(total_bytes, done) >= 1e6 else ("kB", 1e3)
    line = (f"read {done / scale:,.1f} of {total_bytes / scale:,.1f} {unit}{share}, {records:,} records, "
            f"{counts.get('kept', 0):,} past the filters, {records / max(elapsed, 1e-9):,.0f} records/s")
    if done and total_bytes and done < total_bytes:
        left = int(elapsed * (total_bytes - done) / done)
        line += f", {left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d} left" if left >= 3600 else \
            f", {left // 60}:{left % 60:02d} left"
    return line


class ProgressLine:
    """Context manager: redraws the progress line on file descriptor `fd` (a terminal) until the run ends,
    then clears it. `last` holds the counts last drawn."""

    def __init__(self, folder: str, total_bytes: int, fd: int, interval: float = 0.5) -> None:
        self.folder, self.total_bytes, self.fd, self.interval = folder, total_bytes, fd, interval
        self.last: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.interval):
            counts = totals(self.folder)
            if counts:
                self.last = counts
                self._draw(render(counts, self.total_bytes, time.monotonic() - start))

    def _draw(self, text: str) -> None:
        try:
            os.write(self.fd, f"\r\x1b[Ktokenmill: {text}".encode())
        except OSError:
            self._stop.set()

    def __enter__(self) -> ProgressLine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        try:
            os.write(self.fd, b"\r\x1b[K")
        except OSError:
            pass
