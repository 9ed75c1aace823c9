"""The per-file writer: everything about one input file meets here and is written to _staging/ as pieces, its
kept documents (one shard piece), its ledger rows, its dedup index rows and, with --keep-scored, its scored
documents, read back from staging (outputs/staging.py) a few at a time. pipelines/recut.py then cuts every file's
pieces into the run's parts, across input files (since bdc7f72 and 3cfa022, 2026-12-07).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa

from dedup.exact import exact_key
from dedup.minhash import MinHasher, band_keys, shingle_hashes
from outputs.parquet_parts import write_part, write_sorted_parts
from outputs.part_plan import Piece
from outputs.staging import StagingFile, read_refs, read_staged, staging_dir
from outputs.timing import MARK_WRITING_END, MARK_WRITING_START
from pipelines.documents import kept_ledger_row
from pipelines.isolation import ENVIRONMENT_ERRORS, batch_or_each, dropped_row, internal_error
from pipelines.metrics import SetupTime, StageCounters, mark
from pipelines.worker import apply_worker_settings
from schemas.recipe import Recipe
from schemas.records import (
    REASON_INTERNAL_ERROR,
    STAGE_TOKENIZE,
    Document,
    LateDrop,
    LedgerRow,
    StagedRef,
    ledger_row_for_drop,
)
from schemas.tables import (
    DEDUP_INDEX_SCHEMA,
    LEDGER_SCHEMA,
    SCORED_SCHEMA,
    dedup_index_table,
    ledger_table,
    scored_table,
    shard_schema,
    shard_table,
)
from storage.files import copy, is_local
from tokenization.tokenizers import Tokenizer

SHARD_PARTS = "shard_parts"
LEDGER_PARTS = "ledger_parts"
SCORED_PARTS = "scored_parts"
INDEX_PARTS = "index_parts"
COUNTS = "counts"
MIX = "mix"
# Per input file: (stage, smallest doc id) of each stage's internal_error ledger rows, for the run's error line.
ERROR_EXAMPLES = "error_examples"
FAILED_FILE = "failed.stage"


def _with_cluster(doc: Document, ref: StagedRef) -> Document:
    """The staged Document as dedup left it: dedup decides on refs."""
    doc.cluster_id, doc.cluster_size = ref.cluster_id, ref.cluster_size
    return doc


def count_tokens(table: pa.Table) -> int:
    """Tokens in a shard table (PartInfo.tokens, the manifest's totals)."""
    # Summed in Python rather than with pyarrow.compute imported with this module, which would cost ~0.3 s of
    # CPU at start-up in every worker and the driver (it builds Python wrappers for all compute functions).
    # The per-file writer imports it later anyway (Table.cast, Table.take), only in the workers.
    return sum(filter(None, table.column("token_count").to_pylist()))


def part_name(file: int, files: int, chunk: int, chunks: int) -> str:
    """`part-<file>-<k>`, a piece's name in _staging/ (`piece_path`): the input file's index among the run's
    `files` and the piece's among the file's `chunks`, each zero-padded to the digits of the largest one (at
    least 5 and 3, the widths of the per-file parts until 3cfa022). The file number has one width in a run
    and the piece number one width in a file, so names sort as (file, piece) do, for any count: with 100,001
    files the first is part-000000-000, as wide as part-100000-000."""
    return f"part-{file:0{_width(files, 5)}d}-{chunk:0{_width(chunks, 3)}d}"


def _width(count: int, least: int) -> int:
    return max(least, len(str(max(count, 1) - 1)))


def piece_path(output_root: str, kind: str, index: tuple[int, int], chunk: int, chunks: int) -> str:
    """_staging/piece-<kind>-part-<file>-<k>.parquet (`part_name`; kind shards, ledger, dedup_index or scored): a
    per-file piece waiting to be cut into the run's parts (pipelines/recut.py). Flat in _staging/, which the
    finalize step removes by listing `_staging/*`; named by (file, chunk) alone, so a retried bundle writes the
    same piece over it."""
    return f"{staging_dir(output_root)}/piece-{kind}-{part_name(*index, chunk, chunks)}.parquet"


# Tokens of staged Documents the per-file writer reads back at a time (a piece). A shard row group goes to
# Arrow's Parquet writer in such pieces: the writer builds the levels and dictionary indices of a list column
# for all it is given at once, and a 2,000-document row group (~2.3 M tokens) given whole took its memory pool
# to 47 MiB, in pieces to ~19 MiB. The row groups and every page are the same (write_part checks for a full
# page after every level: outputs/parquet_parts.WRITE_BATCH_LEVELS; tests/test_outputs.py); on pyarrow >= 17
# the footer's level histograms can differ, as Arrow miscounts them when one call passes 16,384 levels
# (apache/arrow#50778), so they depend on the pieces. The kept ledger rows are made piece by piece as well.
PIECE_TOKENS = 1 << 18


def _slices(refs: list[StagedRef], size: int) -> Iterator[list[StagedRef]]:
    for start in range(0, len(refs), size):
        yield refs[start:start + size]


def _runs_of_tokens(refs: Iterable[StagedRef], limit: int) -> Iterator[list[StagedRef]]:
    """Consecutive runs of refs holding at most `limit` tokens each (one document may exceed it)."""
    run: list[StagedRef] = []
    size = 0
    for ref in refs:
        if run and size + ref.token_count > limit:
            yield run
            run, size = [], 0
        run.append(ref)
        size += ref.token_count
    if run:
        yield run


class _LocalStaging:
    """The staging files one input file's writer reads, copied to the worker's local disk first when they are
    on a store, each read once front to back.

    Why: the writer reads survivors' frames in doc-id order, piece by piece, twice (shards, then kept ledger
    rows), so it opens a staging file many times at scattered offsets. On object storage each such open is a
    ranged GET that the store answers to the end of the object, and a run on s3:// was served 1.98x the bytes
    of its input plus staging (`bench/read_amplification.py` at 4625aad). Every frame of these files is this
    input file's (staging files are written per input file), so the copy reads nothing the writer does not
    need. Local staging is read where it is."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.folder = tempfile.mkdtemp(prefix="tokenmill-staging-")  # also holds the survivors' tokens
        self.local: dict[str, str] = {}
        for path in sorted(set(paths)):
            if is_local(path):
                self.local[path] = path
                continue
            self.local[path] = os.path.join(self.folder, path.rsplit("/", 1)[-1])
            copy(path, self.local[path])

    def path(self, staged: str) -> str:
        return self.local[staged]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class WriteSourceParts(beam.DoFn):
    """One input file's outcome -> its pieces in _staging/ (`piece_path`), a Piece each on SHARD_PARTS,
    LEDGER_PARTS, INDEX_PARTS or SCORED_PARTS; {(stage, reason): rows} on COUNTS, (stage, smallest doc id) of
    internal errors on ERROR_EXAMPLES and ((kind, value), (documents, tokens)) on MIX, kind "language" or
    "topic", summed over the file's kept documents.

    In: (source, {"survivors": StagedRefs, "late": LateDrops (classifier cut, dedup), "early": staging files
    of the ledger rows decided before staging, "scored": with --keep-scored, staging files of the file's
    documents as extracted}). Survivors are sorted by doc id and written as one shard piece; the ledger rows,
    the dedup index rows and the scored documents are sorted by doc id into pieces of at most
    `ledger_rows_per_part` rows. Pieces are named by the file's index among the run's inputs and their number
    in the file, and pipelines/recut.py cuts all files' pieces in that order (input file, then doc id) into the
    run's parts: shards/ every `shard_tokens` tokens, ledger/, dedup_index/ and scored/ every
    `ledger_rows_per_part` rows (since bdc7f72 and 3cfa022, 2026-12-07; before, each file had its own parts).
    So the layout depends only on the inputs and the recipe, never on bundling, and a scored part holds
    consecutive input files' documents, each file's together, for `select` to read back file by file. The
    survivors are tokenized first (`_tokenized`), then their Documents are read back in pieces of PIECE_TOKENS,
    once for the shards and once for the kept ledger rows; the late drops' one by one."""

    def __init__(self, recipe: Recipe, output_root: str, columns: list[str]) -> None:
        self.recipe = recipe
        self.output_root = output_root
        self.columns = columns

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.counters = StageCounters(STAGE_TOKENIZE)
        self.schema = shard_schema(self.columns)
        self.setup_time = SetupTime(STAGE_TOKENIZE)
        with self.setup_time.timed():
            cfg = self.recipe.tokenizer
            self.tokenizer = Tokenizer(cfg.name, cfg.append_eos)
            near = self.recipe.dedup.near
            self.hasher = MinHasher(near.bands * near.rows, near.seed) if near.enabled else None

    def start_bundle(self) -> None:
        self.setup_time.report()

    def finish_bundle(self) -> None:
        mark(MARK_WRITING_END)

    def process(self, element: tuple[str, dict[str, Iterable]], source_index: dict[str, int]) -> Iterator:
        """`source_index`: {input file's name in the run: its index among the run's inputs}, a side input read
        from the run's input list (not built into the job graph, which would grow with a 90,000-file crawl)."""
        mark(MARK_WRITING_START)
        source, parts = element
        index = source_index[source], len(source_index)  # (file, files): the pieces' names (part_name)
        refs = list(parts["survivors"])  # one input file's survivors; _tokenized puts them in doc-id order
        late = list(parts["late"])
        early = sorted(parts["early"])
        scored = sorted(parts.get("scored", ()))
        local = _LocalStaging([r.staged for r in refs] + [d.ref.staged for d in late] + early + scored)
        try:
            if scored:
                yield from self._write_scored(index, [local.path(p) for p in scored])
            refs = self._tokenized([dataclasses.replace(r, staged=local.path(r.staged)) for r in refs], local.folder)
            late = [d._replace(ref=dataclasses.replace(d.ref, staged=local.path(d.ref.staged))) for d in late]
            failed = os.path.join(local.folder, FAILED_FILE)  # rows of survivors that made a step raise
            yield from self._write(index, refs, late, [local.path(p) for p in early] + [failed])
            yield from self._write_index(index, os.path.join(local.folder, "index.stage"))
        finally:
            local.close()

    def _tokenized(self, refs: list[StagedRef], folder: str) -> list[StagedRef]:
        """The survivors tokenized, and only they: each staged Document is read once (staging files in offset
        order), tokenized in batches of `tokenizer.batch_size`, and written without its text (neither a shard
        row nor a kept ledger row carries it) to a local staging file; refs to it, in doc-id order, with their
        token counts (the shards are cut by tokens before the documents are read again). A document whose
        tokenization or index row raises gets an internal_error ledger row in FAILED_FILE instead."""
        out = StagingFile(os.path.join(folder, "tokenized.stage"))
        keys = StagingFile(os.path.join(folder, "index.stage"))  # the dedup index rows (_index_row)
        failed = StagingFile(os.path.join(folder, FAILED_FILE))  # ledger rows of documents a step raised on
        batch_size = self.recipe.tokenizer.batch_size
        tokenized: list[StagedRef] = []
        batch: list[tuple[StagedRef, Document]] = []

        def flush() -> None:
            with self.counters.timed():
                encoded = batch_or_each(self.tokenizer.encode_batch, [doc.text for _ref, doc in batch])
            for (ref, doc), tokens in zip(batch, encoded, strict=True):
                try:
                    if isinstance(tokens, Exception):
                        raise tokens
                    row = self._index_row(doc)
                except ENVIRONMENT_ERRORS:
                    raise
                except Exception as exc:  # noqa: BLE001 - this document's failure is its ledger row
                    # A cluster's survivor dropped here takes its cluster with it: its duplicates' rows, already
                    # decided, name it in cluster_id.
                    decision = internal_error(STAGE_TOKENIZE, "tokenize", exc, doc.doc_id)
                    failed.write(dropped_row(_with_cluster(doc, ref), decision, self.counters, self.recipe))
                    continue
                keys.write(row)
                doc.tokens, doc.token_count, doc.text = tokens, len(tokens) // 4, ""
                tokenized.append(dataclasses.replace(ref, staged=out.path, staged_at=out.write(doc),
                                                     token_count=doc.token_count))
            batch.clear()

        try:
            for pair in read_refs(refs):
                batch.append(pair)
                if len(batch) >= batch_size:
                    flush()
            if batch:
                flush()
        finally:
            out.close()
            keys.close()
            failed.close()
        return sorted(tokenized, key=lambda r: r.doc_id)

    def _index_row(self, doc: Document) -> tuple:
        """A kept document's dedup index row: its exact key, and with near dedup its band keys and signature,
        computed again from its text as staging computed them (pipelines/staging.py) rather than carried
        through the shuffles (~1 KB a document); ~0.15 ms a kept document."""
        if self.hasher is None:
            return doc.doc_id, exact_key(doc.text), None, None
        near = self.recipe.dedup.near
        signature = self.hasher.signatures([shingle_hashes(doc.text, near.ngram)])[0]
        return (doc.doc_id, exact_key(doc.text), band_keys(signature, near.bands, near.rows),
                signature.astype("<u8").tobytes())

    def _pieces(self, tag: str, kind: str, index: tuple[int, int], items: Iterable, schema: pa.Schema,
                key: Callable[[Any], str], to_table: Callable[[list], pa.Table]) -> Iterator:
        """The file's rows of one kind sorted by `key` (in runs of `row_group_rows`, outputs/parquet_parts.py) into
        pieces in _staging/ of at most `ledger_rows_per_part` rows; a Piece each on `tag`, for pipelines/recut.py
        to cut with the other files' pieces into the run's parts of `ledger_rows_per_part` rows."""
        out = self.recipe.output
        infos = write_sorted_parts(
            items, path_of=lambda k, n: piece_path(self.output_root, kind, index, k, n),
            max_rows=out.ledger_rows_per_part, schema=schema, key=key, to_table=to_table,
            row_group_rows=out.row_group_rows, zstd_level=out.zstd_level, spill_rows=out.row_group_rows,
        )
        for chunk, info in enumerate(infos):  # in part order: write_sorted_parts names part k of n in turn
            yield beam.pvalue.TaggedOutput(tag, Piece(index[0], chunk, info.path, info.rows, info.rows))

    def _write_scored(self, index: tuple[int, int], files: list[str]) -> Iterator:
        """The file's scored pieces (scored/ once cut): its documents as extracted, with every signal, sorted by doc
        id; held a row group at a time like the ledger (outputs/parquet_parts.write_sorted_parts)."""

        def documents() -> Iterator[Document]:
            for path in files:
                yield from read_staged(path)

        yield from self._pieces(SCORED_PARTS, "scored", index, documents(), SCORED_SCHEMA, lambda d: d.doc_id,
                                scored_table)

    def _write_index(self, index: tuple[int, int], rows_file: str) -> Iterator:
        """The file's dedup index pieces (dedup_index/ once cut): its kept documents' index rows, sorted by doc id."""
        yield from self._pieces(INDEX_PARTS, "dedup_index", index, read_staged(rows_file), DEDUP_INDEX_SCHEMA,
                                lambda r: r[0], dedup_index_table)

    def _write(self, index: tuple[int, int], refs: list[StagedRef], late: list[LateDrop],
               early: list[str]) -> Iterator:
        out = self.recipe.output
        if refs:  # the file's kept documents, one piece in staging; pipelines/recut.py cuts the run's shards
            path = piece_path(self.output_root, "shards", index, 0, 1)
            info = write_part(self._row_groups(refs), path, self.schema, out.row_group_rows, out.zstd_level,
                              count_tokens)
            yield beam.pvalue.TaggedOutput(SHARD_PARTS, Piece(index[0], 0, path, info.rows, info.tokens))
        counts: Counter[tuple[str, str]] = Counter()
        mix: dict[tuple[str, str], list[int]] = {}

        def ledger_rows() -> Iterator[LedgerRow]:
            for path in early:
                yield from read_staged(path)
            yield from self._late_rows(late)
            yield from self._kept_rows(refs, mix)

        examples: dict[str, str] = {}

        def counted(rows: Iterator[LedgerRow]) -> Iterator[LedgerRow]:
            for row in rows:
                counts[(row.stage, row.reason)] += 1
                if row.reason == REASON_INTERNAL_ERROR and row.doc_id < examples.get(row.stage, "\uffff"):
                    examples[row.stage] = row.doc_id
                yield row

        # Sorted in runs of one row group's rows, like everything this step holds (outputs/parquet_parts.py).
        yield from self._pieces(LEDGER_PARTS, "ledger", index, counted(ledger_rows()), LEDGER_SCHEMA,
                                lambda r: r.doc_id, ledger_table)
        yield beam.pvalue.TaggedOutput(COUNTS, dict(counts))
        for stage, doc_id in sorted(examples.items()):
            yield beam.pvalue.TaggedOutput(ERROR_EXAMPLES, (stage, doc_id))
        for key, (docs, tokens) in sorted(mix.items()):
            yield beam.pvalue.TaggedOutput(MIX, (key, (docs, tokens)))

    def _read_back(self, groups: Iterable[list[StagedRef]]) -> Iterator[list[Document]]:
        """For each group of refs (to the survivors' tokenized file, `_tokenized`: no text), its staged Documents
        in the refs' order, with the refs' cluster fields: what is held is one group's documents."""
        for group in groups:
            staged = {}
            for ref, doc in read_refs(group):
                staged[ref.doc_id] = _with_cluster(doc, ref)
            yield [staged[ref.doc_id] for ref in group]

    def _row_groups(self, chunk: list[StagedRef]) -> Iterator[pa.Table]:
        """The shard's row groups of `row_group_rows` documents, each read back from staging just for it and
        made in pieces of at most PIECE_TOKENS tokens (see there): what the writer holds is one row group's
        Arrow table, whatever the size of the input file."""
        for group in _slices(chunk, self.recipe.output.row_group_rows):
            pieces = self._read_back(_runs_of_tokens(group, PIECE_TOKENS))
            yield pa.concat_tables([shard_table(docs, self.columns) for docs in pieces])

    def _kept_rows(self, refs: list[StagedRef], mix: dict[tuple[str, str], list[int]]) -> Iterator[LedgerRow]:
        """Kept ledger rows, read back from staging a second time (~0.06 ms per document) rather than held for
        the whole file while its shards are written; the language/topic mix is summed on the way."""
        for docs in self._read_back(_runs_of_tokens(refs, PIECE_TOKENS)):
            for doc in docs:
                self.counters.inp.inc()
                self.counters.kept.inc()
                for key in (("language", doc.language), ("topic", doc.topic)):
                    totals = mix.setdefault(key, [0, 0])
                    totals[0] += 1
                    totals[1] += doc.token_count
                yield kept_ledger_row(doc)

    def _late_rows(self, drops: Iterable[LateDrop]) -> Iterator[LedgerRow]:
        """Ledger rows of the documents dropped after staging, built from their staged Documents."""
        out = self.recipe.output
        by_id = {drop.ref.doc_id: drop for drop in drops}  # one file's documents: ids are unique
        for ref, doc in read_refs(drop.ref for drop in by_id.values()):
            decision = by_id[ref.doc_id].decision
            yield ledger_row_for_drop(_with_cluster(doc, ref), decision, out.seed, out.dropped_text_sample_rate)
