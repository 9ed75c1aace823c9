"""Dedup against earlier releases ([dedup] against): the released documents' dedup index (exact keys, MinHash
band keys and signatures; release/publish.py carries it) joins this run's refs in Beam shuffles, so it scales
with the engine, not with one worker's memory. A run document that an indexed document already covers is
dropped with reason duplicate_of_release and cluster_id "<release name>:<doc_id>"; released files are only read.

    index files ─ReadReleasedIndex (each checked against its manifest sha256 as it is read)─▶ ReleasedDoc
        exact: (exact key) the smallest released ref per key by a combiner, then one GroupByKey with the run's
               refs, inside ExactDedup (pipelines/dedup.py): a key's group is the run's copies and at most one
               released ref, however many copies of a template the releases hold
        near:  (band, band key) members of both sides counted per bucket by a combiner; a bucket with more
               than dedup.near.max_group members on a side is split in salted groups of at most ~max_group
               per side (as within-run near dedup bounds its groups); GroupByKey of run and released members
               ─▶ candidate (run doc, released doc, estimated Jaccard) ─best per run doc─▶ CoGroupByKey with
               the refs ─▶ drops | the rest on to the run's own near dedup

Matching against releases is global: a crawl's copy of a page released from another snapshot is still a copy,
whatever `dedup.near.scope` says for dedup within the run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import xxhash

from dedup.minhash import band_keys, check_values, estimated_jaccard
from pipelines.documents import LEDGER
from pipelines.metrics import StageCounters, sum_pairs
from pipelines.worker import apply_worker_settings
from release.against import checked_index_file
from schemas.recipe import Recipe
from schemas.records import REASON_DUPLICATE_OF_RELEASE, STAGE_NEAR_DEDUP, Decision, LateDrop, StagedRef

MATCHED = "matched"  # side output of exact dedup and of NearAgainstReleases: ((release name, "exact" | "near"), 1)


class ReleasedDoc(NamedTuple):
    """One row of a release's dedup index, as the run reads it."""

    ref: str  # "<release name>:<doc_id>": the cluster_id a run document that duplicates it gets
    exact_key: str
    band_keys: list[int] | None
    check: bytes | None  # dedup.minhash.check_values of its signature


def read_index_file(item: tuple[str, str, str, str], near: bool) -> Iterator[ReleasedDoc]:
    """(release name, release path, index file in it, its manifest sha256) -> its rows, once the file's bytes
    match the sha256 (release.against.checked_index_file; IndexFileError fails the run in one line naming
    the file); the band keys and signature are read only for near dedup."""
    import pyarrow.parquet as pq

    name, release, entry, sha256 = item
    columns = ["doc_id", "exact_key"] + (["band_keys", "signature"] if near else [])
    with checked_index_file(release, entry, sha256) as path, open(path, "rb") as stream:
        for batch in pq.ParquetFile(stream).iter_batches(batch_size=10_000, columns=columns):
            for row in batch.to_pylist():
                sig = row.get("signature")
                check = check_values(np.frombuffer(sig, dtype="<u8")) if sig else None
                yield ReleasedDoc(f"{name}:{row['doc_id']}", row["exact_key"], row.get("band_keys"), check)


def release_name(ref: str) -> str:
    return ref.rsplit(":", 1)[0]


def _bands_of_ref(ref: StagedRef, bands: int, rows: int) -> Iterator:
    sig = np.frombuffer(ref.signature, dtype="<u8")
    check = check_values(sig)
    for band, key in enumerate(band_keys(sig, bands, rows)):
        yield (band, key), (False, ref.doc_id, check)


def _bands_of_released(doc: ReleasedDoc) -> Iterator:
    for band, key in enumerate(doc.band_keys or ()):
        yield (band, key), (True, doc.ref, doc.check)


def _sides(member) -> tuple[int, int]:
    """A bucket member -> (released members, run members) it counts for."""
    return (1, 0) if member[0] else (0, 1)


def _splits(counts: tuple[int, int], max_group: int) -> tuple[int, int]:
    """A hot bucket's (released, run) member counts -> the salts of each side: (0, 0) when a side is empty (no
    pair to compare), else ceil(count / max_group) each."""
    released, run = counts
    if not released or not run:
        return 0, 0
    return math.ceil(released / max_group), math.ceil(run / max_group)


def _salted_member(item, hot: dict) -> Iterator:
    """((band, key), member) -> ((band, key, i, j), member). A bucket within dedup.near.max_group on both sides
    is one group (0, 0); a hot one (`hot`: its salts per side) is a grid: a released member goes to row i (by a
    hash of its ref) of every column, a run member to column j (by a hash of its id) of every row, so each pair
    meets in exactly one group and a group holds about max_group members of each side. A hot bucket with one
    side empty yields nothing."""
    (band, key), member = item
    split = hot.get((band, key))
    if split is None:
        yield (band, key, 0, 0), member
        return
    rows, columns = split
    if not rows:
        return
    salt = xxhash.xxh64_intdigest(member[1].encode())
    if member[0]:
        for j in range(columns):
            yield (band, key, salt % rows, j), member
    else:
        for i in range(rows):
            yield (band, key, i, salt % columns), member


def _bucket_matches(element, threshold: float) -> Iterator[tuple[str, tuple[float, str]]]:
    """A (salted) band bucket's run members against its released members: (run doc, (estimated Jaccard, released
    ref)) for every pair at or above `threshold`. The released members are held (at most ~dedup.near.max_group:
    _salted_member), the run members streamed."""
    _key, members = element
    released = [(ref, check) for is_released, ref, check in members if is_released]
    if not released:
        return
    for is_released, doc_id, check in members:
        if is_released:
            continue
        for ref, other in released:
            similarity = estimated_jaccard(check, other)
            if similarity >= threshold:
                yield doc_id, (round(similarity, 6), ref)


def _best(matches: Iterable[tuple[float, str]]) -> tuple[float, str]:
    """The most similar released document; ties to the smallest ref (the same on every runner)."""
    return min(matches, key=lambda m: (-m[0], m[1]))


class _DropMatched(beam.DoFn):
    """(doc_id, {"ref": [StagedRef], "match": [(similarity, released ref)]}) -> the ref (main) or its LateDrop."""

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.counters = StageCounters(STAGE_NEAR_DEDUP)

    def process(self, element) -> Iterator:
        _doc_id, grouped = element
        match = next(iter(grouped["match"]), None)
        for ref in grouped["ref"]:
            if match is None:
                yield ref
                continue
            similarity, released = match
            self.counters.inp.inc()
            self.counters.dropped(REASON_DUPLICATE_OF_RELEASE)
            yield beam.pvalue.TaggedOutput(MATCHED, ((release_name(released), "near"), 1))
            decision = Decision(STAGE_NEAR_DEDUP, REASON_DUPLICATE_OF_RELEASE, similarity,
                                detail=f"near duplicate of released {released}")
            # A copy with the cluster id: Beam forbids changing an input element.
            yield beam.pvalue.TaggedOutput(LEDGER, LateDrop(dataclasses.replace(ref, cluster_id=released), decision))


class NearAgainstReleases(beam.PTransform):
    """StagedRefs -> (refs no released document covers, their LateDrops (LEDGER), per-release counts).

    A candidate pair shares a band (LSH, as within the run); it is a duplicate when the signatures' estimated
    Jaccard (the 8-bit check values both sides carry, corrected for chance agreement) reaches
    dedup.near.confirm_threshold (dedup.near.threshold when that is 0). The released text is not in the index,
    so this estimate stands in for the exact shingle Jaccard the run's own near dedup confirms with."""

    def __init__(self, recipe: Recipe, released) -> None:
        super().__init__()
        self.recipe = recipe
        self.released = released

    def expand(self, refs):
        cfg = self.recipe.dedup.near
        threshold = cfg.confirm_threshold or cfg.threshold
        members = (
            (
                refs | "RunBands" >> beam.FlatMap(_bands_of_ref, bands=cfg.bands, rows=cfg.rows),
                self.released | "ReleasedBands" >> beam.FlatMap(_bands_of_released),
            )
            | "AllBands" >> beam.Flatten()
        )
        # The buckets with more than max_group members on a side, and their salts: at most
        # 2 x (bucket members) / max_group entries, the bound the run's own near dedup puts on its hubs.
        hot = (
            members
            | "BucketSides" >> beam.MapTuple(lambda bucket, member: (bucket, _sides(member)))
            | "CountBucketSides" >> beam.CombinePerKey(sum_pairs)
            | "HotBuckets" >> beam.Filter(lambda kv: max(kv[1]) > cfg.max_group)
            | "HotBucketSalts" >> beam.MapTuple(lambda bucket, counts: (bucket, _splits(counts, cfg.max_group)))
        )
        best = (
            members
            | "SaltBuckets" >> beam.FlatMap(_salted_member, beam.pvalue.AsDict(hot))
            | "GroupReleasedBuckets" >> beam.GroupByKey()
            | "BucketMatches" >> beam.FlatMap(_bucket_matches, threshold=threshold)
            | "BestRelease" >> beam.CombinePerKey(_best)
        )
        routed = (
            {"ref": refs | "KeyRefs" >> beam.Map(lambda r: (r.doc_id, r)), "match": best}
            | "JoinMatches" >> beam.CoGroupByKey()
            | "DropMatched" >> beam.ParDo(_DropMatched()).with_outputs(LEDGER, MATCHED, main="kept")
        )
        return routed.kept, routed[LEDGER], routed[MATCHED]


def against_stats(releases: list[dict], matched: Iterable[tuple[tuple[str, str], int]]) -> list[dict]:
    """stats.json `dedup_against`: per release, its index's documents and the run documents dropped as its
    exact and near copies."""
    counts = dict(matched)
    return [{"name": r["name"], "version": r["version"], "path": r["path"], "indexed_documents": r["documents"],
             "exact_copies": counts.get((r["name"], "exact"), 0), "near_copies": counts.get((r["name"], "near"), 0)}
            for r in releases]

