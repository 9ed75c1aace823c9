"""Near-duplicate removal as Beam shuffles: signatures -> LSH buckets -> star edges -> connected components
(large-star / small-star rounds) -> one survivor per component (highest quality score, then the recipe's
survivor rule: smallest id, or first in the crawl) ->
each member confirmed against the survivor by exact shingle Jaccard. No step holds more than one key group.

Shuffles per run: band keys (bands x (id, 8-bit check signature) per document), 2 per component round
(edges), the convergence check, the rank join and cluster group (ids and ranks only), the document join
(every document once) and the survivor group (clustered documents a second time).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

import apache_beam as beam
import numpy as np

from dedup.components import both_directions, large_star, small_star, star_edges, star_root, survivor_key
from dedup.exact import survivor_order
from dedup.minhash import band_keys, check_values, hashed_jaccard, shingle_hashes
from outputs.staging import read_staged_docs
from pipelines.documents import LEDGER
from pipelines.metrics import NAMESPACE, StageCounters
from pipelines.staging import settled
from pipelines.worker import apply_worker_settings
from schemas.recipe import NearDedupConfig, Recipe
from schemas.records import STAGE_NEAR_DEDUP, Decision, LateDrop, StagedRef

_SNAPSHOT = re.compile(r"CC-MAIN-\d{4}-\d{2}")
NOT_CONVERGED = "not_converged"
UNCLUSTERED = "unclustered"


def snapshot_of(source: str) -> str:
    m = _SNAPSHOT.search(source)
    return m.group(0) if m else ""


def _signed(ref: StagedRef, cfg: NearDedupConfig, rule: str) -> tuple[str, str, tuple, np.ndarray]:
    """StagedRef -> (doc_id, scope, survivor rank, signature); the signature was computed at staging, while the
    text was at hand; the rank is dedup.components.survivor_key (quality score, then the recipe's survivor
    rule)."""
    scope = snapshot_of(ref.source) if cfg.scope == "snapshot" else ""
    rank = survivor_key(ref.doc_id, ref.quality, survivor_order(ref.doc_id, ref.source, ref.offset, rule))
    return ref.doc_id, scope, rank, np.frombuffer(ref.signature, dtype="<u8")


def _bucket_keys(item, cfg: NearDedupConfig) -> Iterator:
    doc_id, scope, _rank, sig = item
    # The verification copy travels with every band key: 8 bits per value (dedup.minhash.check_values).
    check = check_values(sig) if cfg.verify else None
    for band, key in enumerate(band_keys(sig, cfg.bands, cfg.rows)):
        yield (scope, band, key), (doc_id, check)


def _emitting_both(step: Callable[[str, Iterable[str]], Iterator[tuple[str, str]]]):
    """A star step that emits each of its edges in both directions, ready for the next adjacency shuffle
    (one transform per step instead of a step and a separate both_directions)."""

    def both(node: str, neighbors: Iterable[str]) -> Iterator[tuple[str, str]]:
        for edge in step(node, neighbors):
            yield from both_directions(edge)

    return both


def _round(adjacency_edges, label: str):
    """One large-star then one small-star step, each a shuffle of the undirected edge list (given and
    returned with both directions of every edge)."""
    for name, step in (("Large", large_star), ("Small", small_star)):
        adjacency_edges = (
            adjacency_edges
            | f"{label}{name}Group" >> beam.GroupByKey()
            | f"{label}{name}Star" >> beam.FlatMapTuple(_emitting_both(step))
        )
    return adjacency_edges


def _check_star(node: str, neighbors: Iterable[str]) -> Iterator:
    """Converged graphs are stars: a node with a smaller neighbor must have no other neighbor."""
    nbrs = set(neighbors)
    if len(nbrs) > 1 and min(nbrs) < node:
        yield NOT_CONVERGED


def _route(element) -> Iterator:
    """Join result per doc id -> the ref itself when it is in no cluster (UNCLUSTERED), else
    (survivor id, ref) so each cluster meets in one group."""
    _doc_id, grouped = element
    survivor = next(iter(grouped["cluster"]), None)
    for ref in grouped["doc"]:
        if survivor is None:
            yield beam.pvalue.TaggedOutput(UNCLUSTERED, ref)
        else:
            yield survivor, ref


class _Confirm(beam.DoFn):
    """One cluster (grouped by its survivor; refs with their text) -> the survivor with cluster_size, each
    member that is confirmed a duplicate of it as a near_duplicate LateDrop, and unconfirmed members kept;
    texts are let go again on the way out.

    Two passes over the group: the first finds the survivor and hashes its shingles, the second compares each
    member with it, so only one document's shingles are held at a time besides the survivor's."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.counters = StageCounters(STAGE_NEAR_DEDUP)

    def process(self, element) -> Iterator:
        survivor_id, members = element
        cfg = self.recipe.dedup.near
        survivor = next(ref for ref in members if ref.doc_id == survivor_id)
        survivor_shingles = shingle_hashes(survivor.text, cfg.ngram) if cfg.confirm_threshold > 0 else None
        size = survivor.cluster_size
        for ref in members:
            if ref.doc_id == survivor_id:
                continue
            self.counters.inp.inc()
            ref.cluster_id = survivor_id
            similarity = float("nan")
            if survivor_shingles is not None:
                similarity = round(hashed_jaccard(shingle_hashes(ref.text, cfg.ngram), survivor_shingles), 6)
                if similarity < cfg.confirm_threshold:
                    # In the LSH component but not a duplicate of its survivor (a chain A~B~C): kept.
                    beam.metrics.Metrics.counter(NAMESPACE, "near_dedup/kept_unconfirmed").inc()
                    self.counters.kept.inc()
                    yield replace(ref, text="")
                    continue
            size += ref.cluster_size
            self.counters.dropped("near_duplicate")
            decision = Decision(STAGE_NEAR_DEDUP, "near_duplicate", score=similarity,
                                detail=f"near duplicate of {survivor_id}")
            yield beam.pvalue.TaggedOutput(LEDGER, LateDrop(replace(ref, text=""), decision))
        self.counters.inp.inc()
        self.counters.kept.inc()
        yield replace(survivor, text="", cluster_id=survivor_id, cluster_size=size)


class ClusterSignatures(beam.PTransform):
    """(doc_id, scope, rank, signature) -> ((doc_id, survivor id) for every document in a cluster of two or
    more, convergence violations). Documents in no cluster produce nothing. The survivor is the member of
    smallest rank: the highest quality score, then the recipe's survivor rule (dedup.components.survivor_key)."""

    def __init__(self, cfg: NearDedupConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def expand(self, signed):
        cfg = self.cfg
        edges = (
            signed
            | "BandKeys" >> beam.FlatMap(_bucket_keys, cfg=cfg)
            | "GroupBuckets" >> beam.GroupByKey()
            | "StarEdges" >> beam.FlatMapTuple(lambda _k, members: star_edges(members, cfg.threshold, cfg.verify))
            | "CountEdges" >> beam.Map(_count_edge)
        )
        edges = edges | "BothDirections" >> beam.FlatMap(both_directions)
        for i in range(cfg.max_rounds):
            edges = _round(edges, f"Round{i:02d}")
        adjacency = edges | "FinalGroup" >> beam.GroupByKey()
        violations = adjacency | "CheckStars" >> beam.FlatMapTuple(_check_star)
        roots = adjacency | "Roots" >> beam.MapTuple(star_root)  # (node, root) for every clustered node
        rank = signed | "Rank" >> beam.Map(lambda s: (s[0], s[2]))
        cluster = (
            {"root": roots, "rank": rank}
            | "JoinRank" >> beam.CoGroupByKey()
            | "RootRank" >> beam.FlatMapTuple(
                lambda node, g: [(r, (node, next(iter(g["rank"])))) for r in g["root"]]
            )
            | "GroupCluster" >> beam.GroupByKey()
            | "Survivor" >> beam.FlatMapTuple(_survivor)
        )
        return cluster, violations


def _survivor(_root: str, members: Iterable[tuple[str, tuple]]) -> Iterator:
    members = list(members)  # (doc id, rank) pairs: a few dozen bytes per member
    survivor = min(members, key=lambda m: m[1])[0]
    for node, _rank in members:
        yield node, survivor


class NearDedup(beam.PTransform):
    """StagedRefs -> survivors (main), near_duplicate LateDrops (LEDGER), convergence violations."""

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe

    def expand(self, refs):
        cfg = self.recipe.dedup.near
        signed = refs | "Sign" >> beam.Map(_signed, cfg=cfg, rule=self.recipe.dedup.survivor)
        cluster, violations = signed | "Cluster" >> ClusterSignatures(cfg)
        routed = (
            # The signature (~0.9 KB) and exact key were read by Sign and ExactDedup: the join does not carry them.
            {"doc": refs | "KeyDocs" >> beam.Map(lambda r: (r.doc_id, settled(r))),
             "cluster": cluster}
            | "JoinDocs" >> beam.CoGroupByKey()
            | "Route" >> beam.FlatMap(_route).with_outputs(UNCLUSTERED, main="clustered")
        )
        confirmed = (
            routed.clustered
            # Clustered documents get their text back for the confirmation, one read per staging file.
            | "KeyByStagingFile" >> beam.MapTuple(lambda survivor, ref: (ref.staged, (survivor, ref)))
            | "GroupByStagingFile" >> beam.GroupByKey()
            | "RestoreText" >> beam.ParDo(RestoreText())
            | "GroupBySurvivor" >> beam.GroupByKey()
            | "Confirm" >> beam.ParDo(_Confirm(self.recipe)).with_outputs(LEDGER, main="survivors")
        )
        unclustered = routed[UNCLUSTERED] | "CountUnclustered" >> beam.ParDo(_CountKept())
        survivors = (confirmed.survivors, unclustered) | "Survivors" >> beam.Flatten()
        return survivors, confirmed[LEDGER], violations


class _CountKept(beam.DoFn):
    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.counters = StageCounters(STAGE_NEAR_DEDUP)

    def process(self, ref: StagedRef) -> Iterator[StagedRef]:
        self.counters.inp.inc()
        self.counters.kept.inc()
        yield ref


def _count_edge(edge):
    beam.metrics.Metrics.counter(NAMESPACE, "near_dedup/candidate_edges").inc()
    return edge


class RestoreText(beam.DoFn):
    """(staging file, [(key, StagedRef)]) -> (key, StagedRef with its text), reading only their frames."""

    def process(self, element: tuple[str, Iterable[tuple[Any, StagedRef]]]) -> Iterator[tuple[Any, StagedRef]]:
        path, items = element
        items = list(items)  # the clustered documents of one staging file: refs
        for ref, doc in read_staged_docs(path, {ref.staged_at: ref for _key, ref in items}):
            ref.text = doc.text
        yield from items
