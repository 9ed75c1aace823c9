"""Keep Beam's and warcio's chatter off a local run's console, and nothing else.

A local run printed ~20 lines of Beam INFO logging per SDK worker, a bigquery/apitools warning per process
and three lines per odd record from warcio, around tokenmill's few lines. The SDK workers are processes the
runner starts with this process's standard error, so a logging setting here cannot reach them. `QuietStderr`
puts a pipe in place of file descriptor 2 for the run (the workers inherit it) and forwards every line except
those matching `NOISE`; tracebacks and every other message pass. `--verbose` runs without it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading

# Lines that say nothing to a user of tokenmill: Beam's INFO logging, its import-time bigquery/apitools warning,
# the SDK worker's semi_persistent_directory warning, and warcio's three-line "Record not followed by newline".
NOISE = re.compile(
    r"INFO:|WARNING:root:apitools not found|WARNING:__main__:No semi_persistent_directory"
    r"|\s*WARNING: Record not followed by newline|\s+Offset: \d+$|\s+Remainder: b"
)


class ApitoolsFilter(logging.Filter):
    """Drops Beam's import-time 'apitools not found' warning (logged to the root logger as Beam is imported)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("apitools not found")


def drop_import_warning() -> None:
    """Install ApitoolsFilter on the root logger (before apache_beam is imported), once."""
    root = logging.getLogger()
    if not any(isinstance(f, ApitoolsFilter) for f in root.filters):
        root.addFilter(ApitoolsFilter())


class QuietStderr:
    """Context manager: file descriptor 2 (this process's and its children's standard error) filtered."""

    def __init__(self, noise: re.Pattern = NOISE) -> None:
        self.noise = noise
        self.saved = -1
        self.thread: threading.Thread | None = None

    def __enter__(self) -> QuietStderr:
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        self.saved = os.dup(2)
        os.dup2(write_end, 2)
        os.close(write_end)
        self.thread = threading.Thread(target=self._forward, args=(read_end,), daemon=True)
        self.thread.start()
        return self

    def _forward(self, read_end: int) -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not self.noise.match(line.decode("utf-8", "replace")):
                    os.write(self.saved, line)

    def __exit__(self, *exc: object) -> None:
        sys.stderr.flush()
        os.dup2(self.saved, 2)  # the pipe's last writer here closes; the thread drains what is left and ends
        if self.thread is not None:
            self.thread.join(timeout=5)
        os.close(self.saved)
