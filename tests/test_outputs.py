from __future__ import annotations

import hashlib
import itertools
import random

import numpy as np
import pyarrow.parquet as pq
import pytest

from outputs.parquet_parts import write_sorted_part
from outputs.run_files import funnel
from schemas.records import Decision, Document, LedgerRow, RecordMeta, ledger_row_for_document
from schemas.tables import LEDGER_SCHEMA, ledger_table, shard_schema, shard_table


def _row(i: int) -> LedgerRow:
    doc = Document(doc_id=f"{i:016x}", source="s", url=f"https://x/{i}", warc_record_id=f"r{i}", crawl_date="c",
                   meta=RecordMeta(i, "response", 200, "text/html"), text="t", language="en", language_score=0.5,
                   scores={"b": 1.0, "a": float(i)})
    return ledger_row_for_document(doc, Decision("filters", "language_not_kept", 0.5), None)


def _write(tmp_path, name: str, rows, spill_rows: int):
    return write_sorted_part(rows, path=str(tmp_path / name), schema=LEDGER_SCHEMA, key=lambda r: r.doc_id,
                             to_table=ledger_table, row_group_rows=7, zstd_level=3, spill_rows=spill_rows)


def test_spilled_merge_is_byte_identical_to_in_memory_and_sorted(tmp_path):
    rows = [_row(i) for i in range(200)]
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    a = _write(tmp_path, "a.parquet", rows, spill_rows=10_000)
    b = _write(tmp_path, "b.parquet", shuffled, spill_rows=13)  # 16 spilled runs
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert a.sha256 == b.sha256 == hashlib.sha256((tmp_path / "a.parquet").read_bytes()).hexdigest()
    assert a.rows == 200 and a.bytes == (tmp_path / "a.parquet").stat().st_size
    f = pq.ParquetFile(tmp_path / "b.parquet")
    assert f.metadata.num_row_groups == 29 and f.metadata.row_group(0).column(0).compression == "ZSTD"
    ids = f.read().column("doc_id").to_pylist()
    assert ids == sorted(ids) and len(ids) == 200
    scores = f.read().column("scores").to_pylist()[3]
    assert scores == [{"name": "a", "value": 3.0}, {"name": "b", "value": 1.0}]
    assert not list(tmp_path.glob("*.tmp-*"))


def test_shard_table_packs_tokens_as_uint32_lists():
    docs = []
    for i, ids in enumerate([[1, 2, 3], [], [4294967295]]):
        d = Document(doc_id=str(i), source="s", url="u", warc_record_id="r", crawl_date="c",
                     meta=RecordMeta(0, "response", 200, ""), text="t", scores={"q": 0.5})
        d.tokens = np.asarray(ids, dtype="<u4").tobytes()
        d.token_count = len(ids)
        docs.append(d)
    table = shard_table(docs, ["q"])
    assert table.schema == shard_schema(["q"])
    assert table.column("tokens").to_pylist() == [[1, 2, 3], [], [4294967295]]
    assert table.column("q").to_pylist() == [0.5, 0.5, 0.5]


def test_funnel_closes_and_rejects_inconsistent_counts():
    counts = {("read", "not_html"): 3, ("extract", "extract_timeout"): 1, ("exact_dedup", "exact_duplicate"): 2,
              ("kept", ""): 4}
    f = funnel(counts)
    assert f["records"] == 10 and f["kept"] == 4
    assert f["stages"]["read"] == {"in": 10, "out": 7, "dropped": {"not_html": 3}}
    assert f["stages"]["exact_dedup"]["in"] == 6 and f["stages"]["tokenize"]["out"] == 4
    with pytest.raises(ValueError, match="unknown stages"):
        funnel({("bogus", "x"): 1})


def test_staging_files_read_back_every_object_as_written(tmp_path):
    """Objects are pickled one by one into a staging file; reading them back, in order or by offset, must not
    let one object's back-references resolve to another's values (one Unpickler over a stream keeps its memo
    across loads), and a truncated file must raise rather than end early."""
    from outputs.staging import StagingFile, read_staged, read_staged_at

    empty = "".join([])
    objects = [("image/png", "image/png"), ("xxx", "yyy", "zzz", empty, empty), ({"a": 1.0}, [empty, "b"])]
    path = str(tmp_path / "docs-test.stage")
    file = StagingFile(path)
    offsets = [file.write(obj) for obj in objects]
    file.close()
    assert list(read_staged(path)) == objects
    assert list(read_staged_at(path, [offsets[2], offsets[0]])) == [(offsets[0], objects[0]), (offsets[2], objects[2])]
    with open(path, "r+b") as f:
        f.truncate(offsets[2] + 6)
    with pytest.raises(OSError, match="truncated"):
        list(read_staged(path))
    with pytest.raises(OSError, match="truncated"):
        list(read_staged_at(path, [offsets[2]]))


def test_staging_keeps_the_whole_document_and_passes_on_a_small_ref(tmp_path):
    """After staging only StagedRefs travel (the local runner holds every shuffle in its driver): the ref is a
    few hundred bytes whatever the document, and the Document comes back whole from its frame."""
    import pickle
    from dataclasses import replace

    from dedup.exact import exact_key
    from outputs.staging import read_staged_docs
    from pipelines.staging import StageDocuments
    from schemas.recipe import Recipe

    recipe = Recipe()
    recipe.dedup.near.enabled = True
    near = recipe.dedup.near
    text = " ".join(f"word{i % 300} and more text" for i in range(2000))
    doc = Document(doc_id="00aa", source="crawl-00001.warc.gz", url="https://example.org/a/long/path",
                   warc_record_id="<urn:uuid:0>", crawl_date="2024-01-01T00:00:00Z",
                   meta=RecordMeta(1234, "response", 200, "text/html"), text=text, language="en",
                   scores={f"signal_{i}": i / 7 for i in range(40)} | {"quality_score": 0.75})
    stage = StageDocuments(recipe, str(tmp_path))
    stage.setup()
    stage.start_bundle()
    (ref,) = stage.process([doc])
    stage.finish_bundle()
    assert (ref.doc_id, ref.source, ref.exact_key, ref.quality) == ("00aa", doc.source, exact_key(text), 0.75)
    # Untokenized: the per-file writer tokenizes the survivors only (pipelines/source_parts.py).
    assert len(ref.signature) == 8 * near.bands * near.rows and ref.token_count == 0 and not ref.text
    assert len(pickle.dumps(replace(ref, signature=b""), protocol=pickle.HIGHEST_PROTOCOL)) < 400
    ((back_ref, back),) = read_staged_docs(ref.staged, {ref.staged_at: ref})
    assert back_ref is ref and back.text == text and back.scores == doc.scores and back.meta == doc.meta
    assert back.tokens == b"" and back.token_count == 0
    with pytest.raises(OSError, match="holds 00aa"):
        list(read_staged_docs(ref.staged, {ref.staged_at: replace(ref, doc_id="00bb")}))


def _column_chunks(path: str) -> list[tuple[str, int, int]]:
    """Each column chunk's (column, first data page's offset, compressed size): which column's pages moved."""
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    return [(c.path_in_schema, c.data_page_offset, c.total_compressed_size) for c in map(row_group.column,
                                                                                            range(row_group.num_columns))]


def _pages_sha256(path: str) -> str:
    """sha256 of a Parquet file up to its footer ([pages...][footer][uint32 footer length]["PAR1"]): pytest's
    diff of two multi-MB byte strings that differ takes many minutes, two digests print at once."""
    with open(path, "rb") as f:
        data = f.read()
    return hashlib.sha256(data[: len(data) - 8 - int.from_bytes(data[-8:-4], "little")]).hexdigest()


def test_shard_row_groups_go_to_the_writer_in_pieces_with_the_same_bytes(tmp_path):
    """The per-file writer hands Arrow each shard row group in pieces of at most PIECE_TOKENS tokens (the
    writer's memory follows what it is given at once); every page must be byte for byte the one written from
    the whole row group, also when a string column passes a data page (1 MiB). Only the footer may differ:
    Arrow >= 17 miscounts level histograms when a call passes 16,384 levels (apache/arrow#50778)."""
    from outputs.parquet_parts import write_part
    from outputs.staging import StagingFile
    from pipelines.source_parts import PIECE_TOKENS, WriteSourceParts
    from schemas.recipe import Recipe
    from schemas.records import StagedRef

    rng = np.random.default_rng(7)
    file = StagingFile(str(tmp_path / "docs-test.stage"))
    docs, refs = [], []
    for i in range(600):
        tokens = rng.integers(0, 200_000, size=int(rng.integers(1, 3_000)), dtype="<u4").tobytes()
        doc = Document(doc_id=f"{i:04x}", source="a.warc.gz", url=f"https://example.org/{i}",
                       warc_record_id=f"<urn:uuid:{i}>", crawl_date="2024-01-01T00:00:00Z",
                       meta=RecordMeta(i, "response", 200, "text/html"), text="", title=rng.bytes(1000).hex(),
                       language="en", tokens=tokens, token_count=len(tokens) // 4, scores={"quality_score": i / 600})
        docs.append(doc)
        refs.append(StagedRef(doc_id=doc.doc_id, source=doc.source, staged=file.path, staged_at=file.write(doc),
                              token_count=doc.token_count, exact_key=""))
    file.close()
    columns = ["quality_score"]
    writer = WriteSourceParts(Recipe(), str(tmp_path), columns)
    writer.setup()
    (group,) = writer._row_groups(refs)  # 600 documents < row_group_rows: one row group
    token_pieces = group.column("tokens").chunks
    assert len(token_pieces) >= 3 and all(len(piece.values) <= PIECE_TOKENS for piece in token_pieces)
    assert all(column.num_chunks == len(token_pieces) for column in group.columns)
    whole = shard_table(docs, columns)
    assert group.equals(whole)
    schema = shard_schema(columns)
    pieces = write_part([group], str(tmp_path / "pieces.parquet"), schema, 2_000, 3, None)
    at_once = write_part([whole], str(tmp_path / "whole.parquet"), schema, 2_000, 3, None)
    assert pieces.rows == at_once.rows == 600

    assert _column_chunks(pieces.path) == _column_chunks(at_once.path)
    assert _pages_sha256(pieces.path) == _pages_sha256(at_once.path)


def test_write_part_gives_the_same_file_however_the_columns_are_chunked(tmp_path):
    """Arrow's writer checks for a full page only between its internal batches, counted from the start of each
    chunk it is handed: short lists in small pieces moved the page ends on pyarrow 16.1 and 25.0 alike, until
    write_part asked for one level per batch. Every page, and the fall back from a full dictionary to plain
    encoding, must land where it does for the whole column, for lists of any length (empty ones too) and
    strings."""
    import pyarrow as pa

    from outputs.parquet_parts import write_part

    rng = np.random.default_rng(3)
    schema = pa.schema([pa.field("tokens", pa.list_(pa.uint32())), pa.field("name", pa.string())])
    lists = [rng.integers(0, 1 << 20, size=int(rng.integers(0, 300)), dtype="<u4") for _ in range(8_000)]
    names = [rng.bytes(int(rng.integers(0, 200))).hex() for _ in lists]
    whole = pa.table([pa.array(lists, type=schema.field(0).type), pa.array(names)], schema=schema)
    cuts = [0, *sorted(rng.choice(np.arange(1, len(lists)), size=60, replace=False).tolist()), len(lists)]
    pieces = pa.concat_tables([whole.slice(a, b - a) for a, b in itertools.pairwise(cuts)])
    assert pieces.column(0).num_chunks == 61
    infos = [write_part([table], str(tmp_path / f"{name}.parquet"), schema, 10_000, 3, None)
             for name, table in (("whole", whole), ("pieces", pieces))]
    # Both columns pass a data page, and their distinct values pass the dictionary's 1 MiB: it falls back.
    assert len(np.unique(np.concatenate(lists))) * 4 > 1 << 20 and sum(map(len, names)) > 1 << 20
    assert _column_chunks(infos[0].path) == _column_chunks(infos[1].path)
    assert _pages_sha256(infos[0].path) == _pages_sha256(infos[1].path)


def test_write_sorted_parts_cuts_a_sorted_stream_into_parts(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from outputs.parquet_parts import write_sorted_parts

    schema = pa.schema([pa.field("doc_id", pa.string()), pa.field("v", pa.int64())])

    def to_table(rows):
        return pa.Table.from_pylist([{"doc_id": d, "v": v} for d, v in rows], schema=schema)

    common = dict(schema=schema, key=lambda r: r[0], to_table=to_table, row_group_rows=128, zstd_level=3)
    items = [(f"{i:05d}", i) for i in range(1037)][::-1]
    infos = write_sorted_parts(items, path_of=lambda k, n: str(tmp_path / f"p{k}-of-{n}.parquet"), max_rows=400,
                               spill_rows=300, **common)
    assert [i.rows for i in infos] == [400, 400, 237]
    assert [i.path.rsplit("/", 1)[-1] for i in infos] == [f"p{k}-of-3.parquet" for k in range(3)]
    ids = [x for i in infos for x in pq.read_table(i.path).column("doc_id").to_pylist()]
    assert ids == sorted(f"{i:05d}" for i in range(1037))
    (empty,) = write_sorted_parts([], path_of=lambda k, n: str(tmp_path / f"e{k}-{n}.parquet"), max_rows=400,
                                  **common)
    assert empty.rows == 0 and pq.read_table(empty.path).num_rows == 0


def test_part_names_sort_as_their_numbers_for_any_count():
    """A run of 100,001 input files numbers its files with six digits, a file cut into 1,001 parts its parts with
    four: the names of every part of the run sort as (file, part) do, so a reader that sorts a listing reads
    them in order. Up to 10^5 files and 10^3 parts a file the names are those of before."""
    from pipelines.source_parts import part_name

    files = 100_001
    names = [part_name(f, files, 0, 1) for f in range(files)]
    assert (names[0], names[-1]) == ("part-000000-000", "part-100000-000")
    assert sorted(names) == names
    parts = {(f, k): part_name(f, files, k, n) for f, n in ((5, 12), (99_999, 1), (100_000, 1_001)) for k in range(n)}
    assert parts[(100_000, 0)] == "part-100000-0000" and parts[(5, 11)] == "part-000005-011"
    assert sorted(parts, key=parts.get) == sorted(parts)
    assert part_name(3, 2, 4, 7) == "part-00003-004" and part_name(99_999, 100_000, 999, 1_000) == "part-99999-999"


def test_the_finalize_step_removes_what_a_killed_part_writer_left(tmp_path):
    """write_part writes `<part>.tmp-<pid>` and renames it; a worker killed in between leaves the temp file,
    and its retry writes the part again. remove_partial_parts (the finalize step) takes the leftovers only."""
    from outputs.parquet_parts import remove_partial_parts

    for name in ("shards/part-00000.parquet", "shards/part-00001.parquet.tmp-4242", "ledger/part-00000.parquet",
                 "ledger/part-00000.parquet.tmp-7", "notes/x.tmp-1"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    removed = remove_partial_parts(str(tmp_path), ("shards", "ledger", "dedup_index", "scored"))
    assert [p.rsplit("/", 2)[-2:] for p in removed] == [["ledger", "part-00000.parquet.tmp-7"],
                                                        ["shards", "part-00001.parquet.tmp-4242"]]
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["ledger/part-00000.parquet", "notes/x.tmp-1", "shards/part-00000.parquet"]
