"""Per-record isolation: a record or document that makes a step raise becomes a ledger row, never a failed job.

On Dataflow, Flink or Spark a DoFn that raises fails its bundle; the runner retries the bundle a few times and
then fails the whole job. Over ~3 billion records written by strangers, a one-in-a-billion failure is certain,
so every step that handles one record or document catches what that record makes it raise and turns it into
a `Decision(stage, "internal_error", detail="<step>: <type>: <message>")`: a ledger row like any other drop, a
`<stage>/dropped/internal_error` counter, and a line in `tokenmill stats`. `run_pipeline` fails the run (exit 1)
when more than `--max-record-errors` of the records end so.

What is not the record's fault still fails the bundle, for the runner to retry as before: a store that keeps
failing (StoreError, after storage/retry.py's retries), a local file or disk error (OSError), memory running
out (MemoryError), an extraction process or model that cannot start (ExtractorUnavailable). A record's
failure would be the same on every retry; the environment's usually is not.
"""

from __future__ import annotations

import logging

from ingest.extract import ExtractorUnavailable
from schemas.records import REASON_INTERNAL_ERROR, Decision
from storage.retry import StoreError

# Raised by the environment, not by a record: re-raised so the runner retries the bundle.
ENVIRONMENT_ERRORS: tuple[type[BaseException], ...] = (StoreError, ExtractorUnavailable, OSError, MemoryError)
# A ledger detail is for humans: enough of the message to find the bug, bounded whatever the record holds.
DETAIL_CHARS = 300

_log = logging.getLogger("tokenmill.isolation")


def internal_error(stage: str, step: str, exc: BaseException, doc_id: str = "") -> Decision:
    """The Decision that drops a record whose `step` (inside ledger stage `stage`) raised `exc`. The traceback
    goes to the worker's log (shown with --verbose), the type and message to the ledger."""
    _log.warning("record %s: %s raised in %s", doc_id, type(exc).__name__, step, exc_info=exc)
    return Decision(stage, REASON_INTERNAL_ERROR, detail=f"{step}: {type(exc).__name__}: {exc}"[:DETAIL_CHARS])
