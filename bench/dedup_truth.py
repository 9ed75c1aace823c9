"""Measuring near-dedup quality against exact Jaccard: ground truth by brute force, then precision/recall.

Used by bench/dedup_eval.py and by the CI test that guards against regressions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from dedup.minhash import normalize_for_minhash


def shingle_set(text: str, n: int = 5) -> frozenset[str]:
    words = normalize_for_minhash(text).split()
    if len(words) <= n:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def similar_pairs(texts: dict[str, str], threshold: float, n: int = 5) -> list[tuple[str, str, float]]:
    """Every pair with exact word-n-gram Jaccard >= threshold. Exhaustive: pairs that share no shingle have
    Jaccard 0, so an inverted index lists every pair that could qualify and each is scored exactly."""
    sets = {k: shingle_set(t, n) for k, t in texts.items()}
    index: dict[str, list[str]] = defaultdict(list)
    for doc_id, shingles in sets.items():
        for s in shingles:
            index[s].append(doc_id)
    candidates: set[tuple[str, str]] = set()
    for ids in index.values():
        if len(ids) > 1:
            ids = sorted(ids)
            candidates.update((ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids)))
    out = []
    for a, b in sorted(candidates):
        j = jaccard(sets[a], sets[b])
        if j >= threshold:
            out.append((a, b, j))
    return out


@dataclass
class DedupScore:
    removed: int
    correct_removals: int
    expected_removals: int
    precision: float
    recall: float


def score_removals(
    candidates: Iterable[str], removed: set[str], true_pairs: list[tuple[str, str, float]]
) -> DedupScore:
    """A removed document is correct when it has a true duplicate among the survivors; the ideal removes
    all but one document of each group of true duplicates (connected by true pairs)."""
    candidates = set(candidates)
    survivors = candidates - removed
    neighbors: dict[str, set[str]] = defaultdict(set)
    parent = {d: d for d in candidates}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, _ in true_pairs:
        if a in candidates and b in candidates:
            neighbors[a].add(b)
            neighbors[b].add(a)
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, int] = defaultdict(int)
    for d in candidates:
        groups[find(d)] += 1
    expected = sum(size - 1 for size in groups.values())
    correct = sum(1 for d in removed if neighbors[d] & survivors)
    return DedupScore(
        removed=len(removed),
        correct_removals=correct,
        expected_removals=expected,
        precision=correct / len(removed) if removed else 1.0,
        recall=min(correct, expected) / expected if expected else 1.0,
    )
