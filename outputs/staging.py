"""Staging files: where documents wait while small references to them go through the shuffles
(pipelines/staging.py writes them, pipelines/source_parts.py and near dedup read them back).

A staging file is a run of frames, [uint32 little-endian length][zstd frame of one pickled object], each
object compressed on its own: a StagedRef carries its frame's offset (`staged_at`), so the shard writer
reads one piece of a row group's documents (PIECE_TOKENS) and near dedup one cluster's texts without
decompressing a file from its start. Files live in <output>/_staging/ on any store (storage/files.py); a
retried bundle writes other files (a random attempt id in the name), and only the names its committed
outputs carry are ever read. The run removes _staging/ once its manifest is written.
"""

from __future__ import annotations

import pickle
import struct
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import xxhash
import zstandard

from schemas.records import Document, StagedRef
from storage.files import create, filesystems, open_read

STAGING = "_staging"


def staging_dir(output_root: str) -> str:
    return f"{output_root.rstrip('/')}/{STAGING}"


_FRAME = struct.Struct("<I")


class Frames:
    """Objects into staging frames: [uint32 length][zstd frame of the pickled object]. Apart from writing so
    that a caller can tell what an object makes fail (encoding it) from what the store makes fail (writing)."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=1)  # staging is read once or twice, then deleted

    def frame(self, obj: Any) -> bytes:
        blob = self.compressor.compress(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        return _FRAME.pack(len(blob)) + blob


class StagingFile:
    """One staging file being written, frame by frame; `write` returns the frame's offset."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stream = create(path)
        self.offset = 0
        self.frames = Frames()

    def write(self, obj: Any) -> int:
        return self.write_frame(self.frames.frame(obj))

    def write_frame(self, frame: bytes) -> int:
        """Append a frame made by Frames.frame; returns its offset."""
        self.stream.write(frame)
        at, self.offset = self.offset, self.offset + len(frame)
        return at

    def close(self) -> None:
        self.stream.close()


class OpenFiles:
    """Staging files being written, by source, at most `limit` open at a time: documents arrive file after
    file, and every open writer holds buffers. A source that comes back after its file was closed gets a new
    file; readers take every file named to them."""

    def __init__(self, output_root: str, prefix: str, limit: int = 2) -> None:
        self.folder = staging_dir(output_root)
        self.prefix = prefix
        self.limit = limit
        self.files: OrderedDict[str, StagingFile] = OrderedDict()

    def get(self, source: str) -> tuple[StagingFile, bool]:
        """(the open staging file for this source, whether it is new)."""
        if source in self.files:
            self.files.move_to_end(source)
            return self.files[source], False
        if len(self.files) >= self.limit:
            self.files.popitem(last=False)[1].close()
        path = f"{self.folder}/{self.prefix}{xxhash.xxh3_64_hexdigest(source.encode())}-{uuid.uuid4().hex}.stage"
        self.files[source] = StagingFile(path)
        return self.files[source], True

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        self.files.clear()


def remove_staging(output_root: str) -> None:
    """Delete the run's staging files (at the end of a run, and before a run reuses an output directory)."""
    FileSystems = filesystems()  # noqa: N806 - the class, as Beam names it
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
    with open_read(path) as stream:
        while True:
            try:
                yield _read_frame(stream, path, decompressor)
            except EOFError:
                return


def read_staged_at(path: str, offsets: Iterable[int]) -> Iterator[tuple[int, Any]]:
    """(offset, object) for the frames at these offsets of one staging file, in offset order."""
    decompressor = zstandard.ZstdDecompressor()
    with open_read(path) as stream:
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


def read_refs(refs: Iterable[StagedRef]) -> Iterator[tuple[StagedRef, Document]]:
    """(ref, staged Document) for refs to any staging files: one pass over each file, files in name order."""
    by_file: dict[str, dict[int, StagedRef]] = {}
    for ref in refs:
        by_file.setdefault(ref.staged, {})[ref.staged_at] = ref
    for path in sorted(by_file):
        yield from read_staged_docs(path, by_file[path])
