"""Transient store errors are retried, a bounded number of times, and then raised as StoreError.

Why: reading a crawl from object storage meets connection resets, HTTP 5xx and timeouts. Beam's S3 and GCS
clients retry some calls themselves; what is left over used to reach the WARC reader, which turned it into
a permanently truncated file (a `file_errors` entry, the rest of the file lost). Now a read that fails part
way through reopens the file at the byte it had reached; when the retries are spent, StoreError goes up
through the DoFn so the runner retries the bundle (its output is discarded; staging files of a failed
attempt are never read, see outputs/staging.py). Only damage in the bytes themselves (framing, gzip,
truncation) is a file error.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import BinaryIO, TypeVar

T = TypeVar("T")

# Attempts per call, and the delay before the second (doubling, capped). Beam's S3/GCS clients already back
# off inside one attempt (from 5 s), so ours stays short: 4 attempts, waits of 0.5 + 1 + 2 s.
ATTEMPTS = 4
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 8.0

_TRANSIENT_NAMES = ("timeout", "connectionerror", "connectionclosed", "connectionreset", "serviceunavailable",
                    "internalservererror", "toomanyrequests", "slowdown", "incompleteread", "protocolerror",
                    "endpointconnection", "responsestreamingerror", "brokenpipe", "remotedisconnected")
_TRANSIENT_TEXT = ("connection reset", "connection aborted", "connection refused", "connection was closed",
                   "timed out", "service unavailable", "internal error", "slow down", "temporarily unavailable",
                   "broken pipe", "incomplete read", "remote end closed", "bad gateway", "gateway timeout")


class StoreError(IOError):
    """A store kept failing after the retries: the runner should retry the bundle (never a file error)."""


def _status(exc: BaseException) -> int | None:
    for name in ("code", "status_code", "status"):
        value = getattr(exc, name, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


def is_transient(exc: BaseException) -> bool:
    """A connection reset, a timeout, HTTP 429 or 5xx, anywhere in the exception's chain."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, StoreError):
            return True
        if isinstance(exc, ConnectionError | TimeoutError):
            return True
        status = _status(exc)
        if status is not None:
            return status == 429 or 500 <= status < 600
        names = " ".join(c.__name__.lower() for c in type(exc).__mro__)
        if any(n in names for n in _TRANSIENT_NAMES):
            return True
        if any(t in str(exc).lower() for t in _TRANSIENT_TEXT):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt `attempt` (1-based; no wait before the first)."""
    return 0.0 if attempt <= 1 else min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (attempt - 2))


def retrying(call: Callable[[], T], what: str, attempts: int = ATTEMPTS) -> T:
    """`call()`, again after a transient error (bounded backoff); StoreError once the attempts are spent.
    A permanent error (not found, permission, a bad path) is raised at once, as it is."""
    for attempt in range(1, attempts + 1):
        time.sleep(backoff(attempt))
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - sorted into transient and permanent below
            if not is_transient(exc):
                raise
            if attempt == attempts:
                raise StoreError(f"{what}: {type(exc).__name__}: {exc} (still failing after {attempts} "
                                 "attempts)") from exc
    raise AssertionError("unreachable")


class RetryingReader(io.RawIOBase):
    """A file read front to back that survives a store failing part way: `open_at(position)` opens the file
    positioned at a byte (seeks when the store's stream can), and after an error the read resumes there.
    Every error from the store's stream counts as the store's (a stream of stored bytes has no other kind);
    after `attempts` failures in a row it is StoreError. `stream`: the file already opened at byte 0 (so that
    a missing file is the caller's error at once, not retried)."""

    def __init__(self, open_at: Callable[[int], BinaryIO], what: str, attempts: int = ATTEMPTS,
                 stream: BinaryIO | None = None) -> None:
        super().__init__()
        self._open_at = open_at
        self._what = what
        self._attempts = attempts
        self._stream: BinaryIO | None = stream
        self.position = 0
        self.reopened = 0  # how many times a failed read was resumed (for tests and logs)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        failures = 0
        while True:
            try:
                if self._stream is None:
                    self._stream = self._open_at(self.position)
                data = self._stream.read(len(buffer))
                break
            except Exception as exc:  # noqa: BLE001 - any failure of the store's stream: resume or give up
                failures += 1
                self._drop_stream()
                if failures >= self._attempts:
                    raise StoreError(f"{self._what}: read at byte {self.position} failed {failures} times: "
                                     f"{type(exc).__name__}: {exc}") from exc
                time.sleep(backoff(failures))  # the first resume at once: a long-lived connection dropped
                self.reopened += 1
        n = len(data)
        buffer[:n] = data
        self.position += n
        return n

    def _drop_stream(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # noqa: BLE001 - a broken stream may fail to close as well
                pass
        self._stream = None

    def close(self) -> None:
        self._drop_stream()
        super().close()
