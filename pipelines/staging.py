"""Staging: documents wait in files while small references to them go through the shuffles; everything
about one input file meets at the end and is written there.

    scored Documents ─StageDocuments─▶ StagedRefs (ids, staging file and offset, token count, exact key,
        MinHash signature, classifier values); the whole Document with its tokens in
        _staging/docs-<source>-<attempt>.stage
    early ledger rows ─StageLedgerRows─▶ (source, staging file); rows in _staging/ledger-<source>-<attempt>.stage
    per input file: survivors' refs + LateDrops (classifier cut, dedup) + early staging files
        ─WriteSourceParts─▶ shards/part-<file>-<k>.parquet and ledger/part-<file>-<k>.parquet

Why: the local runner (FnApiRunner) keeps every shuffle in its driver and hands a worker whole partitions,
so what the shuffles carry per document is what its memory peaks grow with. A StagedRef takes ~0.3 KB in a
shuffle on the bench crawl (+0.9 KB of MinHash signature with near dedup, until the band keys are made); the
light Document it replaced took ~1.9 KB (its signals, and its text when the ledger's sample would show it).
At 25,000 pages (fineweb recipe) the exact-dedup and per-file shuffles went from 28.7 to 4.7 MiB, and the
driver's peak from ~240 to ~170 MiB. Staging files are written where the documents are made, at most two
open per worker; a retried bundle writes other files, and only the names its committed outputs carry are ever
read. The run removes _staging/ once its manifest is written.

A staging file is a run of frames, [uint32 little-endian length][zstd frame of one pickled object], each
object compressed on its own: a StagedRef carries its frame's offset (`staged_at`), so the shard writer
reads one piece of a row group's documents (PIECE_TOKENS) and near dedup one cluster's texts without
decompressing a file from its start.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import struct
import tempfile
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import xxhash
import zstandard
from apache_beam.io.filesystems import CompressionTypes, FileSystems

from dedup.exact import exact_key
from dedup.minhash import MinHasher, shingle_hashes
from outputs.parquet_parts import write_part, write_sorted_parts
from pipelines.documents import kept_ledger_row
from pipelines.metrics import StageCounters
from pipelines.worker import apply_worker_settings
from schemas.recipe import Recipe
from schemas.records import STAGE_TOKENIZE, Document, LateDrop, LedgerRow, StagedRef, ledger_row_for_drop
from schemas.tables import LEDGER_SCHEMA, ledger_table, shard_schema, shard_table
from storage.files import copy, is_local
from tokenization.tokenizers import Tokenizer

STAGING = "_staging"
SHARD_PARTS = "shard_parts"
LEDGER_PARTS = "ledger_parts"
COUNTS = "counts"
MIX = "mix"


def staging_dir(output_root: str) -> str:
    return f"{output_root.rstrip('/')}/{STAGING}"


_FRAME = struct.Struct("<I")


class _StagingFile:
    """One staging file being written, frame by frame; `write` returns the frame's offset."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stream = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
        self.offset = 0
        self.compressor = zstandard.ZstdCompressor(level=1)  # staging is read once or twice, then deleted

    def write(self, obj: Any) -> int:
        blob = self.compressor.compress(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        self.stream.write(_FRAME.pack(len(blob)) + blob)
        at, self.offset = self.offset, self.offset + _FRAME.size + len(blob)
        return at

    def close(self) -> None:
        self.stream.close()


class _OpenFiles:
    """Staging files being written, by source, at most `limit` open at a time: documents arrive file after
    file, and every open writer holds buffers. A source that comes back after its file was closed gets a new
    file; readers take every file named to them."""

    def __init__(self, output_root: str, prefix: str, limit: int = 2) -> None:
        self.folder = staging_dir(output_root)
        self.prefix = prefix
        self.limit = limit
        self.files: OrderedDict[str, _StagingFile] = OrderedDict()

    def get(self, source: str) -> tuple[_StagingFile, bool]:
        """(the open staging file for this source, whether it is new)."""
        if source in self.files:
            self.files.move_to_end(source)
            return self.files[source], False
        if len(self.files) >= self.limit:
            self.files.popitem(last=False)[1].close()
        path = f"{self.folder}/{self.prefix}{xxhash.xxh3_64_hexdigest(source.encode())}-{uuid.uuid4().hex}.stage"
        self.files[source] = _StagingFile(path)
        return self.files[source], True

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        self.files.clear()


def remove_staging(output_root: str) -> None:
    """Delete the run's staging files (at the end of a run, and before a run reuses an output directory)."""
    folder = staging_dir(output_root)
    files = [m.path for m in FileSystems.match([f"{folder}/*"])[0].metadata_list]
    if files:
        FileSystems.delete(files)
    if FileSystems.exists(folder):
        FileSystems.delete([folder])


def _read_frame(stream: Any, path: str, decompressor: zstandard.ZstdDecompressor) -> Any:
    """The object in the frame at the stream's position; EOFError at a clean end of file."""
    header = stream.read(_FRAME.size)
    if not header:
        raise EOFError
    (size,) = _FRAME.unpack(header) if len(header) == _FRAME.size else (-1,)
    blob = stream.read(size) if size >= 0 else b""
    if size < 0 or len(blob) != size:
        raise OSError(f"staging file {path} is truncated")
    # pickle.loads per object: one Unpickler over a stream would keep its memo across objects and resolve a
    # later object's back-references to an earlier object's values.
    return pickle.loads(decompressor.decompress(blob))


def read_staged(path: str) -> Iterator[Any]:
    """Every object in one staging file, in the order written: Documents, or LedgerRows."""
    decompressor = zstandard.ZstdDecompressor()
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
        while True:
            try:
                yield _read_frame(stream, path, decompressor)
            except EOFError:
                return


def read_staged_at(path: str, offsets: Iterable[int]) -> Iterator[tuple[int, Any]]:
    """(offset, object) for the frames at these offsets of one staging file, in offset order."""
    decompressor = zstandard.ZstdDecompressor()
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
        for at in sorted(set(offsets)):
            stream.seek(at)
            try:
                yield at, _read_frame(stream, path, decompressor)
            except EOFError:
                raise OSError(f"staging file {path} has no frame at offset {at}") from None


def read_staged_docs(path: str, refs: dict[int, StagedRef]) -> Iterator[tuple[StagedRef, Document]]:
    """(ref, staged Document with its text and tokens) for refs to one staging file, keyed by their frame
    offset, in offset order; raises if a frame holds another document."""
    for at, doc in read_staged_at(path, refs):
        ref = refs[at]
        if doc.doc_id != ref.doc_id:
            raise OSError(f"staging file {path}: the frame at {at} holds {doc.doc_id}, not {ref.doc_id}")
        yield ref, doc


class StageDocuments(beam.DoFn):
    """Batch of Documents (filtered and scored) -> StagedRefs; each Document is tokenized and staged whole."""

    def __init__(self, recipe: Recipe, output_root: str) -> None:
        self.recipe = recipe
        self.output_root = output_root

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        cfg = self.recipe.tokenizer
        self.tokenizer = Tokenizer(cfg.name, cfg.append_eos)
        near = self.recipe.dedup.near
        self.hasher = MinHasher(near.bands * near.rows, near.seed) if near.enabled else None
        self.counters = StageCounters(STAGE_TOKENIZE)

    def start_bundle(self) -> None:
        self.files = _OpenFiles(self.output_root, "docs-")

    def process(self, batch: list[Document]) -> Iterator[StagedRef]:
        with self.counters.timed():
            encoded = self.tokenizer.encode_batch([d.text for d in batch])
        ngram = self.recipe.dedup.near.ngram
        for doc, tokens in zip(batch, encoded, strict=True):
            doc.tokens, doc.token_count = tokens, len(tokens) // 4
            signature = b""
            if self.hasher is not None:
                signature = self.hasher.signatures([shingle_hashes(doc.text, ngram)])[0].astype("<u8").tobytes()
            file, _new = self.files.get(doc.source)
            yield StagedRef(
                doc_id=doc.doc_id, source=doc.source, staged=file.path, staged_at=file.write(doc),
                token_count=doc.token_count, exact_key=exact_key(doc.text), signature=signature,
                quality=doc.scores.get("quality_score"), topic=doc.topic, topic_score=doc.scores.get("topic_score"),
                offset=doc.meta.offset,
            )

    def finish_bundle(self) -> None:
        self.files.close()


class StageLedgerRows(beam.DoFn):
    """Ledger rows decided in the per-file stage (read ... filters) -> (source, staging file), once per source
    and bundle; the rows wait in the file for that source's ledger part (WriteSourceParts)."""

    def __init__(self, output_root: str) -> None:
        self.output_root = output_root

    def start_bundle(self) -> None:
        self.files = _OpenFiles(self.output_root, "ledger-")

    def process(self, row: LedgerRow) -> Iterator[tuple[str, str]]:
        file, new = self.files.get(row.source)
        if new:
            yield row.source, file.path
        file.write(row)

    def finish_bundle(self) -> None:
        self.files.close()


class RestoreText(beam.DoFn):
    """(staging file, [(key, StagedRef)]) -> (key, StagedRef with its text), reading only their frames."""

    def process(self, element: tuple[str, Iterable[tuple[Any, StagedRef]]]) -> Iterator[tuple[Any, StagedRef]]:
        path, items = element
        items = list(items)  # the clustered documents of one staging file: refs
        for ref, doc in read_staged_docs(path, {ref.staged_at: ref for _key, ref in items}):
            ref.text = doc.text
        yield from items


def _read_refs(refs: Iterable[StagedRef]) -> Iterator[tuple[StagedRef, Document]]:
    """(ref, staged Document) for refs to any staging files: one pass over each file, files in name order."""
    by_file: dict[str, dict[int, StagedRef]] = {}
    for ref in refs:
        by_file.setdefault(ref.staged, {})[ref.staged_at] = ref
    for path in sorted(by_file):
        yield from read_staged_docs(path, by_file[path])


def settled(ref: StagedRef) -> StagedRef:
    """The ref without its exact key and signature (~0.9 KB with near dedup), for the steps after those were
    read: near dedup's ref join and the per-file writer."""
    return dataclasses.replace(ref, exact_key="", signature=b"")


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


def part_path(output_root: str, folder: str, source_index: int, chunk: int) -> str:
    return f"{output_root.rstrip('/')}/{folder}/part-{source_index:05d}-{chunk:03d}.parquet"


# Tokens of staged Documents the per-file writer reads back at a time (a piece). A shard row group goes to
# Arrow's Parquet writer in such pieces: the writer builds the levels and dictionary indices of a list column
# for all it is given at once, and a 2,000-document row group (~2.3 M tokens) given whole took its memory pool
# to 47 MiB, in pieces to ~19 MiB. The row groups and every page are the same (tests/test_outputs.py); the
# footer's level histograms can differ, as Arrow miscounts them when one call passes 16,384 levels
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
        self.folder: str | None = None
        self.local: dict[str, str] = {}
        for path in sorted(set(paths)):
            if is_local(path):
                self.local[path] = path
                continue
            if self.folder is None:
                self.folder = tempfile.mkdtemp(prefix="tokenmill-staging-")
            self.local[path] = os.path.join(self.folder, path.rsplit("/", 1)[-1])
            copy(path, self.local[path])

    def path(self, staged: str) -> str:
        return self.local[staged]

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


class WriteSourceParts(beam.DoFn):
    """One input file's outcome -> its shards and its ledger part(s); PartInfos on SHARD_PARTS and
    LEDGER_PARTS, {(stage, reason): rows} on COUNTS and ((kind, value), (documents, tokens)) on MIX, kind
    "language" or "topic", summed over the file's kept documents.

    In: (source, {"survivors": StagedRefs, "late": LateDrops (classifier cut, dedup), "early": staging files
    of the ledger rows decided before staging}). Survivors are sorted by doc id and cut into shards of at most
    `shard_target_tokens` (a document is never split), ledger rows into parts of at most
    `ledger_rows_per_part`, all named by the file's index among the run's inputs: the layout depends only on
    the inputs and the recipe, never on bundling. The survivors' Documents are read back from staging in pieces
    of PIECE_TOKENS, once for the shards and once for the kept ledger rows; the late drops' one by one."""

    def __init__(self, recipe: Recipe, output_root: str, columns: list[str]) -> None:
        self.recipe = recipe
        self.output_root = output_root
        self.columns = columns

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.counters = StageCounters(STAGE_TOKENIZE)
        self.schema = shard_schema(self.columns)

    def process(self, element: tuple[str, dict[str, Iterable]], source_index: dict[str, int]) -> Iterator:
        """`source_index`: {input file's base name: its index among the run's inputs}, a side input read from
        the run's input list (not built into the job graph, which would grow with a 90,000-file crawl)."""
        source, parts = element
        index = source_index[source]
        refs = sorted(parts["survivors"], key=lambda r: r.doc_id)  # one input file's survivors
        late = list(parts["late"])
        early = sorted(parts["early"])
        local = _LocalStaging([r.staged for r in refs] + [d.ref.staged for d in late] + early)
        try:
            refs = [dataclasses.replace(r, staged=local.path(r.staged)) for r in refs]
            late = [d._replace(ref=dataclasses.replace(d.ref, staged=local.path(d.ref.staged))) for d in late]
            yield from self._write(index, refs, late, [local.path(p) for p in early])
        finally:
            local.close()

    def _write(self, index: int, refs: list[StagedRef], late: list[LateDrop], early: list[str]) -> Iterator:
        out = self.recipe.output
        for chunk_index, chunk in enumerate(_runs_of_tokens(refs, out.shard_target_tokens)):
            info = write_part(
                self._row_groups(chunk), part_path(self.output_root, "shards", index, chunk_index), self.schema,
                out.row_group_rows, out.zstd_level, count_tokens,
            )
            yield beam.pvalue.TaggedOutput(SHARD_PARTS, info)
        counts: Counter[tuple[str, str]] = Counter()
        mix: dict[tuple[str, str], list[int]] = {}

        def ledger_rows() -> Iterator[LedgerRow]:
            for path in early:
                yield from read_staged(path)
            yield from self._late_rows(late)
            yield from self._kept_rows(refs, mix)

        def counted(rows: Iterator[LedgerRow]) -> Iterator[LedgerRow]:
            for row in rows:
                counts[(row.stage, row.reason)] += 1
                yield row

        # Sorted in runs of one row group's rows, like everything this step holds (outputs/parquet_parts.py).
        for info in write_sorted_parts(
            counted(ledger_rows()), path_of=lambda k: part_path(self.output_root, "ledger", index, k),
            max_rows=out.ledger_rows_per_part, schema=LEDGER_SCHEMA, key=lambda r: r.doc_id, to_table=ledger_table,
            row_group_rows=out.row_group_rows, zstd_level=out.zstd_level, spill_rows=out.row_group_rows,
        ):
            yield beam.pvalue.TaggedOutput(LEDGER_PARTS, info)
        yield beam.pvalue.TaggedOutput(COUNTS, dict(counts))
        for key, (docs, tokens) in sorted(mix.items()):
            yield beam.pvalue.TaggedOutput(MIX, (key, (docs, tokens)))

    def _read_back(self, groups: Iterable[list[StagedRef]]) -> Iterator[list[Document]]:
        """For each group of refs, its staged Documents (without their text) in the refs' order, with the refs'
        cluster fields: what is held is one group's documents."""
        for group in groups:
            staged = {}
            for ref, doc in _read_refs(group):
                doc.text = ""  # neither the shard row nor a kept ledger row carries it
                staged[ref.doc_id] = _with_cluster(doc, ref)
            yield [staged[ref.doc_id] for ref in group]

    def _row_groups(self, chunk: list[StagedRef]) -> Iterator[pa.Table]:
        """The shard's row groups of `row_group_rows` documents, each read back from staging just for it and
        made in pieces of at most PIECE_TOKENS tokens (see there): what the writer holds is one row group's
        Arrow table, whatever the size of the input file."""
        for group in _slices(chunk, self.recipe.output.row_group_rows):
            pieces = self._read_back(_runs_of_tokens(group, PIECE_TOKENS))
            table = pa.concat_tables([shard_table(docs, self.columns) for docs in pieces])
            # Only the token column goes in pieces: a string column's data pages are cut where the writer's
            # batches end, so its bytes would depend on the pieces.
            yield pa.table([c if name == "tokens" else c.combine_chunks() for name, c in zip(
                table.column_names, table.columns, strict=True)], schema=table.schema)

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
        for ref, doc in _read_refs(drop.ref for drop in by_id.values()):
            decision = by_id[ref.doc_id].decision
            yield ledger_row_for_drop(_with_cluster(doc, ref), decision, out.seed, out.dropped_text_sample_rate)
