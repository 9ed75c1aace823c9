"""The SDK worker process of Beam's local runner in tokenmill's runs (driver/runner.py: LocalRunner): Beam's own
worker main, then the process ends through `console.endings.leave`.

Why: the FnApiRunner stops its worker processes one after another, waiting for each to exit, and a worker that
had loaded Beam, tokenmill's stages, numba's kernels, lid.176 and the tokenizer spent 0.5-0.7 s in the
interpreter's teardown of those modules, so a run on two workers ended ~1.2 s after its last stage. `leave`
still does what a normal exit does first (threads joined, atexit handlers: the extraction children stopped,
logging flushed); a worker whose main raises exits the normal way, with its traceback and status 1."""

from __future__ import annotations

import sys


def main() -> None:
    from apache_beam.runners.worker import sdk_worker_main

    from console.endings import leave

    sdk_worker_main.main(sys.argv)
    leave(0)


if __name__ == "__main__":
    main()
