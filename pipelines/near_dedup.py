"""Near-duplicate removal as Beam shuffles: signatures -> LSH buckets -> star edges -> connected components
(large-star / small-star rounds, stopped once converged) -> one survivor per component (highest quality score,
then the recipe's survivor rule: smallest id, or first in the crawl) -> each member confirmed against the
survivor by exact shingle Jaccard. No step holds a whole component: a key group is at most
dedup.near.max_group values; larger ones (a template's 10^6 copies) go through combiners, side inputs and
salted groups. docs/dedup.md walks through it with the shuffle sizes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

import apache_beam as beam
import numpy as np
import xxhash

from dedup.components import (
    Neighbors,
    band_prints,
    both_directions,
    breaks_star,
    closed_min,
    components_in_one_group,
    large_star,
    large_star_edge,
    merge_neighbors,
    small_star,
    star_edges,
    survivor_key,
)
from dedup.exact import survivor_order
from dedup.minhash import band_keys, check_values, hashed_jaccard, shingle_hashes
from outputs.staging import read_staged_docs
from outputs.timing import MARK_BUCKETS, MARK_CONFIRM_END, MARK_FINAL, MARK_ROUND
from pipelines.documents import LEDGER
from pipelines.metrics import NAMESPACE, StageCounters, mark, sum_pairs
from pipelines.staging import settled
from pipelines.worker import apply_worker_settings
from schemas.recipe import NearDedupConfig, Recipe
from schemas.records import STAGE_NEAR_DEDUP, Decision, LateDrop, StagedRef

UNCLUSTERED = "unclustered"
HUB = "hub"
DONE = "done"
SIZES = "sizes"
SURVIVOR = "survivor"


class NotConverged(RuntimeError):
    """The components were not stars after dedup.near.max_rounds rounds and too many edges were left to finish
    them in one group; raised before anything is written."""


def _signed(ref: StagedRef, cfg: NearDedupConfig, rule: str, snapshots: dict[str, str]) -> tuple:
    """StagedRef -> (doc_id, scope, survivor rank, signature); the signature was computed at staging, while the
    text was at hand; the rank is dedup.components.survivor_key (quality score, then the recipe's survivor
    rule); the scope is the input file's snapshot (pipelines.documents.SNAPSHOTS) when dedup is per snapshot."""
    scope = snapshots.get(ref.source, "") if cfg.scope == "snapshot" else ""
    rank = survivor_key(ref.doc_id, ref.quality, survivor_order(ref.doc_id, ref.source, ref.offset, rule))
    return ref.doc_id, scope, rank, np.frombuffer(ref.signature, dtype="<u8")


def _bucket_keys(item, cfg: NearDedupConfig) -> Iterator:
    mark(MARK_BUCKETS)
    doc_id, scope, _rank, sig = item
    # The verification copy travels with every band key: 8 bits per value (dedup.minhash.check_values).
    check = check_values(sig) if cfg.verify else None
    keys = band_keys(sig, cfg.bands, cfg.rows)
    # 4 bytes for each earlier band: whether a pair shares one (components.star_edges); ~0.36 KB a document.
    prints = band_prints(keys)
    for band, key in enumerate(keys):
        yield (scope, band, key), (doc_id, check, prints[: 4 * band])


class _NeighborsFn(beam.CombineFn):
    """dedup.components.Neighbors of every node, combined where the edges are (no node's list is held)."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, neighbor):
        return merge_neighbors([acc, Neighbors(neighbor, None, 1)])

    def merge_accumulators(self, accs):
        return merge_neighbors(accs)

    def extract_output(self, acc):
        return acc


def _undirected(totals: tuple[int, int], at: str) -> tuple[int, int]:
    mark(at)  # the graph's state is known: a round starts (outputs/timing.py)
    directed, broken = totals
    return directed // 2, broken


def _graph_state(neighbors, label: str, at: str):
    """(node, Neighbors) -> singleton (undirected edges, nodes breaking the star shape); `at` is the mark
    recorded when it is known (a round's start, or the final graph's)."""
    return (
        neighbors
        | f"{label}Tally" >> beam.MapTuple(lambda node, nb: (nb.count, int(breaks_star(node, nb))))
        | f"{label}Totals" >> beam.CombineGlobally(sum_pairs)
        | f"{label}Undirected" >> beam.Map(_undirected, at)
    )


def _gate(edge, state, *, hubs):
    """Edges of a converged graph leave the rounds (DONE); the others go on, hub edges apart (HUB)."""
    if state[1] == 0:
        yield beam.pvalue.TaggedOutput(DONE, edge)
    elif edge[0] in hubs:
        yield beam.pvalue.TaggedOutput(HUB, (edge, hubs[edge[0]]))
    else:
        yield edge


def _emitting_both(step: Callable[[str, Iterable[str]], Iterator[tuple[str, str]]]):
    """A star step that emits each of its edges in both directions, ready for the next adjacency shuffle."""

    def both(node: str, neighbors: Iterable[str]) -> Iterator[tuple[str, str]]:
        for edge in step(node, neighbors):
            yield from both_directions(edge)

    return both


def _hub_step(step):
    def both(item) -> Iterator[tuple[str, str]]:
        (node, neighbor), smallest = item
        for edge in step(node, neighbor, smallest):
            yield from both_directions(edge)

    return both


def _round(edges, label: str, max_group: int, at: str):
    """One large-star then one small-star step over the undirected edge list (both directions of every edge).

    A combiner first gives every node its Neighbors record: whether the graph has converged (then every edge
    leaves as DONE and the round, and every later one, shuffles nothing), and which nodes are hubs (more than
    `max_group` edges). A hub's smallest neighbor reaches its edges as a side input (there are at most
    2 x edges / max_group hubs), so its edges are stepped one by one wherever they are; the other nodes' edges
    are grouped by node. The small-star step groups every node's edges but holds only its smaller neighbors
    (after a large-star step, a star's center has none).
    Returns (next edges, edges that left converged, (undirected edges, nodes breaking the star shape))."""
    neighbors = edges | f"{label}Neighbors" >> beam.CombinePerKey(_NeighborsFn())
    state = _graph_state(neighbors, label, at)
    hubs = (
        neighbors
        | f"{label}Hubs" >> beam.Filter(lambda kv: kv[1].count > max_group)
        | f"{label}HubMin" >> beam.MapTuple(lambda node, nb: (node, closed_min(node, nb)))
    )
    gated = edges | f"{label}Gate" >> beam.FlatMap(
        _gate, beam.pvalue.AsSingleton(state), hubs=beam.pvalue.AsDict(hubs)
    ).with_output_types(tuple[str, str]).with_outputs(DONE, HUB, main="grouped")
    large = (
        (
            gated.grouped
            | f"{label}LargeGroup" >> beam.GroupByKey()
            | f"{label}LargeStar" >> beam.FlatMapTuple(_emitting_both(large_star)),
            gated[HUB] | f"{label}LargeHubEdges" >> beam.FlatMap(_hub_step(large_star_edge)),
        )
        | f"{label}LargeEdges" >> beam.Flatten()
    )
    small = (
        large
        | f"{label}SmallGroup" >> beam.GroupByKey()
        | f"{label}SmallStar" >> beam.FlatMapTuple(_emitting_both(small_star))
    )
    return small, gated[DONE], state


def _count_edge(edge):
    beam.metrics.Metrics.counter(NAMESPACE, "near_dedup/candidate_edges").inc()
    return edge


def _roots(item: tuple[str, Neighbors], final_state, rounds: int, limit: int | None) -> Iterator[tuple[str, str]]:
    """(node, component id) once the graph is stars. A graph that is not, but can be finished in one group
    (`_finish_key`: at most `limit` edges, any number when `limit` is None), gets its roots there; a larger
    one fails the run first (NotConverged), before any document is joined or written."""
    edges, broken = final_state
    if not broken:
        node, nb = item
        yield node, closed_min(node, nb)
    elif limit is not None and edges > limit:
        raise NotConverged(
            f"near dedup did not converge in {rounds} rounds: {broken} of the LSH graph's nodes are not yet in "
            f"a star and its {edges} edges are more than dedup.near.max_group ({limit}) can finish in one "
            "group; raise dedup.near.max_rounds"
        )


def _finish_key(edge: tuple[str, str], final_state, limit: int | None) -> Iterator:
    """Every edge (once) of a graph the rounds left unconverged that can be finished in one group, to it."""
    edges, broken = final_state
    if broken and (limit is None or edges <= limit) and edge[0] < edge[1]:
        yield None, edge


def _finished(_key: None, edges: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    yield from sorted(components_in_one_group(edges).items())


class _MinRankFn(beam.CombineFn):
    """A component's members (doc id, rank) -> (survivor = member of smallest rank, its rank, member count)."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, member):
        return self.merge_accumulators([acc, (member[0], member[1], 1)])

    def merge_accumulators(self, accs):
        best, n = None, 0
        for acc in accs:
            if acc is None:
                continue
            n += acc[2]
            if best is None or acc[1] < best[1]:
                best = acc
        return None if best is None else (best[0], best[1], n)

    def extract_output(self, acc):
        return acc[0], acc[2]  # (survivor, size)


def _size_bucket(size: int) -> str:
    """Component sizes by order of magnitude: "2", "3-10", "11-100", ..."""
    if size <= 2:
        return str(size)
    upper = 10 ** math.ceil(math.log10(size))
    return f"{max(3, upper // 10 + 1)}-{upper}"


def _route_member(item: tuple[str, tuple[str, tuple]], big) -> Iterator:
    """A member of a large component gets its (survivor, size) here; the others go to the join by root."""
    root, member = item
    if root in big:
        yield beam.pvalue.TaggedOutput("big", (member[0], big[root]))
    else:
        yield root, member[0]


def _members_of(_root: str, grouped) -> Iterator:
    """(root, {"survivor": [(survivor, size)], "member": [node, ...]}) -> (node, (survivor, size))."""
    survivor = next(iter(grouped["survivor"]))
    for node in grouped["member"]:
        yield node, survivor


class ClusterSignatures(beam.PTransform):
    """(doc_id, scope, rank, signature) -> ((doc_id, (survivor id, component size)) for every document in a
    component of two or more, per-round and component-size records for stats.json). Documents in no component
    produce nothing. The survivor is the member of smallest rank: the highest quality score, then the recipe's
    survivor rule (dedup.components.survivor_key)."""

    def __init__(self, cfg: NearDedupConfig, rounds: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.rounds = rounds

    def expand(self, signed):
        cfg = self.cfg
        edges = (
            signed
            | "BandKeys" >> beam.FlatMap(_bucket_keys, cfg=cfg)
            | "GroupBuckets" >> beam.GroupByKey()
            | "StarEdges" >> beam.FlatMapTuple(
                lambda k, members: star_edges(members, cfg.threshold, cfg.verify, band=k[1]))
            | "CountEdges" >> beam.Map(_count_edge)
        )
        roots, rounds = edges | "Components" >> ConnectedComponents(cfg.max_rounds, cfg.max_group, self.rounds)
        rank = signed | "Rank" >> beam.Map(lambda s: (s[0], s[2]))
        by_root = (
            {"root": roots, "rank": rank}
            | "JoinRank" >> beam.CoGroupByKey()
            | "RootRank" >> beam.FlatMapTuple(
                lambda node, g: [(r, (node, next(iter(g["rank"])))) for r in g["root"]]
            )
        )
        survivors = by_root | "Survivor" >> beam.CombinePerKey(_MinRankFn())
        big = beam.pvalue.AsDict(
            survivors | "BigComponents" >> beam.Filter(lambda kv: kv[1][1] > cfg.max_group)
        )
        # A component's members learn its survivor in a join by component id, or, in a component too large for
        # one group, from a side input of the large components' survivors (at most signatures / max_group).
        members = by_root | "MemberIds" >> beam.FlatMap(_route_member, big).with_outputs(
            "big", main="small")
        cluster = (
            (
                {"survivor": survivors, "member": members.small}
                | "JoinSurvivor" >> beam.CoGroupByKey()
                | "SmallComponents" >> beam.FlatMapTuple(_members_of),
                members.big,
            )
            | "Clustered" >> beam.Flatten()
        )
        sizes = (
            survivors
            | "SizeBuckets" >> beam.MapTuple(lambda _root, s: _size_bucket(s[1]))
            | "CountSizes" >> beam.combiners.Count.PerElement()
            | "SizeRecord" >> beam.MapTuple(lambda bucket, n: ("components", bucket, n))
        )
        story = (rounds, sizes) | "Story" >> beam.Flatten()
        return cluster, story


class ConnectedComponents(beam.PTransform):
    """Undirected edges (u, v) -> ((node, component id) for every node with an edge, the rounds' records:
    ("round", i, edges, nodes not in a star) per round and ("final", edges, nodes not in a star)).

    `rounds` large-star/small-star rounds (_round; dedup.components.rounds_to_unroll chooses none for a small
    run, else dedup.near.max_rounds); each starts by asking whether the graph is already stars, and if so its
    edges, and every later round's, skip the shuffles. A graph that is not stars after the last round is
    finished in one group (dedup.components.components_in_one_group) when it has at most `max_group` edges,
    or whatever its size when no round was unrolled; a larger one fails with NotConverged, before any output.
    Either way a component's id is its smallest node."""

    def __init__(self, max_rounds: int, max_group: int, rounds: int | None = None) -> None:
        super().__init__()
        self.max_rounds = max_rounds
        self.max_group = max_group
        self.rounds = max_rounds if rounds is None else rounds

    def expand(self, edges):
        edges = edges | "BothDirections" >> beam.FlatMap(both_directions)
        done, states = [], []
        for i in range(self.rounds):
            edges, converged, state = _round(edges, f"Round{i:02d}", self.max_group, MARK_ROUND.format(i))
            done.append(converged)
            states.append(state | f"Round{i:02d}Record" >> beam.Map(lambda s, i=i: ("round", i, *s)))
        every = (*done, edges) | "FinalEdges" >> beam.Flatten()
        final = every | "FinalNeighbors" >> beam.CombinePerKey(_NeighborsFn())
        final_state = _graph_state(final, "Final", MARK_FINAL)
        # A run that unrolled no round is a run of small inputs (dedup.components.rounds_to_unroll): its one group
        # takes the whole graph, which those inputs bound (at most bands x documents edges); after rounds, at
        # most max_group edges, like every other group.
        limit = self.max_group if self.rounds else None
        stars = final | "Roots" >> beam.FlatMap(
            _roots, beam.pvalue.AsSingleton(final_state), rounds=self.rounds, limit=limit)
        finished = (
            every
            | "FinishKey" >> beam.FlatMap(_finish_key, beam.pvalue.AsSingleton(final_state), limit)
            | "FinishGroup" >> beam.GroupByKey()
            | "Finish" >> beam.FlatMapTuple(_finished)
        )
        roots = (stars, finished) | "AllRoots" >> beam.Flatten()
        final_record = final_state | "FinalRecord" >> beam.Map(lambda s: ("final", *s))
        return roots, (*states, final_record) | "Rounds" >> beam.Flatten()


def _route(element) -> Iterator:
    """Join result per doc id -> the ref itself when it is in no component (UNCLUSTERED), else
    ((survivor, size), ref)."""
    _doc_id, grouped = element
    cluster = next(iter(grouped["cluster"]), None)
    for ref in grouped["doc"]:
        if cluster is None:
            yield beam.pvalue.TaggedOutput(UNCLUSTERED, ref)
        else:
            yield cluster, ref


def _salted(item, max_group: int) -> Iterator:
    """((survivor, size), ref) -> ((survivor, salt), ref): a component is confirmed in ceil(size / max_group)
    groups, members dealt by a hash of their id, and the survivor (with its text) goes to each of them."""
    (survivor, size), ref = item
    salts = max(1, math.ceil(size / max_group))
    if ref.doc_id == survivor:
        for salt in range(salts):
            yield (survivor, salt), ref
    else:
        yield (survivor, xxhash.xxh64_intdigest(ref.doc_id.encode()) % salts), ref


class _Confirm(beam.DoFn):
    """One confirmation group ((survivor, salt), the survivor and some members with their texts) -> members that
    are confirmed duplicates of the survivor as near_duplicate LateDrops (LEDGER), unconfirmed members kept,
    the confirmed members' cluster sizes (SIZES), and from group 0 the survivor itself (SURVIVOR); texts are let
    go on the way out.

    Two passes over the group: the first finds the survivor and hashes its shingles, the second compares each
    member with it, so only one member's shingles are held at a time besides the survivor's."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.counters = StageCounters(STAGE_NEAR_DEDUP)

    def process(self, element) -> Iterator:
        (survivor_id, salt), members = element
        cfg = self.recipe.dedup.near
        survivor = next(ref for ref in members if ref.doc_id == survivor_id)
        survivor_shingles = shingle_hashes(survivor.text, cfg.ngram) if cfg.confirm_threshold > 0 else None
        confirmed = 0
        for ref in members:
            if ref.doc_id == survivor_id:
                continue
            self.counters.inp.inc()
            similarity = float("nan")
            if survivor_shingles is not None:
                similarity = round(hashed_jaccard(shingle_hashes(ref.text, cfg.ngram), survivor_shingles), 6)
                if similarity < cfg.confirm_threshold:
                    # In the LSH component but not a duplicate of its survivor (a chain A~B~C): kept.
                    beam.metrics.Metrics.counter(NAMESPACE, "near_dedup/kept_unconfirmed").inc()
                    self.counters.kept.inc()
                    yield replace(ref, text="", cluster_id=survivor_id)
                    continue
            confirmed += ref.cluster_size
            self.counters.dropped("near_duplicate")
            decision = Decision(STAGE_NEAR_DEDUP, "near_duplicate", score=similarity,
                                detail=f"near duplicate of {survivor_id}")
            yield beam.pvalue.TaggedOutput(LEDGER, LateDrop(replace(ref, text="", cluster_id=survivor_id), decision))
        if confirmed:
            yield beam.pvalue.TaggedOutput(SIZES, (survivor_id, confirmed))
        if salt == 0:
            self.counters.inp.inc()
            self.counters.kept.inc()
            yield beam.pvalue.TaggedOutput(SURVIVOR, (survivor_id, replace(survivor, text="", cluster_id=survivor_id)))

    def finish_bundle(self) -> None:
        mark(MARK_CONFIRM_END)


def _with_size(_survivor_id: str, grouped) -> Iterator[StagedRef]:
    mark(MARK_CONFIRM_END)
    for ref in grouped["ref"]:
        yield replace(ref, cluster_size=ref.cluster_size + sum(grouped["size"]))


class NearDedup(beam.PTransform):
    """StagedRefs -> survivors (main), near_duplicate LateDrops (LEDGER), the clustering's story for stats.json
    (per-round edges, component sizes). `snapshots` ((file base name, snapshot) pairs) scopes a per-snapshot
    dedup."""

    def __init__(self, recipe: Recipe, snapshots=None, rounds: int | None = None) -> None:
        super().__init__()
        self.recipe = recipe
        self.snapshots = snapshots
        self.rounds = rounds  # ConnectedComponents: None = dedup.near.max_rounds

    def expand(self, refs):
        cfg = self.recipe.dedup.near
        snapshots = self.snapshots if self.snapshots is not None else refs.pipeline | "NoSnapshots" >> beam.Create([])
        signed = refs | "Sign" >> beam.Map(_signed, cfg=cfg, rule=self.recipe.dedup.survivor,
                                           snapshots=beam.pvalue.AsDict(snapshots))
        cluster, story = signed | "Cluster" >> ClusterSignatures(cfg, self.rounds)
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
            | "KeyByStagingFile" >> beam.MapTuple(lambda cluster, ref: (ref.staged, (cluster, ref)))
            | "GroupByStagingFile" >> beam.GroupByKey()
            | "RestoreText" >> beam.ParDo(RestoreText())
            | "Salt" >> beam.FlatMap(_salted, max_group=cfg.max_group)
            | "GroupForConfirm" >> beam.GroupByKey()
            | "Confirm" >> beam.ParDo(_Confirm(self.recipe)).with_outputs(LEDGER, SIZES, SURVIVOR, main="kept")
        )
        survivors = (
            {"ref": confirmed[SURVIVOR],
             "size": confirmed[SIZES] | "SumConfirmed" >> beam.CombinePerKey(sum)}
            | "JoinSizes" >> beam.CoGroupByKey()
            | "SurvivorSizes" >> beam.FlatMapTuple(_with_size)
        )
        unclustered = routed[UNCLUSTERED] | "CountUnclustered" >> beam.ParDo(_CountKept())
        kept = (survivors, confirmed.kept, unclustered) | "Survivors" >> beam.Flatten()
        return kept, confirmed[LEDGER], story


class _CountKept(beam.DoFn):
    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.counters = StageCounters(STAGE_NEAR_DEDUP)

    def process(self, ref: StagedRef) -> Iterator[StagedRef]:
        self.counters.inp.inc()
        self.counters.kept.inc()
        yield ref

    def finish_bundle(self) -> None:
        mark(MARK_CONFIRM_END)


class RestoreText(beam.DoFn):
    """(staging file, [(key, StagedRef)]) -> (key, StagedRef with its text), reading only their frames."""

    def process(self, element: tuple[str, Iterable[tuple[Any, StagedRef]]]) -> Iterator[tuple[Any, StagedRef]]:
        path, items = element
        items = list(items)  # the clustered documents of one staging file: refs
        # Copies with the text: Beam forbids changing an input element.
        texts = {ref.staged_at: doc.text for ref, doc in read_staged_docs(path, {r.staged_at: r for _k, r in items})}
        for key, ref in items:
            yield key, replace(ref, text=texts[ref.staged_at])


def near_dedup_stats(cfg: NearDedupConfig, story: Iterable[tuple], snapshots: Iterable[tuple[str, str]]) -> dict:
    """stats.json's near_dedup section from ClusterSignatures' records, as measured on the data: the rounds that
    stepped (a round whose input was already stars shuffles nothing), the edges and the nodes not yet in a
    star entering each, whether the final graph is stars (else it was finished in one group), the LSH components
    by size (before confirmation),
    and with scope "snapshot" the input files per snapshot."""
    rounds, components, final = [], {}, (0, 0)
    for record in story:
        if record[0] == "round":
            rounds.append(record[1:])
        elif record[0] == "components":
            components[record[1]] = record[2]
        else:
            final = record[1:]
    stepped = [{"round": i + 1, "edges": edges, "not_in_star": broken}
               for i, edges, broken in sorted(rounds) if broken]
    out = {
        "scope": cfg.scope,
        "max_rounds": cfg.max_rounds,
        # The rounds the job graph held: none for a small run (dedup.components.rounds_to_unroll).
        "rounds_unrolled": len(rounds),
        "rounds_used": len(stepped),
        "converged": final[1] == 0,
        # Not stars after the rounds, and small enough to be finished in one group (ConnectedComponents).
        "finished_in_one_group": final[1] > 0,
        "rounds": stepped,
        "final_edges": final[0],
        "components": dict(sorted(components.items(), key=lambda kv: int(kv[0].split("-")[0]))),
    }
    if cfg.scope == "snapshot":
        files: dict[str, int] = {}
        for _source, snapshot in snapshots:
            files[snapshot] = files.get(snapshot, 0) + 1
        out["snapshots"] = dict(sorted(files.items()))
    return out
