"""How a command ends when it is stopped from outside: Ctrl-C, or a reader that closes the pipe early.

Unix tools end quietly in both cases, and the exit status says which: a shell reports 128 + the signal's number
for a command a signal stopped. Python instead prints a KeyboardInterrupt or BrokenPipeError traceback and exits
1 (`tokenmill inspect RUN | head -1`), and even after catching BrokenPipeError the interpreter's last flush of
standard output raises again ("Exception ignored ... BrokenPipeError", exit 120).

Closed pipe: 141 (128 + SIGPIPE), what `cat`, `grep` or `git log` give under `| head` and what `set -o pipefail`
scripts already expect of them; a status of 0 would tell a script that reads tokenmill's own status the output
was complete when its reader saw only part of it. A command that had already failed keeps its own status.
Standard output (and standard error, when it is the same pipe) then points at /dev/null, so the interpreter's
final flush has nowhere to fail. SIGPIPE itself stays ignored (Python's default): with its default action a
socket to a store closing under a write would kill the process.

Ctrl-C: 130 (128 + SIGINT) and one line, `tokenmill: interrupted` (a run's own says how to run it again).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

INTERRUPTED = 130  # 128 + SIGINT
BROKEN_PIPE = 141  # 128 + SIGPIPE

# What a pipeline command says when it is interrupted: its output folder holds what it did (_started.json).
RESUME = "interrupted; the same command runs it again from the start"


@contextlib.contextmanager
def held_interrupts() -> Iterator[None]:
    """Hold a Ctrl-C that comes inside the block until the block ends, then raise KeyboardInterrupt.

    For importing Apache Beam (1.5 s of a run's start): a compiled (Cython) module patches collections.abc as it
    is imported, and a KeyboardInterrupt raised inside that patch is caught and printed ("Exception ignored in:
    <module 'collections.abc'>", "Cython module failed to patch module with custom type"), so the Ctrl-C was
    lost and the run went on to the end (CI on 1243931, 2026-12-07: exit 0 after a Ctrl-C 0.3 s in). Holding it
    loses nothing: the import has no state to unwind. Only the main thread can set a signal handler; elsewhere
    the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    before = signal.signal(signal.SIGINT, lambda signum, _frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
    if held:
        raise KeyboardInterrupt


def _same_file(a: int, b: int) -> bool:
    try:
        sa, sb = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _reader_gone(fd: int) -> bool:
    """Whether `fd` is a pipe whose reader has closed it (poll reports POLLERR on its write end)."""
    import select

    try:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def discard_output() -> None:
    """Point standard output, and standard error when it is the same file, at /dev/null (after EPIPE)."""
    both = _same_file(1, 2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        if both:
            os.dup2(devnull, 2)
    finally:
        os.close(devnull)


def finish(command: Callable[[], int], interrupted: str = "interrupted") -> int:
    """Run `command` (a command's body, returning its exit status) and flush its output; a closed pipe gives
    BROKEN_PIPE quietly, Ctrl-C one line `tokenmill: <interrupted>` and INTERRUPTED."""
    code = None
    try:
        try:
            code = command()
        except SystemExit as exc:  # argparse's --help and errors
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
            if _reader_gone(1):  # argparse swallows the OSError of a write into a closed pipe
                raise BrokenPipeError from None
        sys.stdout.flush()  # here, not in the interpreter's shutdown, where a closed pipe cannot be caught
    except BrokenPipeError:
        discard_output()
        return code or BROKEN_PIPE
    except KeyboardInterrupt:
        try:
            print(f"tokenmill: {interrupted}", file=sys.stderr)
        except OSError:
            pass
        return INTERRUPTED
    return code


def leave(code: int) -> None:
    """End the `tokenmill` (or `run_pipeline.py`) process with status `code`: what a normal exit does that
    matters, then `os._exit`, without the interpreter's teardown of every module and object.

    Why: that teardown did nothing a user needs and cost each command 0.5-0.7 s after its last line (Apache
    Beam, the Google client libraries and numba loaded: `python -c "import run_pipeline"` 1.89 s, 1.34 s
    leaving this way, 2026-12-07), and it is where Arrow's thread pool is destroyed, which sometimes aborted a
    command that read Parquet after it had printed everything ('terminate called without an active exception',
    exit -6, apache/arrow#34314). What a normal exit does first is still done, in its order: the threading
    module's shutdown (concurrent.futures' exit hooks, then every non-daemon thread joined), then the atexit
    handlers (logging flushed, multiprocessing's children stopped, a job server Beam started stopped), then
    standard output and error flushed; a Ctrl-C while those run leaves the status as it was, as it does in
    the interpreter's own exit. Both hooks are private names of the standard library: without either
    the process exits the normal way. Only for the command's own process, never for `main([...])` called in a
    process that goes on."""
    shutdown, exit_funcs = getattr(threading, "_shutdown", None), getattr(atexit, "_run_exitfuncs", None)
    if not callable(shutdown) or not callable(exit_funcs) or threading.current_thread() is not threading.main_thread():
        sys.exit(code)
    _flush()
    for step in (shutdown, exit_funcs):
        try:
            step()
        except KeyboardInterrupt:  # a Ctrl-C after the last line: the interpreter's own exit ignores it too
            pass
    _flush()
    os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a pipe closed by now (finish() said what it had to), or a closed stream
            pass
