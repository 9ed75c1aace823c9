"""Staging: documents' text and tokens, and the ledger rows decided early, wait in files while light copies
go through the shuffles; everything about one input file meets at the end and is written there.

    scored Documents ─StageDocuments─▶ light Documents (exact key, MinHash signature, token count; text only
        when the ledger's sample would show it); text + tokens in _staging/docs-<source>-<attempt>.pkl.zst
    early ledger rows ─StageLedgerRows─▶ (source, staging file); rows in _staging/ledger-<source>-<attempt>...
    per input file: light survivors + late ledger rows + early staging files ─WriteSourceParts─▶
        shards/part-<file>-<k>.parquet and ledger/part-<file>-<k>.parquet

Why: the DirectRunner keeps every shuffle in its driver (decoded) and hands a worker whole groups, so what the
shuffles carry is what grows with the crawl. A light Document is ~1 KB (the signature most of it) instead of
~10 KB of text or tokens. Staging files are written where the documents are made, at most two open per
worker; a retried bundle writes other files, and only the names its committed outputs carry are ever read.
The run removes _staging/ once its manifest is written.
"""

from __future__ import annotations

import pickle
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from apache_beam.io.filesystems import FileSystems

from dedup.exact import exact_key
from dedup.minhash import MinHasher, shingle_hashes
from outputs.parquet_parts import write_sorted_part, write_sorted_parts
from pipelines.documents import kept_ledger_row
from pipelines.metrics import StageCounters
from schemas.recipe import Recipe
from schemas.records import STAGE_TOKENIZE, Document, LedgerRow, in_sample
from schemas.tables import LEDGER_SCHEMA, ledger_table, shard_schema, shard_table
from tokenization.tokenizers import Tokenizer

STAGING = "_staging"
SHARD_PARTS = "shard_parts"
LEDGER_PARTS = "ledger_parts"
COUNTS = "counts"
KEPT_DOCS = "kept_docs"


def staging_dir(output_root: str) -> str:
    return f"{output_root.rstrip('/')}/{STAGING}"


class _OpenFiles:
    """Staging files being written, by source, at most `limit` open at a time: documents arrive file after
    file, and every open compressed writer holds buffers (20 open ones cost a worker ~100 MiB). A source that
    comes back after its file was closed gets a new file; readers take every file named to them."""

    def __init__(self, output_root: str, prefix: str, limit: int = 2) -> None:
        self.folder = staging_dir(output_root)
        self.prefix = prefix
        self.limit = limit
        self.files: OrderedDict[str, tuple[str, Any]] = OrderedDict()

    def get(self, source: str) -> tuple[str, Any, bool]:
        """(path, writable stream, whether the file is new) for this source."""
        if source in self.files:
            self.files.move_to_end(source)
            return (*self.files[source], False)
        if len(self.files) >= self.limit:
            _source, (_path, stream) = self.files.popitem(last=False)
            stream.close()
        path = f"{self.folder}/{self.prefix}{xxhash.xxh3_64_hexdigest(source.encode())}-{uuid.uuid4().hex}.pkl.zst"
        self.files[source] = (path, FileSystems.create(path))  # .zst: Beam's file system compresses
        return (*self.files[source], True)

    def close(self) -> None:
        for _path, stream in self.files.values():
            stream.close()
        self.files.clear()


def remove_staging(output_root: str) -> None:
    """Delete the run's staging files (at the end of a run, and before a run reuses an output directory)."""
    folder = staging_dir(output_root)
    files = [m.path for m in FileSystems.match([f"{folder}/*"])[0].metadata_list]
    if files:
        FileSystems.delete(files)
    if FileSystems.exists(folder):
        FileSystems.delete([folder])


def read_staged(path: str) -> Iterator[Any]:
    """Every object in one staging file, in the order written: (doc id, text, packed tokens) for documents,
    LedgerRow for ledger rows."""
    with FileSystems.open(path) as stream:  # .zst: Beam's file system decompresses
        while True:
            try:
                # A fresh unpickler per object: each was written by its own pickle.dump, whose memo starts
                # empty; one Unpickler keeps its memo across load() calls and would resolve a later object's
                # back-references to an earlier object's values.
                yield pickle.load(stream)
            except EOFError:
                return


class StageDocuments(beam.DoFn):
    """Batch of Documents (filtered and scored, with text) -> light Documents, their text and tokens staged."""

    def __init__(self, recipe: Recipe, output_root: str) -> None:
        self.recipe = recipe
        self.output_root = output_root

    def setup(self) -> None:
        cfg = self.recipe.tokenizer
        self.tokenizer = Tokenizer(cfg.name, cfg.append_eos)
        near = self.recipe.dedup.near
        self.hasher = MinHasher(near.bands * near.rows, near.seed) if near.enabled else None
        self.counters = StageCounters(STAGE_TOKENIZE)

    def start_bundle(self) -> None:
        self.files = _OpenFiles(self.output_root, "docs-")

    def process(self, batch: list[Document]) -> Iterator[Document]:
        with self.counters.timed():
            encoded = self.tokenizer.encode_batch([d.text for d in batch])
        ngram = self.recipe.dedup.near.ngram
        for doc, tokens in zip(batch, encoded, strict=True):
            doc.token_count = len(tokens) // 4
            doc.exact_key = exact_key(doc.text)
            if self.hasher is not None:
                doc.signature = self.hasher.signatures([shingle_hashes(doc.text, ngram)])[0].astype("<u8").tobytes()
            path, stream, _new = self.files.get(doc.source)
            pickle.dump((doc.doc_id, doc.text, tokens), stream, protocol=pickle.HIGHEST_PROTOCOL)
            doc.staged = path
            yield lighten(doc, self.recipe)

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
        path, stream, new = self.files.get(row.source)
        if new:
            yield row.source, path
        pickle.dump(row, stream, protocol=pickle.HIGHEST_PROTOCOL)

    def finish_bundle(self) -> None:
        self.files.close()


def signature_of(doc: Document) -> np.ndarray | None:
    """The staged MinHash signature, or None for a document that was not staged."""
    return np.frombuffer(doc.signature, dtype="<u8") if doc.signature else None


class RestoreText(beam.DoFn):
    """(staging file, [(key, light Document)]) -> (key, Document with its text), reading the file once.
    Documents that were never staged (key "") pass through as they are."""

    def process(self, element: tuple[str, Iterable[tuple[Any, Document]]]) -> Iterator[tuple[Any, Document]]:
        path, items = element
        items = list(items)  # the clustered documents of one staging file: light copies
        if not path:
            yield from items
            return
        wanted = {doc.doc_id: doc for _key, doc in items}
        for doc_id, text, _tokens in read_staged(path):
            if doc_id in wanted:
                wanted[doc_id].text = text
        yield from items


def lighten(doc: Document, recipe: Recipe) -> Document:
    """Set a staged document's text aside (again, after near dedup restored it), unless the ledger's sample
    would show it."""
    if doc.staged and not in_sample(doc.doc_id, recipe.output.seed, recipe.output.dropped_text_sample_rate):
        doc.text = ""
    return doc


def count_tokens(table: pa.Table) -> int:
    """Tokens in a shard table (PartInfo.tokens, the manifest's totals)."""
    return int(pc.sum(table.column("token_count")).as_py() or 0)


def part_path(output_root: str, folder: str, source_index: int, chunk: int) -> str:
    return f"{output_root.rstrip('/')}/{folder}/part-{source_index:05d}-{chunk:03d}.parquet"


class WriteSourceParts(beam.DoFn):
    """One input file's outcome -> its shards and its ledger part(s); PartInfos on SHARD_PARTS and
    LEDGER_PARTS, {(stage, reason): rows} on COUNTS and the kept documents (no text, no tokens) on KEPT_DOCS.

    In: (source, {"survivors": light Documents, "late": ledger rows decided after staging (classifier cut,
    dedup), "early": staging files of the rows decided before}). Survivors are sorted by doc id and cut into
    shards of at most `shard_target_tokens` (a document is never split), ledger rows into parts of at most
    `ledger_rows_per_part`, all named by the file's index among the run's inputs: the layout depends only on
    the inputs and the recipe, never on bundling."""

    def __init__(self, recipe: Recipe, output_root: str, source_index: dict[str, int], columns: list[str]) -> None:
        self.recipe = recipe
        self.output_root = output_root
        self.source_index = source_index
        self.columns = columns

    def setup(self) -> None:
        self.counters = StageCounters(STAGE_TOKENIZE)
        self.schema = shard_schema(self.columns)

    def process(self, element: tuple[str, dict[str, Iterable]]) -> Iterator:
        source, parts = element
        index = self.source_index[source]
        out = self.recipe.output
        docs = sorted(parts["survivors"], key=lambda d: d.doc_id)  # light copies, one input file's worth
        for chunk_index, chunk in enumerate(self._chunks(docs)):
            self._attach_tokens(chunk)
            info = write_sorted_part(
                chunk, path=part_path(self.output_root, "shards", index, chunk_index), schema=self.schema,
                key=lambda d: d.doc_id, to_table=lambda rows: shard_table(rows, self.columns),
                row_group_rows=out.row_group_rows, zstd_level=out.zstd_level, count_tokens=count_tokens,
            )
            for doc in chunk:
                doc.tokens = b""
            yield beam.pvalue.TaggedOutput(SHARD_PARTS, info)
        counts: Counter[tuple[str, str]] = Counter()

        def ledger_rows() -> Iterator[LedgerRow]:
            for path in sorted(parts["early"]):
                yield from read_staged(path)
            yield from parts["late"]
            for doc in docs:
                self.counters.inp.inc()
                self.counters.kept.inc()
                doc.text = ""
                yield kept_ledger_row(doc)

        def counted(rows: Iterator[LedgerRow]) -> Iterator[LedgerRow]:
            for row in rows:
                counts[(row.stage, row.reason)] += 1
                yield row

        for info in write_sorted_parts(
            counted(ledger_rows()), path_of=lambda k: part_path(self.output_root, "ledger", index, k),
            max_rows=out.ledger_rows_per_part, schema=LEDGER_SCHEMA, key=lambda r: r.doc_id, to_table=ledger_table,
            row_group_rows=out.row_group_rows, zstd_level=out.zstd_level,
        ):
            yield beam.pvalue.TaggedOutput(LEDGER_PARTS, info)
        yield beam.pvalue.TaggedOutput(COUNTS, dict(counts))
        for doc in docs:
            yield beam.pvalue.TaggedOutput(KEPT_DOCS, doc)

    def _chunks(self, docs: list[Document]) -> Iterator[list[Document]]:
        """Consecutive runs of documents holding at most shard_target_tokens (one document may exceed it)."""
        chunk: list[Document] = []
        size = 0
        for doc in docs:
            if chunk and size + doc.token_count > self.recipe.output.shard_target_tokens:
                yield chunk
                chunk, size = [], 0
            chunk.append(doc)
            size += doc.token_count
        if chunk:
            yield chunk

    @staticmethod
    def _attach_tokens(chunk: list[Document]) -> None:
        """Read each staging file these documents came from once, taking their token ids."""
        by_id = {d.doc_id: d for d in chunk}
        for path in sorted({d.staged for d in chunk}):
            for doc_id, _text, tokens in read_staged(path):
                if doc_id in by_id:
                    by_id[doc_id].tokens = tokens
