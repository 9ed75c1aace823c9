"""Word and block lists read once, when a filter is built (never at call time)."""

from __future__ import annotations

import gzip
import json
from functools import lru_cache

from storage.files import read_bytes
from storage.retry import StoreError


def _read_text(path: str) -> str:
    """A list file's text from any store (local, gs://, s3://), plain or .gz."""
    data = read_bytes(path)
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


@lru_cache(maxsize=64)
def read_list(path: str) -> frozenset[str]:
    """Non-empty, non-comment lines of a list file (plain or .gz), stripped and lower-cased."""
    try:
        lines = _read_text(path).splitlines()
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - OSError locally, the store's own error for a missing object
        raise FileNotFoundError(f"cannot read list file {path}: {exc}") from exc
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.lstrip().startswith("#"))


def read_lists(paths: list[str]) -> frozenset[str]:
    out: set[str] = set()
    for p in paths:
        out |= read_list(p)
    return frozenset(out)


@lru_cache(maxsize=8)
def read_stopwords_json(path: str) -> dict[str, frozenset[str]]:
    """stopwords-iso format: {"en": ["a", "about", ...], ...}; plain or .gz."""
    data = json.loads(_read_text(path))
    return {lang: frozenset(w.lower() for w in words) for lang, words in data.items()}
