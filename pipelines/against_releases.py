"""Dedup against earlier releases ([dedup] against): the released documents' dedup index (exact keys, MinHash
band keys and signatures; release/publish.py carries it) joins this run's refs in Beam shuffles, so it scales
with the engine, not with one worker's memory. A run document that an indexed document already covers is
dropped with reason duplicate_of_release and cluster_id "<release name>:<doc_id>"; released files are only read.

    index files ─ReadReleasedIndex─▶ ReleasedDoc
        exact: (exact key) CoGroupByKey with the run's refs, inside ExactDedup (pipelines/dedup.py)
        near:  (band, band key) GroupByKey of run and released members ─▶ candidate (run doc, released doc,
               estimated Jaccard) ─best per run doc─▶ CoGroupByKey with the refs ─▶ drops | the rest on to
               the run's own near dedup

Matching against releases is global: a crawl's copy of a page released from another snapshot is still a copy,
whatever `dedup.near.scope` says for dedup within the run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import apache_beam as beam
import numpy as np

from dedup.minhash import band_keys, check_values, estimated_jaccard
from pipelines.documents import LEDGER
from pipelines.metrics import StageCounters
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


def _bucket_matches(element, threshold: float) -> Iterator[tuple[str, tuple[float, str]]]:
    """A band bucket's run members against its released members: (run doc, (estimated Jaccard, released ref)) for
    every pair at or above `threshold`. The released members are held (a template's bucket holds many), the run
    members streamed."""
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
        best = (
            (
                refs | "RunBands" >> beam.FlatMap(_bands_of_ref, bands=cfg.bands, rows=cfg.rows),
                self.released | "ReleasedBands" >> beam.FlatMap(_bands_of_released),
            )
            | "AllBands" >> beam.Flatten()
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

