"""Keep Beam's and warcio's chatter off a local run's console, and nothing else.

A local run printed ~20 lines of Beam INFO logging per SDK worker, a bigquery/apitools warning per process
and three lines per odd record from warcio, around tokenmill's few lines. The SDK workers are processes the
runner starts with this process's standard error, so a logging setting here cannot reach them. `QuietStderr`
puts a pipe in place of file descriptor 2 for the run (the workers inherit it) and forwards every line except
those matching `NOISE`; tracebacks and every other message pass. `--verbose` runs without it.

Ctrl-C: a terminal sends SIGINT to its whole foreground process group, so every SDK worker and every extraction
child gets it with the driver. Each printed its KeyboardInterrupt traceback, Beam's harness its grpc errors and
the runner "Worker subprocess exited with return code -2": 160-255 lines before tokenmill's one. From the moment
the signal is sent `QuietStderr` shows nothing more (those lines are what `--verbose` shows), and once the run
has unwound, file descriptor 2 stays away from the terminal for the rest of the process (`terminal` is where the
caller's one line goes). The forwarding thread cannot wait for Python's handler, which runs in the main thread
when that thread next gets a CPU: it sees the signal pending (`signal.sigpending`) until the kernel hands it to
a thread, then delivered (Python's C-level handler writes it to a pipe given to `signal.set_wakeup_fd`). Linux's
sigpending reports only the signals the asking thread blocks, so the forwarding thread blocks SIGINT (which also
keeps the kernel from handing it the signal). The pending window can still open a moment after a worker that
got the same signal printed, so every line is held `HOLD_SECONDS` before it is shown.
"""

from __future__ import annotations

import logging
import os
import re
import select
import signal
import sys
import threading
import time
from collections import deque

from console.endings import held_interrupts

# Lines that say nothing to a user of tokenmill: Beam's INFO logging, its import-time bigquery/apitools warning,
# the SDK worker's semi_persistent_directory warning (its logger is __main__ when Beam's worker main is run
# as a script, its module name under harness/local_worker.py), and warcio's three-line "Record not followed by newline".
NOISE = re.compile(
    r"INFO:|WARNING:root:apitools not found"
    r"|WARNING:(__main__|apache_beam\.runners\.worker\.sdk_worker_main):No semi_persistent_directory"
    r"|\s*WARNING: Record not followed by newline|\s+Offset: \d+$|\s+Remainder: b"
)

# A line longer than this (a worker writing without newlines) is passed on in pieces of this size.
MAX_LINE = 1 << 16

# How long a line is held before it is shown, in case a Ctrl-C it is about is being delivered. The terminal
# sends SIGINT to the driver and its workers at once, but the driver's main thread, the one the kernel hands it
# to, may wait for a CPU while the workers run: on two busy cores a worker's traceback came 3-40 ms before the
# driver's signal handler ran. 0.25 s is several times that, and no one reads a console line sooner.
HOLD_SECONDS = 0.25


class ApitoolsFilter(logging.Filter):
    """Drops Beam's import-time 'apitools not found' warning (logged to the root logger as Beam is imported)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("apitools not found")


# The Google client libraries Beam's gcp extra brings (the Dataflow runner, gs://) warn as they are imported,
# whatever the command: FutureWarnings about their own support plans for this Python and grpcio (four at each
# `import apache_beam` with apache-beam[gcp] 2.62.0 on Python 3.11, 2026-12-07, in the driver and in each local
# SDK worker). They ask nothing of a tokenmill user; `tokenmill run --help` printed them before its usage. This
# process ignores them by module prefix; the processes it starts learn it from PYTHONWARNINGS, which names
# modules exactly: the two that warn.
GOOGLE_IMPORT_WARNINGS = {"category": FutureWarning, "module": r"google(\.|$)"}
GOOGLE_WARNING_MODULES = ("google.auth.transport.grpc", "google.api_core._python_version_support")


def drop_import_warning() -> None:
    """Install ApitoolsFilter on the root logger and ignore the Google libraries' import-time FutureWarnings
    here and in the processes this one starts (before apache_beam is imported), once."""
    import warnings

    root = logging.getLogger()
    if not any(isinstance(f, ApitoolsFilter) for f in root.filters):
        root.addFilter(ApitoolsFilter())
    warnings.filterwarnings("ignore", **GOOGLE_IMPORT_WARNINGS)
    given = [w for w in os.environ.get("PYTHONWARNINGS", "").split(",") if w]
    ours = [f"ignore::FutureWarning:{module}" for module in GOOGLE_WARNING_MODULES]
    os.environ["PYTHONWARNINGS"] = ",".join([*given, *(w for w in ours if w not in given)])


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, while file descriptor 2 is still the real standard error.

    Why: the tracker is a process that lives until this one exits. Started later, by the first extraction child
    of a run whose worker is in this process (direct_running_mode=in_memory, driver/runner.py), it inherited
    the pipe, and `__exit__`, which waits for the pipe's last writer to close it, waited its full 5 s after
    every such run (24-record run: 5.1 s to stats.json, 10.7 s to exit). `ensure_running` is what
    multiprocessing calls itself before it starts a child; the module is not in Python's documentation, so a
    Python without it starts nothing here."""
    try:
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    except (ImportError, AttributeError, OSError):
        pass


class QuietStderr:
    """Context manager: file descriptor 2 (this process's and its children's standard error) filtered, and
    silenced from a Ctrl-C (SIGINT) on: `interrupted` is set then, and `terminal` is the descriptor of the real
    standard error for the one line the caller prints about it."""

    def __init__(self, noise: re.Pattern = NOISE) -> None:
        self.noise = noise
        self.saved = -1
        self.thread: threading.Thread | None = None
        self.interrupted = threading.Event()
        self._wake_read = self._wake_write = -1
        self._old_wakeup = -1

    @property
    def terminal(self) -> int:
        """The real standard error: the saved descriptor while filtering or after an interrupt, else 2."""
        return self.saved if self.saved >= 0 else 2

    def __enter__(self) -> QuietStderr:
        """A Ctrl-C while descriptor 2 is being swapped is held until the swap is done, then unwinds as one in
        the block would: raised half-way through, descriptor 2 was left the pipe with no `__exit__` to come,
        and the caller's one line went into it (seen once in 30 Ctrl-Cs typed 0.18-1.6 s into a run)."""
        sys.stderr.flush()
        try:
            with held_interrupts():
                _start_resource_tracker()
                read_end, write_end = os.pipe()
                self.saved = os.dup(2)
                os.dup2(write_end, 2)
                os.close(write_end)
                self._watch_sigint()
                self.thread = threading.Thread(target=self._forward, args=(read_end,), daemon=True)
                self.thread.start()
        except KeyboardInterrupt:
            self.__exit__(KeyboardInterrupt, None, None)
            raise
        return self

    def _watch_sigint(self) -> None:
        """Have the C-level signal handler write each signal's number into a pipe `_forward` watches."""
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        try:
            self._old_wakeup = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        except ValueError:  # not the main thread (which alone can set it): the interrupt is seen on exit only
            os.close(wake_read)
            os.close(wake_write)
            return
        self._wake_read, self._wake_write = wake_read, wake_write

    def _check_wake(self) -> None:
        """Set `interrupted` if a SIGINT was delivered since the last look (never blocks)."""
        if signal.SIGINT in signal.sigpending():  # sent, not yet delivered: the main thread waits for a CPU
            self.interrupted.set()
        if self._wake_read < 0:
            return
        try:
            signals = os.read(self._wake_read, 512)
        except BlockingIOError:
            return
        except OSError:
            signals = b""
        if not signals:  # closed: the run is over
            self._wake_read = -1
        elif signal.SIGINT in signals:
            self.interrupted.set()

    def _emit(self, line: bytes) -> None:
        self._check_wake()  # the signal reaches this process before a worker that got it can print about it
        if self.interrupted.is_set() or self.noise.match(line.decode("utf-8", "replace")):
            return
        try:
            os.write(self.saved, line)
        except OSError:  # the terminal is gone: there is no one left to tell
            pass

    def _forward(self, read_end: int) -> None:
        # Blocked here, a SIGINT sent to the process shows in this thread's sigpending until another thread takes it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        wake = self._wake_read
        held: deque[tuple[float, bytes]] = deque()  # (when it may be shown, line)
        pending = b""
        try:
            while True:
                now = time.monotonic()
                while held and held[0][0] <= now:
                    self._emit(held.popleft()[1])
                watched = [read_end] + ([self._wake_read] if self._wake_read >= 0 else [])
                ready = select.select(watched, [], [], max(0.0, held[0][0] - now) if held else None)[0]
                if self._wake_read in ready:
                    self._check_wake()
                if read_end not in ready:
                    continue
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                due = time.monotonic() + HOLD_SECONDS
                held.extend((due, line + b"\n") for line in lines)
                while len(pending) >= MAX_LINE:
                    held.append((due, pending[:MAX_LINE]))
                    pending = pending[MAX_LINE:]
            # Every writer has closed: the run is over (or its interrupt already seen), nothing to wait for.
            for _, line in held:
                self._emit(line)
            if pending:
                self._emit(pending)
        finally:
            os.close(read_end)
            if wake >= 0:
                os.close(wake)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        sys.stderr.flush()
        if self._wake_write >= 0:
            signal.set_wakeup_fd(self._old_wakeup)
            os.close(self._wake_write)  # the forwarding thread sees it closed and stops watching
        if self.interrupted.is_set() or (exc_type is not None and issubclass(exc_type, KeyboardInterrupt)):
            self.interrupted.set()
            # Workers still dying hold the pipe, and Beam's clean-up threads here write to descriptor 2 until
            # this process ends: all of it goes nowhere. `saved` stays open as `terminal` for the caller's line.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            return
        os.dup2(self.saved, 2)  # the pipe's last writer here closes; the thread drains what is left and ends
        if self.thread is not None:
            self.thread.join(timeout=5)
        os.close(self.saved)
        self.saved = -1
