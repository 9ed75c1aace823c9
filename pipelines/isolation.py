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
import traceback
from collections.abc import Callable, Sequence
from typing import TypeVar

from console.safe import shown
from ingest.extract import ExtractorUnavailable
from pipelines.metrics import StageCounters
from schemas.recipe import Recipe
from schemas.records import REASON_INTERNAL_ERROR, Decision, Document, LedgerRow, ledger_row_for_drop
from storage.retry import StoreError

# Raised by the environment, not by a record: re-raised so the runner retries the bundle.
ENVIRONMENT_ERRORS: tuple[type[BaseException], ...] = (StoreError, ExtractorUnavailable, OSError, MemoryError)
# A ledger detail is for humans: enough of the message to find the bug, bounded whatever the record holds.
DETAIL_CHARS = 300

T = TypeVar("T")
R = TypeVar("R")

_log = logging.getLogger("tokenmill.isolation")
# (step, exception type) pairs whose traceback this process has logged: one each, not one per record (up to
# 300,000 a snapshot at the default --max-record-errors); the ledger holds every record's message.
_logged: set[tuple[str, str]] = set()


def internal_error(stage: str, step: str, exc: BaseException, doc_id: str = "") -> Decision:
    """The Decision that drops a record whose `step` (inside ledger stage `stage`) raised `exc`. The first
    traceback of each step and exception type goes to the worker's log (shown with --verbose), escaped; the type
    and message of every one to the ledger."""
    name = type(exc).__name__
    if (step, name) not in _logged:
        _logged.add((step, name))
        _log.warning("%s", shown(f"record {doc_id}: {name} raised in {step} (the first of this kind here): "
                                 f"{''.join(traceback.format_exception(exc))}", lines=True))
    return Decision(stage, REASON_INTERNAL_ERROR, detail=f"{step}: {name}: {exc}"[:DETAIL_CHARS])


def dropped_row(doc: Document, decision: Decision, counters: StageCounters, recipe: Recipe) -> LedgerRow:
    """The ledger row that drops a Document for `decision`, counted in its stage's counters."""
    counters.dropped(decision.reason)
    out = recipe.output
    return ledger_row_for_drop(doc, decision, out.seed, out.dropped_text_sample_rate)


def batch_or_each(fn: Callable[[Sequence[T]], Sequence[R]], items: Sequence[T]) -> list[R | Exception]:
    """fn over the whole batch (one model call, one tokenizer call); should the batch raise, fn over each item
    alone, so that only an item that raises by itself gets its exception in its place (the others' results are
    what the batch would have given them). The environment's errors are raised."""
    try:
        return list(fn(items))
    except ENVIRONMENT_ERRORS:
        raise
    except Exception:  # noqa: BLE001 - find the item at fault, below
        pass
    results: list[R | Exception] = []
    for item in items:
        try:
            results.append(fn([item])[0])
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - this item's failure, for the caller's ledger row
            results.append(exc)
    return results
