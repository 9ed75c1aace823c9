"""Staging: documents wait in files while small references to them go through the shuffles; everything
about one input file meets at the end and is written there as pieces, which are then cut into the run's parts.

    scored Documents ─StageDocuments─▶ StagedRefs (ids, staging file and offset, exact key, MinHash
        signature, classifier values); the whole Document, untokenized (only survivors are tokenized, by the
        per-file writer), in _staging/docs-<source>-<attempt>.stage
    early ledger rows ─StageLedgerRows─▶ (source, staging file); rows in _staging/ledger-<source>-<attempt>.stage
    (--keep-scored) documents as extracted ─StageLedgerRows("scored-")─▶ (source, staging file)
    per input file: survivors' refs + LateDrops (classifier cut, dedup) + early staging files
        ─WriteSourceParts─▶ the file's shard, ledger, dedup_index (and scored) pieces in _staging/
    all files' pieces ─CutParts─▶ shards/, ledger/, dedup_index/ (and scored/) part-<n>.parquet, cut across input
        files in input order (pipelines/recut.py; since bdc7f72 and 3cfa022, 2026-12-07)

Why: the local runner (FnApiRunner) keeps every shuffle in its driver and hands a worker whole partitions,
so what the shuffles carry per document is what its memory peaks grow with. A StagedRef takes ~0.3 KB in a
shuffle on the bench crawl (+0.9 KB of MinHash signature with near dedup, until the band keys are made); the
light Document it replaced took ~1.9 KB (its signals, and its text when the ledger's sample would show it).
At 25,000 pages (fineweb recipe) the exact-dedup and per-file shuffles went from 28.7 to 4.7 MiB, and the
driver's peak from ~240 to ~170 MiB. Staging files are written where the documents are made, at most two
open per worker; a retried bundle writes other files, and only the names its committed outputs carry are ever
read. The run removes _staging/ once its manifest is written.

The file format is outputs/staging.py's; the per-file writer is pipelines/source_parts.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import apache_beam as beam

from dedup.exact import exact_key
from dedup.minhash import MinHasher, shingle_hashes
from outputs.staging import Frames, OpenFiles
from outputs.timing import MARK_RECORDS_END
from pipelines.documents import LEDGER
from pipelines.isolation import ENVIRONMENT_ERRORS, dropped_row, internal_error
from pipelines.metrics import StageCounters, mark
from pipelines.worker import apply_worker_settings
from schemas.recipe import Recipe
from schemas.records import (
    STAGE_EXACT_DEDUP,
    Document,
    LedgerRow,
    StagedRef,
)


class StageDocuments(beam.DoFn):
    """Batch of Documents (filtered and scored) -> StagedRefs; each Document is staged whole, untokenized.
    A document whose signing or staging raises leaves as a ledger row (LEDGER, internal_error) instead.

    Tokens are made by the per-file writer (pipelines/source_parts.py) for the documents that survive the
    classifier cut and dedup only: with `keep_top_fraction = 0.1` nine in ten documents that pass the filters
    are dropped after this step, and tokenizing them was wasted (~8 % of a default run's CPU)."""

    def __init__(self, recipe: Recipe, output_root: str) -> None:
        self.recipe = recipe
        self.output_root = output_root

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        near = self.recipe.dedup.near
        self.hasher = MinHasher(near.bands * near.rows, near.seed) if near.enabled else None
        self.counters = StageCounters(STAGE_EXACT_DEDUP)
        self.frames = Frames()

    def start_bundle(self) -> None:
        self.files = OpenFiles(self.output_root, "docs-")

    def process(self, batch: list[Document]) -> Iterator:
        for doc in batch:
            step = "signing"
            try:
                key, signature = self._sign(doc)
                step = "staging"
                frame = self.frames.frame(doc)
            except ENVIRONMENT_ERRORS:
                raise
            except Exception as exc:  # noqa: BLE001 - this document's failure is its ledger row
                # Signing and staging are dedup's first steps: the row stands at exact_dedup in the funnel.
                yield beam.pvalue.TaggedOutput(LEDGER, dropped_row(
                    doc, internal_error(STAGE_EXACT_DEDUP, step, exc, doc.doc_id), self.counters, self.recipe))
                continue
            # Writing is the store's business, outside the record's try: a store error fails the bundle.
            file, _new = self.files.get(doc.source)
            yield StagedRef(
                doc_id=doc.doc_id, source=doc.source, staged=file.path, staged_at=file.write_frame(frame),
                token_count=0, exact_key=key, signature=signature, quality=doc.scores.get("quality_score"),
                topic=doc.topic, topic_score=doc.scores.get("topic_score"), offset=doc.meta.offset,
            )

    def _sign(self, doc: Document) -> tuple[str, bytes]:
        """The document's exact key and, with near dedup, its MinHash signature (little-endian uint64)."""
        signature = b""
        if self.hasher is not None:
            ngram = self.recipe.dedup.near.ngram
            signature = self.hasher.signatures([shingle_hashes(doc.text, ngram)])[0].astype("<u8").tobytes()
        return exact_key(doc.text), signature

    def finish_bundle(self) -> None:
        self.files.close()
        mark(MARK_RECORDS_END)


class StageLedgerRows(beam.DoFn):
    """Ledger rows decided in the per-file stage (read ... filters) -> (source, staging file), once per source
    and bundle; the rows wait in the file for that source's ledger part (WriteSourceParts). With the prefix
    "scored-", --keep-scored's documents as extracted wait the same way for the source's scored/ parts: only the
    (source, file) pairs go through the shuffle, never their text."""

    def __init__(self, output_root: str, prefix: str = "ledger-") -> None:
        self.output_root = output_root
        self.prefix = prefix

    def start_bundle(self) -> None:
        self.files = OpenFiles(self.output_root, self.prefix)

    def process(self, row: LedgerRow) -> Iterator[tuple[str, str]]:
        file, new = self.files.get(row.source)
        if new:
            yield row.source, file.path
        file.write(row)

    def finish_bundle(self) -> None:
        self.files.close()
        mark(MARK_RECORDS_END)


def settled(ref: StagedRef) -> StagedRef:
    """The ref without its exact key and signature (~0.9 KB with near dedup), for the steps after those were
    read: near dedup's ref join and the per-file writer."""
    return dataclasses.replace(ref, exact_key="", signature=b"")
