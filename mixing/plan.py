"""The mixture plan: which documents of which sources, how many times, in what order. Pure numpy, no I/O:
`mixing.sources` sums the sources' row groups into `SourceGroups`; `mixing.build` writes what `plan_mixture`
returns, a plan row group at a time (`mixing.folder.write_plan`, the rows from `unit_rows`). The plan works in
row groups, never in per-document arrays: what it holds grows with the units (row groups x epochs), and only
the row group a partial epoch cuts is loaded document by document (since 2026-12-07; before, every selected
document's columns and every planned entry were arrays in one process, ~11 GiB at 10^8 documents by
bench/mix_scale.py's slope). The plan bytes are the same as before.

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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


class PlanError(ValueError):
    pass


# Units a plan may hold per source: ~10^13 tokens of row groups of 10^6 tokens. A source asked to repeat more
# than that (a weight meant for another source, a total with three zeros too many) stops the mix instead of
# building a plan for minutes.
MAX_UNITS = 10_000_000

# Units whose rows are fetched at once when the plan is written (unit_rows): with release row groups of 2,000
# documents (output.row_group_rows) ~64 K documents' columns in memory when they are read from the shards again.
LOAD_UNITS = 32


@dataclass
class GroupDocs:
    """One row group's selected documents (after `where`), in row order: what its units' rows are made of.
    Loaded again for each plan row group that reads it, never held for a whole source (`SourceGroups.load`)."""

    row: np.ndarray  # int32 row within the row group
    tokens: np.ndarray  # int64 token_count
    copies: np.ndarray  # int64 copies per epoch (the repeat table on cluster_size)
    language: np.ndarray  # int32 code into the source's `languages`
    topic: np.ndarray  # int32 code into the source's `topics`


@dataclass
class SourceGroups:
    """One source as the plan sees it: per row group holding at least one entry (a selected document with
    copies), in shard order, its entries and tokens; the source's totals; and `load`, which gives a row
    group's documents when the plan needs them (the partial epoch's cut, the rows written). What it holds
    grows with the source's row groups, not its documents (issue 35)."""

    file: np.ndarray  # int32 index into the source's shard files
    row_group: np.ndarray  # int32
    entries: np.ndarray  # int64: sum of copies (a unit's rows in one epoch)
    tokens: np.ndarray  # int64: sum of token_count x copies (a unit's tokens in one epoch)
    # Tokens x copies per language and topic of each row group, sparse: group k's codes and tokens are
    # [offsets[k], offsets[k + 1]) of codes / tokens (for the partial epoch's composition).
    language_offsets: np.ndarray
    language_codes: np.ndarray
    language_tokens: np.ndarray
    topic_offsets: np.ndarray
    topic_codes: np.ndarray
    topic_tokens: np.ndarray
    documents: int  # selected documents, copies 0 included
    selected_tokens: int  # their tokens, once each
    copies_histogram: dict[int, int]  # copies per epoch -> documents
    languages: list[str]
    topics: list[str]
    load: Callable[[int, int], GroupDocs]  # (file, row_group) -> its selected documents


@dataclass
class Units:
    """Units in stream order: per unit its source, file, row group, epoch, window, tokens, take (0: every
    token of each row; else the unit is one row cut to its first `take` tokens) and `count` rows. A unit's
    rows (row indices within the row group, in the row group's order, a row once per copy) are those of its
    row group's documents (`unit_rows`), except the partial epochs' units, whose rows are in `special`
    (stream index -> rows)."""

    source: np.ndarray
    file: np.ndarray
    row_group: np.ndarray
    epoch: np.ndarray
    window: np.ndarray
    tokens: np.ndarray
    take: np.ndarray
    count: np.ndarray
    special: dict[int, np.ndarray]


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


def entry_docs(docs: GroupDocs) -> np.ndarray:
    """A row group's entries: each document's index once per copy, in row order."""
    return np.repeat(np.arange(len(docs.tokens), dtype=np.int64), docs.copies)


def entry_rows(row: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """A whole unit's rows: each selected document's row once per copy, in row order (int32)."""
    return np.repeat(row.astype(np.int32), copies)


def _sparse_sum(offsets: np.ndarray, codes: np.ndarray, tokens: np.ndarray, groups: np.ndarray,
                size: int) -> np.ndarray:
    """The tokens per code of the given row groups, from the sparse per-group sums."""
    if len(groups) == 0:
        return np.zeros(size, np.int64)
    lengths = offsets[groups + 1] - offsets[groups]
    at = np.repeat(offsets[groups] - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
    return np.bincount(codes[at], weights=tokens[at], minlength=size).astype(np.int64)


def _source_units(groups: SourceGroups, target: int, seed: int, index: int
                  ) -> tuple[SourcePlan, dict[str, np.ndarray], dict[int, np.ndarray]]:
    """One source's units in its own order (epoch by epoch), and the rows of its partial epoch's last two
    units (by their index among the source's units). Plans exactly what a plan over every entry at once did
    before 2026-12-07 (the same plan bytes): one unit per row group and epoch, so only the row group that
    the partial epoch cuts is loaded."""
    n = len(groups.tokens)
    pool = int(groups.tokens.sum())
    if pool == 0:
        raise PlanError("no tokens to draw from (every document has 0 copies)")
    full, remainder = divmod(target, pool)
    if (full + 1) * n > MAX_UNITS:
        raise PlanError(f"{target:,} tokens from {pool:,} per epoch would be {full:,} epochs, "
                        f"{(full + 1) * n:,} plan units (at most {MAX_UNITS:,}): give it a smaller weight")
    every = np.arange(n)
    lang_tokens = _sparse_sum(groups.language_offsets, groups.language_codes, groups.language_tokens, every,
                              len(groups.languages)) * full
    topic_tokens = _sparse_sum(groups.topic_offsets, groups.topic_codes, groups.topic_tokens, every,
                               len(groups.topics)) * full
    parts: dict[str, list] = {k: [] for k in ("group", "epoch", "tokens", "take", "count")}
    tokens_by_epoch = [pool] * int(full)
    special: dict[int, np.ndarray] = {}
    entries = full * int(groups.entries.sum())
    for e in range(int(full)):
        order = np.random.default_rng([seed, index, e]).permutation(n)
        parts["group"].append(order)
        parts["epoch"].append(np.full(n, e))
        parts["tokens"].append(groups.tokens[order])
        parts["take"].append(np.zeros(n, np.int64))
        parts["count"].append(groups.entries[order])
    if remainder:
        # The last, partial epoch: whole row groups in the epoch's order until the next would pass the target
        # (each one decoded is read whole), then a seeded part of that row group's entries; the entry that
        # crosses the target keeps only the tokens that reach it, so the source's tokens are its target exactly.
        e = int(full)
        order = np.random.default_rng([seed, index, e]).permutation(n)
        reach = np.cumsum(groups.tokens[order])
        k = int(np.searchsorted(reach, remainder))
        need = remainder - (int(reach[k - 1]) if k else 0)
        g = int(order[k])
        docs = groups.load(int(groups.file[g]), int(groups.row_group[g]))
        doc_of = entry_docs(docs)
        entry_tokens = docs.tokens[doc_of]
        if len(doc_of) != groups.entries[g] or int(entry_tokens.sum()) != groups.tokens[g]:
            raise PlanError(f"file {int(groups.file[g])} row group {int(groups.row_group[g])} changed while mixing")
        cut = np.random.default_rng([seed, index, e, 1]).permutation(len(doc_of))
        upto = np.cumsum(entry_tokens[cut])
        j = int(np.searchsorted(upto, need))
        take = int(entry_tokens[cut[j]] - (upto[j] - need))
        chosen = [np.sort(cut[:j])] if j else []
        chosen.append(cut[j: j + 1])
        extra = len(chosen)
        for c, entry_index in enumerate(chosen):  # the source's units before them: n per full epoch, then k
            special[n * int(full) + k + c] = docs.row[doc_of[entry_index]].astype(np.int32)
        t = entry_tokens[np.concatenate(chosen)].copy()
        t[-1] = take
        parts["group"].append(np.concatenate([order[:k], np.full(extra, g)]))
        parts["epoch"].append(np.full(k + extra, e))
        parts["tokens"].append(np.concatenate([groups.tokens[order[:k]], [int(t[:-1].sum()), take][-extra:]]))
        parts["take"].append(np.concatenate([np.zeros(k, np.int64), [0, take][-extra:]]))
        parts["count"].append(np.concatenate([groups.entries[order[:k]], [j, 1][-extra:]]))
        tokens_by_epoch.append(int(reach[k - 1] if k else 0) + int(t.sum()))
        entries += int(groups.entries[order[:k]].sum()) + j + 1
        d = doc_of[np.concatenate(chosen)]
        lang_tokens = lang_tokens + _sparse_sum(groups.language_offsets, groups.language_codes,
                                                groups.language_tokens, order[:k], len(groups.languages)) + \
            np.bincount(docs.language[d], weights=t, minlength=len(groups.languages)).astype(np.int64)
        topic_tokens = topic_tokens + _sparse_sum(groups.topic_offsets, groups.topic_codes, groups.topic_tokens,
                                                  order[:k], len(groups.topics)) + \
            np.bincount(docs.topic[d], weights=t, minlength=len(groups.topics)).astype(np.int64)
    out = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in parts.items()}
    out["file"] = groups.file[out["group"]]
    out["row_group"] = groups.row_group[out["group"]]
    plan = SourcePlan(
        target_tokens=target, selected_tokens=groups.selected_tokens, pool_tokens=pool,
        planned_tokens=sum(tokens_by_epoch), documents=groups.documents, entries=int(entries),
        full_epochs=int(full), tokens_by_epoch=tokens_by_epoch, copies_histogram=groups.copies_histogram,
        tokens_by_language={groups.languages[i]: int(t) for i, t in enumerate(lang_tokens) if t},
        tokens_by_topic={groups.topics[i]: int(t) for i, t in enumerate(topic_tokens) if t})
    return plan, out, special


def plan_mixture(sources: list[SourceGroups], weights: list[float], total_tokens: int, seed: int,
                 window_tokens: int) -> tuple[Units, list[SourcePlan]]:
    """The units of every source interleaved by weight, cut into windows. Raises PlanError (with the source's
    index in `.args[1]`) for a source with nothing to draw from. Holds a few numbers per unit, no rows:
    `unit_rows` gives them a stretch of units at a time."""
    plans, per_source, specials = [], [], []
    for i, (groups, target) in enumerate(zip(sources, targets(weights, total_tokens), strict=True)):
        if groups.documents == 0:
            raise PlanError("no documents selected", i)
        try:
            plan, units, special = _source_units(groups, target, seed, i)
        except PlanError as exc:
            raise PlanError(exc.args[0], i) from None
        plans.append(plan)
        per_source.append(units)
        specials.append(special)
    # Interleave: the source furthest behind its target (as a fraction) gives the next unit; ties by index.
    sizes = [len(u["tokens"]) for u in per_source]
    src = np.zeros(sum(sizes), np.int32)
    heap = [(0.0, i) for i, n in enumerate(sizes) if n]
    heapq.heapify(heap)
    taken = [0] * len(per_source)
    done = [0] * len(per_source)
    at_unit = 0
    while heap:
        _, i = heapq.heappop(heap)
        u = taken[i]
        src[at_unit] = i
        at_unit += 1
        taken[i] += 1
        done[i] += int(per_source[i]["tokens"][u])
        if taken[i] < sizes[i]:
            heapq.heappush(heap, (done[i] / plans[i].target_tokens, i))
    # Each stream unit's place among all sources' units laid end to end: a source's units keep their order.
    starts = np.cumsum([0] + sizes)[:-1]
    position = np.zeros(len(src), np.int64)
    for i in range(len(sizes)):
        mine = np.flatnonzero(src == i)
        position[mine] = np.arange(len(mine))
    at = starts[src] + position
    stream_index = np.empty(len(src), np.int64)
    stream_index[at] = np.arange(len(src))
    special = {int(stream_index[starts[i] + u]): rows for i, s in enumerate(specials) for u, rows in s.items()}

    def pick(key: str) -> np.ndarray:
        return np.concatenate([u[key] for u in per_source])[at]

    tokens = pick("tokens").astype(np.int64)
    # Windows: a new one starts once the current one holds window_tokens.
    before = np.cumsum(tokens) - tokens
    window = (before // window_tokens).astype(np.int64)
    window = np.unique(window, return_inverse=True)[1].astype(np.int32)  # consecutive ids from 0
    units = Units(source=src, file=pick("file").astype(np.int32), row_group=pick("row_group").astype(np.int32),
                  epoch=pick("epoch").astype(np.int32), window=window, tokens=tokens,
                  take=pick("take").astype(np.int64), count=pick("count").astype(np.int64), special=special)
    return units, plans


def unit_rows(units: Units, a: int, b: int,
              load: Callable[[list[tuple[int, int, int]]], list[np.ndarray]]) -> np.ndarray:
    """The rows of units [a, b) laid end to end (int32). `load` gives the entries' rows (`entry_rows`) of
    (source, file, row_group)s, in the order asked, LOAD_UNITS units' row groups at a time. Raises PlanError
    when a row group no longer holds the entries it was planned with (a source changed while mixing)."""
    out = []
    for c in range(a, b, LOAD_UNITS):
        d = min(c + LOAD_UNITS, b)
        keys = sorted({(int(units.source[u]), int(units.file[u]), int(units.row_group[u]))
                       for u in range(c, d) if u not in units.special})
        rows_of = dict(zip(keys, load(keys), strict=True))
        for u in range(c, d):
            rows = units.special.get(u)
            if rows is None:
                rows = rows_of[int(units.source[u]), int(units.file[u]), int(units.row_group[u])]
            if len(rows) != units.count[u]:
                raise PlanError(f"source {int(units.source[u])} file {int(units.file[u])} row group "
                                f"{int(units.row_group[u])} holds {len(rows):,} entries, planned with "
                                f"{int(units.count[u]):,}: it changed while mixing")
            out.append(rows)
    return np.concatenate(out) if out else np.zeros(0, np.int32)
