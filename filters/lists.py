"""Word and block lists read once, when a filter is built (never at call time)."""

from __future__ import annotations

import gzip
import json
from functools import lru_cache


def _open_text(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


@lru_cache(maxsize=64)
def read_list(path: str) -> frozenset[str]:
    """Non-empty, non-comment lines of a list file (plain or .gz), stripped and lower-cased."""
    try:
        with _open_text(path) as f:
            return frozenset(
                line.strip().lower() for line in f if line.strip() and not line.lstrip().startswith("#")
            )
    except OSError as exc:
        raise FileNotFoundError(f"cannot read list file {path}: {exc}") from exc


def read_lists(paths: list[str]) -> frozenset[str]:
    out: set[str] = set()
    for p in paths:
        out |= read_list(p)
    return frozenset(out)


@lru_cache(maxsize=8)
def read_stopwords_json(path: str) -> dict[str, frozenset[str]]:
    """stopwords-iso format: {"en": ["a", "about", ...], ...}; plain or .gz."""
    with _open_text(path) as f:
        data = json.load(f)
    return {lang: frozenset(w.lower() for w in words) for lang, words in data.items()}
