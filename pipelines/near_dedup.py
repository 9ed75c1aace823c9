"""Near-duplicate removal as Beam shuffles: signatures -> LSH buckets -> star edges -> connected components
(large-star / small-star rounds) -> one survivor per component. No step holds more than one key group.

Shuffles per run: band keys (bands x (id, signature) per document), 2 per component round (edges), the
convergence check, the component-size join and the document join (documents once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np

from dedup.components import both_directions, large_star, small_star, star_edges, star_root
from dedup.minhash import MinHasher, band_keys, shingle_hashes
from pipelines.documents import LEDGER
from pipelines.metrics import NAMESPACE, StageCounters
from schemas.recipe import NearDedupConfig, Recipe
from schemas.records import STAGE_NEAR_DEDUP, Decision, Document, ledger_row_for_drop

_SNAPSHOT = re.compile(r"CC-MAIN-\d{4}-\d{2}")
NOT_CONVERGED = "not_converged"


def snapshot_of(source: str) -> str:
    m = _SNAPSHOT.search(source)
    return m.group(0) if m else ""


class _Sign(beam.DoFn):
    """Document -> (doc_id, scope, cluster weight, signature); the MinHash parameters load once per worker."""

    def __init__(self, cfg: NearDedupConfig) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        self.hasher = MinHasher(self.cfg.bands * self.cfg.rows, self.cfg.seed)
        self.timer = StageCounters(STAGE_NEAR_DEDUP)

    def process(self, doc: Document) -> Iterator:
        with self.timer.timed():
            sig = self.hasher.signatures([shingle_hashes(doc.text, self.cfg.ngram)])[0]
        scope = snapshot_of(doc.source) if self.cfg.scope == "snapshot" else ""
        yield doc.doc_id, scope, doc.cluster_size, sig


def _bucket_keys(item, cfg: NearDedupConfig) -> Iterator:
    doc_id, scope, _weight, sig = item
    # The verification copy travels with every band key: its low 32 bits halve the shuffle and change the
    # estimated Jaccard only when two different 64-bit minima agree in 32 bits (chance 2^-32 per value).
    check = (sig & np.uint64(0xFFFFFFFF)).astype(np.uint32) if cfg.verify else None
    for band, key in enumerate(band_keys(sig, cfg.bands, cfg.rows)):
        yield (scope, band, key), (doc_id, check)


def _round(edges, label: str):
    """One large-star then one small-star step, each a shuffle of the undirected edge list."""
    for name, step in (("Large", large_star), ("Small", small_star)):
        edges = (
            edges
            | f"{label}{name}Both" >> beam.FlatMap(both_directions)
            | f"{label}{name}Group" >> beam.GroupByKey()
            | f"{label}{name}Star" >> beam.FlatMapTuple(step)
        )
    return edges


def _check_star(node: str, neighbors: Iterable[str]) -> Iterator:
    """Converged graphs are stars: a node with a smaller neighbor must have no other neighbor."""
    nbrs = set(neighbors)
    if len(nbrs) > 1 and min(nbrs) < node:
        yield NOT_CONVERGED


class _Decide(beam.DoFn):
    """Join result per doc id -> survivor (main) or a near_duplicate ledger row."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def setup(self) -> None:
        self.counters = StageCounters(STAGE_NEAR_DEDUP)

    def process(self, element) -> Iterator:
        _doc_id, grouped = element
        for doc in grouped["doc"]:
            self.counters.inp.inc()
            info = next(iter(grouped["cluster"]), None)
            if info is None:
                self.counters.kept.inc()
                yield doc
                continue
            root, size = info
            if doc.doc_id == root:
                doc.cluster_id, doc.cluster_size = root, size
                self.counters.kept.inc()
                yield doc
                continue
            doc.cluster_id = root
            self.counters.dropped("near_duplicate")
            out = self.recipe.output
            decision = Decision(STAGE_NEAR_DEDUP, "near_duplicate", detail=f"near duplicate of {root}")
            row = ledger_row_for_drop(doc, decision, out.seed, out.dropped_text_sample_rate)
            yield beam.pvalue.TaggedOutput(LEDGER, row)


class ClusterSignatures(beam.PTransform):
    """(doc_id, scope, weight, signature) -> ((doc_id, (cluster root, cluster weight)) for every document in
    a cluster of two or more, convergence violations). Documents in no cluster produce nothing."""

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
        for i in range(cfg.max_rounds):
            edges = _round(edges, f"Round{i:02d}")
        adjacency = edges | "FinalBoth" >> beam.FlatMap(both_directions) | "FinalGroup" >> beam.GroupByKey()
        violations = adjacency | "CheckStars" >> beam.FlatMapTuple(_check_star)
        roots = adjacency | "Roots" >> beam.MapTuple(star_root)  # (node, root) for every clustered node
        weights = signed | "Weights" >> beam.Map(lambda s: (s[0], s[2]))
        node_weight = (
            {"root": roots, "weight": weights}
            | "JoinWeights" >> beam.CoGroupByKey()
            | "RootWeight" >> beam.FlatMapTuple(
                lambda node, g: [(r, (node, next(iter(g["weight"]), 1))) for r in g["root"]]
            )
        )
        cluster = (
            node_weight
            | "GroupCluster" >> beam.GroupByKey()
            | "ClusterInfo" >> beam.FlatMapTuple(
                lambda root, members: [
                    (node, (root, total))
                    for total in [sum(w for _n, w in members)]
                    for node, _w in members
                ]
            )
        )
        return cluster, violations


class NearDedup(beam.PTransform):
    """Documents -> survivors (main), near_duplicate ledger rows (LEDGER), convergence violations."""

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe

    def expand(self, docs):
        signed = docs | "Sign" >> beam.ParDo(_Sign(self.recipe.dedup.near))
        cluster, violations = signed | "Cluster" >> ClusterSignatures(self.recipe.dedup.near)
        decided = (
            {"doc": docs | "KeyDocs" >> beam.Map(lambda d: (d.doc_id, d)), "cluster": cluster}
            | "JoinDocs" >> beam.CoGroupByKey()
            | "Decide" >> beam.ParDo(_Decide(self.recipe)).with_outputs(LEDGER, main="survivors")
        )
        return decided.survivors, decided[LEDGER], violations


def _count_edge(edge):
    beam.metrics.Metrics.counter(NAMESPACE, "near_dedup/candidate_edges").inc()
    return edge
