"""Exact deduplication: documents whose normalized text is identical share a key; one survives.

Normalization folds what does not change the content for training (Unicode compatibility forms, case,
runs of whitespace), so the same article served with different indentation counts as one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import xxhash


def normalize_for_exact(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def exact_key(text: str) -> str:
    """128-bit hash of the normalized text: collisions are negligible at billions of documents."""
    return xxhash.xxh3_128_hexdigest(normalize_for_exact(text).encode("utf-8"))


def survivor_id(doc_ids: Iterable[str]) -> str:
    """The document of a duplicate group that survives: the smallest doc id.

    A function of ids only, never of arrival order, so every runner and worker count picks the same one.
    Takes ids only so a group can be scanned twice (ids, then documents) without holding it in memory.
    """
    return min(doc_ids)
