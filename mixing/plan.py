"""The mixture plan: which documents of which sources, how many times, in what order. Pure numpy, no I/O:
`mixing.sources` reads the sources' columns into `SourceDocs`; `mixing.build` writes what `plan_mixture` returns.

For each source (target = weight x total_tokens, the last source taking the rounding so the targets sum to
total_tokens):
1. Copies: a document appears `copies(cluster_size)` times (the spec's repeat table; 1 without one). These
   (document, copy) entries are one epoch of the source; their tokens are the source's pool.
2. Epochs: floor(target / pool) whole passes, then a partial pass: whole row groups in a seeded order, and
   a seeded part of the next, whose tokens reach the remainder, the last entry cut to the tokens that reach
   it: a source's planned tokens are its target, exactly. (Row groups, not documents drawn from all of
   them: a reader decodes a row group whole, and a sample spread over every row group cost 2.5 tokens decoded
   per token read in bench/mixture.py; the documents of a row group are a random sample of the source
   already, as shards are sorted by a hash of the document id.)
3. Units: an epoch's entries grouped by (shard file, row group), in a seeded order. A unit is what a reader
   decodes at once (one row group), so a row group is decoded once per epoch. A document's copies are in one
   unit and so in one window, where the reader shuffles them apart among the window's other documents (as
   FineWeb-2's copies, written side by side, are spread by the shuffle at training time). Copies in units of
   their own would cost a decode of the whole row group for each: 3.8 row groups decoded per row group read
   with FineWeb-2's table (bench/mixture.py, 2026-12-06), the reader at 11 M tokens/s.
Then all sources' units are interleaved by weight: the next unit comes from the source whose planned tokens
so far are the smallest fraction of its target (Megatron-LM's blended dataset picks samples by the same
rule), so every stretch of the stream holds the sources in about their proportions. Consecutive units form
windows of about `window_tokens`; the reader shuffles the documents within a window.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np


class PlanError(ValueError):
    pass


# Units a plan may hold per source: ~10^13 tokens of row groups of 10^6 tokens. A source asked to repeat more
# than that (a weight meant for another source, a total with three zeros too many) stops the mix instead of
# building a plan for minutes.
MAX_UNITS = 10_000_000


@dataclass
class SourceDocs:
    """One source's selected documents (after `where`), one element per document, in shard order."""

    file: np.ndarray  # int32 index into the source's shard files
    row_group: np.ndarray  # int32
    row: np.ndarray  # int32 row within the row group
    tokens: np.ndarray  # int64 token_count
    copies: np.ndarray  # int64 copies per epoch (the repeat table on cluster_size)
    language: np.ndarray  # int32 code into `languages`
    topic: np.ndarray  # int32 code into `topics`
    languages: list[str]
    topics: list[str]


@dataclass
class Units:
    """Units in stream order: per unit its source, file, row group, epoch, window, tokens, take (0: every
    token of each row; else the unit is one row cut to its first `take` tokens), and its rows
    (`count[u]` of `rows` after the units before it: row indices within the row group, in the row group's
    order)."""

    source: np.ndarray
    file: np.ndarray
    row_group: np.ndarray
    epoch: np.ndarray
    window: np.ndarray
    tokens: np.ndarray
    take: np.ndarray
    count: np.ndarray
    rows: np.ndarray


@dataclass
class SourcePlan:
    target_tokens: int
    selected_tokens: int  # the selected documents' tokens, once each
    pool_tokens: int  # one epoch: sum of tokens x copies
    planned_tokens: int
    documents: int  # distinct documents selected
    entries: int  # planned (document, copy, epoch) entries
    full_epochs: int
    tokens_by_epoch: list[int]
    copies_histogram: dict[int, int]  # copies per epoch -> documents
    tokens_by_language: dict[str, int]
    tokens_by_topic: dict[str, int]

    @property
    def epochs(self) -> float:
        return self.planned_tokens / self.pool_tokens


def targets(weights: list[float], total_tokens: int) -> list[int]:
    """Tokens per source: weight x total, rounded; the last source takes the rounding."""
    out = [round(w * total_tokens) for w in weights[:-1]]
    return out + [total_tokens - sum(out)]


def _source_units(docs: SourceDocs, target: int, seed: int, index: int) -> tuple[SourcePlan, dict[str, np.ndarray]]:
    # Entries (a document's copies) in shard order: docs come in (file, row group, row) order, so a row group's
    # entries are one run, a unit of a whole epoch.
    doc_of = np.repeat(np.arange(len(docs.tokens), dtype=np.int64), docs.copies)
    entry_tokens = docs.tokens[doc_of]
    pool = int(entry_tokens.sum())
    if pool == 0:
        raise PlanError("no tokens to draw from (every document has 0 copies)")
    f, g = docs.file[doc_of], docs.row_group[doc_of]
    bounds = np.concatenate([[0], np.flatnonzero((np.diff(f) != 0) | (np.diff(g) != 0)) + 1, [len(doc_of)]])
    unit_tokens = np.add.reduceat(entry_tokens, bounds[:-1])
    full, remainder = divmod(target, pool)
    if (full + 1) * len(unit_tokens) > MAX_UNITS:
        raise PlanError(f"{target:,} tokens from {pool:,} per epoch would be {full:,} epochs, "
                        f"{(full + 1) * len(unit_tokens):,} plan units (at most {MAX_UNITS:,}): give it a smaller "
                        "weight")
    # Per epoch: (entry index arrays, tokens kept of a one-entry unit or 0) per unit, in the epoch's order.
    epochs: list[list[tuple[np.ndarray, int]]] = []
    for e in range(int(full) + (remainder > 0)):
        order = np.random.default_rng([seed, index, e]).permutation(len(unit_tokens))
        if e < full:
            epochs.append([(np.arange(bounds[u], bounds[u + 1]), 0) for u in order])
            continue
        # The last, partial epoch: whole row groups in the epoch's order until the next would pass the target
        # (each one decoded is read whole), then a seeded part of that row group's entries; the entry that
        # crosses the target keeps only the tokens that reach it, so the source's tokens are its target exactly.
        reach = np.cumsum(unit_tokens[order])
        k = int(np.searchsorted(reach, remainder))
        units = [(np.arange(bounds[u], bounds[u + 1]), 0) for u in order[:k]]
        need = remainder - (int(reach[k - 1]) if k else 0)
        entries = np.arange(bounds[order[k]], bounds[order[k] + 1])
        entries = entries[np.random.default_rng([seed, index, e, 1]).permutation(len(entries))]
        upto = np.cumsum(entry_tokens[entries])
        j = int(np.searchsorted(upto, need))
        if j:
            units.append((np.sort(entries[:j]), 0))
        units.append((entries[j: j + 1], int(entry_tokens[entries[j]] - (upto[j] - need))))
        epochs.append(units)
    parts: dict[str, list] = {k: [] for k in ("file", "row_group", "epoch", "tokens", "take", "count", "rows")}
    tokens_by_epoch, lang_tokens, topic_tokens = [], np.zeros(len(docs.languages), np.int64), np.zeros(
        len(docs.topics), np.int64)
    for e, units in enumerate(epochs):
        entries = np.concatenate([u for u, _ in units])
        d = doc_of[entries]
        count = np.array([len(u) for u, _ in units], np.int64)
        take = np.array([t for _, t in units], np.int64)
        t = docs.tokens[d].copy()
        t[np.cumsum(count)[take > 0] - 1] = take[take > 0]  # a cut unit is one entry
        first = np.cumsum(count) - count
        parts["file"].append(docs.file[d][first])
        parts["row_group"].append(docs.row_group[d][first])
        parts["epoch"].append(np.full(len(units), e))
        parts["tokens"].append(np.add.reduceat(t, first))
        parts["take"].append(take)
        parts["count"].append(count)
        parts["rows"].append(docs.row[d])
        tokens_by_epoch.append(int(t.sum()))
        lang_tokens += np.bincount(docs.language[d], weights=t, minlength=len(docs.languages)).astype(np.int64)
        topic_tokens += np.bincount(docs.topic[d], weights=t, minlength=len(docs.topics)).astype(np.int64)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    sizes, counts = np.unique(docs.copies, return_counts=True)
    plan = SourcePlan(
        target_tokens=target, selected_tokens=int(docs.tokens.sum()), pool_tokens=pool,
        planned_tokens=sum(tokens_by_epoch), documents=len(docs.tokens), entries=len(out["rows"]),
        full_epochs=int(full), tokens_by_epoch=tokens_by_epoch,
        copies_histogram={int(s): int(c) for s, c in zip(sizes, counts, strict=True)},
        tokens_by_language={docs.languages[i]: int(t) for i, t in enumerate(lang_tokens) if t},
        tokens_by_topic={docs.topics[i]: int(t) for i, t in enumerate(topic_tokens) if t})
    return plan, out


def plan_mixture(sources: list[SourceDocs], weights: list[float], total_tokens: int, seed: int,
                 window_tokens: int) -> tuple[Units, list[SourcePlan]]:
    """The units of every source interleaved by weight, cut into windows. Raises PlanError (with the source's
    index in `.args[1]`) for a source with nothing to draw from."""
    plans, per_source = [], []
    for i, (docs, target) in enumerate(zip(sources, targets(weights, total_tokens), strict=True)):
        if len(docs.tokens) == 0:
            raise PlanError("no documents selected", i)
        try:
            plan, units = _source_units(docs, target, seed, i)
        except PlanError as exc:
            raise PlanError(exc.args[0], i) from None
        plans.append(plan)
        per_source.append(units)
    # Interleave: the source furthest behind its target (as a fraction) gives the next unit; ties by index.
    order: list[tuple[int, int]] = []
    heap = [(0.0, i) for i, u in enumerate(per_source) if len(u["tokens"])]
    heapq.heapify(heap)
    taken = [0] * len(per_source)
    done = [0] * len(per_source)
    while heap:
        _, i = heapq.heappop(heap)
        u = taken[i]
        order.append((i, u))
        taken[i] += 1
        done[i] += int(per_source[i]["tokens"][u])
        if taken[i] < len(per_source[i]["tokens"]):
            heapq.heappush(heap, (done[i] / plans[i].target_tokens, i))
    src = np.array([i for i, _ in order], dtype=np.int32)
    # Each stream unit's place among all sources' units laid end to end.
    at = np.cumsum([0] + [len(u["tokens"]) for u in per_source])[:-1][src] + np.array([u for _, u in order])

    def pick(key: str) -> np.ndarray:
        return np.concatenate([u[key] for u in per_source])[at]

    tokens = pick("tokens").astype(np.int64)
    count = pick("count").astype(np.int64)
    unit_rows = [r for u in per_source for r in np.split(u["rows"], np.cumsum(u["count"])[:-1])]
    rows = np.concatenate([unit_rows[k] for k in at])
    # Windows: a new one starts once the current one holds window_tokens.
    before = np.cumsum(tokens) - tokens
    window = (before // window_tokens).astype(np.int64)
    window = np.unique(window, return_inverse=True)[1].astype(np.int32)  # consecutive ids from 0
    units = Units(source=src, file=pick("file").astype(np.int32), row_group=pick("row_group").astype(np.int32),
                  epoch=pick("epoch").astype(np.int32), window=window,
                  tokens=tokens, take=pick("take").astype(np.int64), count=count,
                  rows=rows.astype(np.int32))
    return units, plans
