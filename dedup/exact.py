"""Exact deduplication: documents whose normalized text is identical share a key; one survives.

Normalization folds what does not change the content for training (Unicode compatibility forms, case,
runs of whitespace), so the same article served with different indentation counts as one
(normalization/text.py: normalize_for_exact, which says how it differs from the other three).
"""

from __future__ import annotations

import xxhash

from normalization.text import normalize_for_exact

# What exact_key is, as a dedup index records it: a release's keys match this run's only under the same one.
EXACT_KEY_DEFINITION = "xxh3_128 of NFKC, lower-cased, whitespace-folded text (dedup.exact.exact_key)"


def exact_key(text: str) -> str:
    """128-bit hash of the normalized text: collisions are negligible at billions of documents."""
    return xxhash.xxh3_128_hexdigest(normalize_for_exact(text).encode("utf-8"))


def survivor_order(doc_id: str, source: str, offset: int, rule: str = "smallest_id") -> tuple:
    """Sort key of a duplicate; the smallest survives (exact and near dedup alike).

    "smallest_id": the smallest doc id. "first_seen": the record that comes first in the crawl (its input
    file's name, then its byte offset there), then the id: datatrove's MinHash clustering keeps the first
    document it read of a cluster (its union-find root), so this is what FineWeb kept. Both are functions of
    the record, never of arrival order."""
    return (source, offset, doc_id) if rule == "first_seen" else (doc_id,)
