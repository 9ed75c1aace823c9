"""Where fetched engines live: one folder, filled once and reused (`TOKENMILL_ENGINE_CACHE`, default
`.ci/engines` in the checkout), and the lock that keeps two fillers from writing it at once."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    path = Path(os.environ.get("TOKENMILL_ENGINE_CACHE") or CHECKOUT / ".ci" / "engines")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def locked(name: str) -> Iterator[Path]:
    """The cache folder, held under an exclusive lock named `name` (pytest workers or a bench beside a test)."""
    root = cache_dir()
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield root
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
