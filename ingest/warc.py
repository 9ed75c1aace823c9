"""WARC/WET framing and the cheap record triage that runs before any decoding.

warcio frames records (WARC/1.0, 1.1 and ClueWeb's 0.18, gzip per record or plain); HTTP heads, chunked bodies
and content codings are undone here, within bounds (read_warc).
A file that cannot be read past some point yields a ReadError with the offset and the records before it
stand; the pipeline records the error in stats and goes on with the next file.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import DecompressingBufferedReader
from warcio.statusandheaders import StatusAndHeadersParser

from schemas.recipe import ReadConfig
from schemas.records import CONTENT_RECORD_TYPES, STAGE_READ, Decision, Record, make_doc_id
from storage.retry import StoreError

# warcio warns (once per record) about spaces it repairs in target URIs; the URL is kept as repaired.
logging.getLogger("warcio").setLevel(logging.ERROR)


class _CountingReader:
    """Counts the bytes read from the raw stream, so the reader can tell how much of a file it understood."""

    def __init__(self, raw: BinaryIO, head: bytes = b"") -> None:
        self.raw = raw
        self.head = head  # bytes already read from `raw` (to look at the file's start), served first
        self.count = 0
        self.last = b""  # the file's last bytes seen so far

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = (self.head, b"") if size < 0 or size >= len(self.head) else (
                self.head[:size], self.head[size:])
        else:
            data = self.raw.read(size)
        self.count += len(data)
        self.last = (self.last + data[-8:])[-8:]
        return data

    def drain(self) -> int:
        """Read to the end; returns the file's total size."""
        while self.read(1 << 20):
            pass
        return self.count


# WARC 1.1 section 6 (and ARC/0.18 files converted by warcio use these too).
WARC_TYPES = frozenset(
    {"warcinfo", "response", "resource", "request", "metadata", "revisit", "conversion", "continuation"}
)


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A non-content record (warcinfo, request, metadata, revisit): counted in stats, no ledger row."""

    record_type: str


@dataclass(frozen=True, slots=True)
class WarcInfo:
    """A warcinfo record's fields (WARC 1.1 section 6.2: `name: value` lines, application/warc-fields).
    Common Crawl's carry the snapshot as `isPartOf: CC-MAIN-2024-22`; read_warc yields it before the
    SkippedRecord that counts the record."""

    fields: dict[str, str]


# A Common Crawl snapshot id: CC-MAIN-<year>-<week>. Not the files' own names: CC-MAIN-20240517233122-... is a
# segment timestamp, which the lookahead keeps from matching as CC-MAIN-2024-05.
_SNAPSHOT = re.compile(r"CC-MAIN-\d{4}-\d{2}(?![0-9])")


def snapshot_from_path(path: str) -> str:
    """The Common Crawl snapshot a file belongs to by its full path, "" when the path names none. Common Crawl
    keeps the id in the folder only (crawl-data/CC-MAIN-2024-22/segments/.../warc/CC-MAIN-20240517...gz)."""
    found = _SNAPSHOT.findall(path)
    return found[-1] if found else ""


def snapshot_of_file(info: WarcInfo | None, path: str) -> str:
    """A file's snapshot: its warcinfo record's `isPartOf` where it has one, else its path's (see above)."""
    if info is not None and info.fields.get("isPartOf", "").strip():
        return info.fields["isPartOf"].strip()
    return snapshot_from_path(path)


def warc_fields(body: bytes) -> dict[str, str]:
    """`name: value` lines of an application/warc-fields body; the first of a repeated name wins."""
    fields: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and name.strip() not in fields:
            fields[name.strip()] = value.strip()
    return fields


@dataclass(frozen=True, slots=True)
class ReadError:
    """The file could not be read past `offset`; records before it were yielded."""

    source: str
    offset: int
    error: str


def _header(headers, name: str) -> str:
    value = headers.get_header(name) if headers is not None else None
    return value or ""


def file_start(head: bytes) -> bytes:
    """A file's first bytes as a reader sees them: decompressed when they are a gzip member's."""
    if head[:2] == b"\x1f\x8b":
        try:
            return zlib.decompressobj(wbits=31).decompress(head, 64)
        except zlib.error:
            return head
    return head


def starts_like_warc(head: bytes) -> bool:
    """Whether a file's first bytes are a WARC record's first line ("WARC/1.0", "WARC/0.18", ...), plain or in
    a gzip member."""
    return file_start(head).lstrip(b"\r\n").startswith(b"WARC/")


def source_name(path: str, root: str = "") -> str:
    """A file's name in the run (Record.source, doc ids, the part index, the manifest's snapshots, near dedup's
    scope, the first_seen survivor rule): its path below `root`, the longest folder holding all of the run's
    inputs (outputs.run_files.inputs_root). Without a root the path is the name: read_warc is given the name.

    Not the base name: crawlA/part-0.warc.gz and crawlB/part-0.warc.gz would be one file of the run, with one
    part number and colliding doc ids. Not the full path either: the same crawl read from gs:// instead of a
    local folder would get other names, other doc ids and other output bytes. Below the common folder, names
    are as distinct as the paths (one prefix is removed from all) and stay the same when the whole crawl moves
    between stores; inputs that share one folder are named by their base names. The price: a name depends on
    the run's other inputs, so a run that adds a file from another folder names (and ids) every file anew."""
    path = path.rstrip("/")
    return path[len(root):] if root and path.startswith(root) else path


def read_warc(stream: BinaryIO, source: str, max_body_bytes: int = ReadConfig.max_body_bytes,
              ) -> Iterator[Record | SkippedRecord | WarcInfo | ReadError]:
    """Yield every record of one WARC/WET file, in file order.

    `source` is the file's name in the run (source_name: its path below the inputs' common folder), the
    records' `source`, which enters their doc ids (see make_doc_id). A body is decoded
    (chunked transfer coding and gzip/deflate/br content coding removed) up to `max_body_bytes` + 1 bytes, and
    the rest of its record skipped: what one record costs in memory does not grow with what it inflates to
    (triage drops such a record as too_large).
    """
    head = stream.read(1 << 12)
    if not starts_like_warc(head):
        # warcio reads almost anything as records (a text file's lines became ten "responses"): say what it is.
        yield ReadError(source, 0, f"not a WARC file: it starts with {file_start(head)[:32]!r}")
        return
    counting = _CountingReader(stream, head)
    # arc2warc off: once a file is known to be WARC, garbage is a framing error, not a "record" in ARC format.
    # no_record_parse: HTTP heads are parsed here (_http_message), within a bound; warcio's parser would read
    # a head line by line without one.
    iterator = _bounded_iterator(counting)
    offset = 0
    end = 0  # where the last whole record ends in the file
    last_missing = 0

    def framed() -> tuple[int, int]:
        """(start, end) of the record just read; warcio's get_record_offset() consumes the record, so this is
        asked only after its body is read."""
        start = iterator.get_record_offset()
        return start, start + iterator.get_record_length()

    try:
        for rec in iterator:
            rec_type = rec.rec_type
            if rec_type not in WARC_TYPES:
                # warcio yields a header cut short ("WARC-Type: respo") as a record of that type: damage.
                (offset, end), last_missing = framed(), 0
                yield ReadError(source, offset, f"record with unknown WARC-Type {rec_type!r} (cut or damaged header)")
                continue
            if rec_type not in CONTENT_RECORD_TYPES:
                info = warc_fields(_take(_blocks(rec.raw_stream), max_body_bytes)) if rec_type == "warcinfo" else None
                (offset, end), last_missing = framed(), 0
                if info is not None:
                    yield WarcInfo(info)
                yield SkippedRecord(rec_type)
                continue
            raw = rec.raw_stream
            length = (rec.rec_headers.get_header("Content-Length") or "").strip()
            has_length = length.isascii() and length.isdigit()  # "²".isdigit() too, and int() refuses it
            url = _header(rec.rec_headers, "WARC-Target-URI")
            status, content_type, head_size = None, "", 0
            pieces = _blocks(raw)
            if rec_type == "response":
                # warcio parsed the HTTP head of http(s):// records whatever their first line; crawls with other
                # URI schemes (or none) may still carry an HTTP message, which starts "HTTP/".
                status, content_type, pieces, head_size = _http_message(pieces, url.startswith(("http:", "https:")))
            body = _take(pieces, max_body_bytes)
            # The rest of the record, raw (nothing inflated beyond what its gzip member holds), in bounded reads.
            while raw.read(_BLOCK):
                pass
            # warcio ends a record silently where the file ends; what it still expected is the damage.
            missing = (getattr(raw, "limit", 0) or 0) if has_length else -1
            offset, end = framed()
            if not content_type:
                content_type = _header(rec.rec_headers, "Content-Type")
            record_id = _header(rec.rec_headers, "WARC-Record-ID") or f"<offset:{offset}>"
            yield Record(
                doc_id=make_doc_id(source, record_id),
                source=source,
                offset=offset,
                record_type=rec_type,
                url=url,
                warc_record_id=record_id,
                crawl_date=_header(rec.rec_headers, "WARC-Date"),
                http_status=status,
                content_type=content_type,
                body=body,
                truncated=bool(_header(rec.rec_headers, "WARC-Truncated")),
                cut_short=missing,
                declared_size=int(length) - head_size if has_length else -1,
            )
            # A record cut short is dropped by triage; if it is also the file's last, the file was cut there.
            last_missing = missing
    except StoreError:
        raise  # the store failed, not the file: the runner retries the bundle (storage/retry.py)
    except Exception as exc:  # noqa: BLE001 - any framing failure ends this file, never the run
        yield ReadError(source, offset, f"{type(exc).__name__}: {exc}")
        return
    if last_missing > 0:
        yield ReadError(source, offset, f"file ends inside the record at this offset: {last_missing} bytes missing")
        return
    if last_missing < 0:
        yield ReadError(source, offset, "the last record has no Content-Length: file cut inside its header?")
        return
    # warcio also stops without a word when a gzip member is cut before its record header is complete.
    # Plain WARC files may end with the last record's blank lines (up to 4 bytes) outside its length.
    size = counting.drain()
    tail = size - end
    if tail > 4 or (tail > 0 and counting.last[-tail:].strip(b"\r\n")):
        yield ReadError(source, end, f"{size - end} bytes after the last whole record could not be read "
                                     "(truncated gzip member or damaged tail)")


# Bytes asked of a record's stream at a time, and the most a decoder gives at once.
_BLOCK = 1 << 16
# An HTTP head (status line and header lines) over this many bytes or lines is no HTTP message: the record is
# dropped as http_unparsable. Real heads are a few KiB and some dozen lines; warcio's parser takes ~10 us a line.
_HTTP_HEAD_MAX = 2 << 20
_HTTP_HEAD_LINES = 1 << 14
# A WARC header over this many bytes or lines, or a run of blank lines between records over _BLANK_MAX bytes,
# stops the file's framing (a ReadError): warcio reads them with readline() and no limit.
_WARC_HEAD_MAX = 4 << 20
_WARC_HEAD_LINES = 1 << 14
_BLANK_MAX = 1 << 16
# The compressed bytes warcio's reader inflates at a time from a file's gzip member: deflate inflates up to
# ~1,000-fold (4 MiB), held twice while one inflated block replaces the last. warcio's default, 16 KiB, made
# a member of zeros cost 64 MB; reading the bench crawl is 3 % slower with 4 KiB.
_FILE_BLOCK = 1 << 12


class HeaderTooLarge(Exception):
    """A WARC header, or the blank lines after a record, beyond what any real file holds."""


class _BoundedLineReader(DecompressingBufferedReader):
    """warcio's reader of a file's (decompressed) bytes, with readline() bounded. warcio reads WARC headers and
    the blank lines between records line by line without a limit: a gzip member inflating to a gigabyte
    without a newline was one line, built by repeated concatenation, and a gigabyte of blank lines a billion
    calls. Here a header's lines (the non-blank ones since the last blank line or read()) and a run of blank
    lines are bounded (the constants above); beyond them reading stops with HeaderTooLarge. Only warcio's
    public readline and read are used."""

    def __init__(self, stream, block_size: int = _FILE_BLOCK) -> None:
        super().__init__(stream, block_size=block_size)
        self.head_bytes = self.head_lines = self.blank_bytes = 0

    def readline(self, length=None) -> bytes:
        room = _WARC_HEAD_MAX + 1 - self.head_bytes
        want = room if length is None else min(length, room)
        parts = []
        while want > 0:  # warcio's readline(length) may stop short of a newline and of length: ask again
            piece = super().readline(want)
            if not piece:
                break
            parts.append(piece)
            want -= len(piece)
            if piece.endswith(b"\n"):
                break
        line = b"".join(parts)
        if line.rstrip():
            self.head_bytes += len(line)
            self.head_lines += 1
            self.blank_bytes = 0
            if self.head_bytes > _WARC_HEAD_MAX or self.head_lines > _WARC_HEAD_LINES:
                raise HeaderTooLarge(f"a WARC header of over {_WARC_HEAD_MAX >> 20} MiB or {_WARC_HEAD_LINES} lines")
        elif line:
            self.head_bytes = self.head_lines = 0
            self.blank_bytes += len(line)
            if self.blank_bytes > _BLANK_MAX:
                raise HeaderTooLarge(f"over {_BLANK_MAX >> 10} KiB of blank lines after a record")
        return line

    def read(self, length=None) -> bytes:
        self.head_bytes = self.head_lines = self.blank_bytes = 0
        return super().read(length)


def _bounded_iterator(fileobj) -> ArchiveIterator:
    """warcio's ArchiveIterator over `fileobj` reading through a _BoundedLineReader."""
    iterator = ArchiveIterator(fileobj, arc2warc=False, no_record_parse=True, block_size=_FILE_BLOCK)
    # The iterator reads through its `reader`, made in __init__ over `fh` (fileobj, wrapped to tell offsets);
    # the iteration starts on the first next(), so replacing it here leaves nothing read by the old one.
    if not isinstance(getattr(iterator, "reader", None), DecompressingBufferedReader) or not hasattr(iterator, "fh"):
        raise RuntimeError("warcio's ArchiveIterator no longer has the reader/fh this module replaces")
    iterator.reader = _BoundedLineReader(iterator.fh, block_size=_FILE_BLOCK)
    return iterator


def _blocks(stream) -> Iterator[bytes]:
    while block := stream.read(_BLOCK):
        yield block


def _next(pieces: Iterator[bytes]) -> bytes:
    """The next piece that is not empty; b"" at the end."""
    for piece in pieces:
        if piece:
            return piece
    return b""


def _take(pieces: Iterable[bytes], limit: int) -> bytes:
    """The pieces joined, up to limit + 1 bytes: pulls no piece once it has more than `limit`. Into one buffer:
    a list of the pieces cost ~60 bytes per piece on top of its bytes, and a chunked body of two-byte chunks
    made 1 MB decoded cost 62 MiB."""
    out = bytearray()
    for piece in pieces:
        out += piece[: limit + 1 - len(out)]
        if len(out) > limit:
            break
    return bytes(out)


# A line of ASCII whitespace only: the blank line that ends an HTTP head (or a head that starts blank).
_BLANK_LINE = re.compile(rb"(?:^|\n)[ \t\r\x0b\x0c\x1c-\x1f]*\n")
_HTTP_PARSER = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1"], verify=False)


def _http_message(pieces: Iterator[bytes], any_first_line: bool,
                  ) -> tuple[int | None, str, Iterator[bytes], int]:
    """(status, Content-Type, the body's decoded pieces, the head's size in bytes) of the HTTP message whose
    bytes `pieces` yields. Parsed when `any_first_line` (as warcio parsed the block of an http(s):// response)
    or when it starts with "HTTP/"; otherwise the message is (None, "", the pieces as they are, 0).

    The head is read up to _HTTP_HEAD_MAX bytes and _HTTP_HEAD_LINES lines (without a blank line by then, or
    with more lines: status None and no body, which triage drops as http_unparsable) and parsed by warcio's own
    parser. The body's transfer coding (chunked) and content coding (gzip, deflate, br) are removed as the body
    is read (`_dechunked`, `_decoded`)."""
    buf, start = b"", 0
    while True:
        if not any_first_line and len(buf) >= 5 and not buf.startswith(b"HTTP/"):
            return None, "", itertools.chain([buf], pieces), 0
        if (found := _BLANK_LINE.search(buf, start)) or len(buf) > _HTTP_HEAD_MAX:
            break
        block = _next(pieces)
        if not block:
            break
        start = buf.rfind(b"\n")  # a blank line may begin at the last newline already searched, not before
        start = len(buf) if start < 0 else start
        buf += block
    if not any_first_line and not buf.startswith(b"HTTP/"):
        return None, "", iter([buf]), 0
    head = buf[: found.end()] if found else buf
    if (not found and len(buf) > _HTTP_HEAD_MAX) or head.count(b"\n") > _HTTP_HEAD_LINES:
        return None, "", iter(()), 0
    stream = io.BytesIO(head)
    try:
        parsed = _HTTP_PARSER.parse(stream)
    except Exception:  # noqa: BLE001 - an empty message (EOFError), or a head warcio cannot parse: no HTTP
        return None, "", iter(()), 0
    body = itertools.chain([buf[stream.tell() :]], pieces)
    try:
        status = int(parsed.get_statuscode())
    except (TypeError, ValueError):
        status = None
    # RFC 9112 section 6.1: chunked is the last transfer coding (warcio required the value to be "chunked").
    if (parsed.get_header("Transfer-Encoding") or "").split(",")[-1].strip().lower() == "chunked":
        body = _dechunked(body)
    coding = (parsed.get_header("Content-Encoding") or "").strip().lower()
    if coding in _DECODERS:
        body = _decoded(body, coding)
    return status, parsed.get_header("Content-Type") or "", body, stream.tell()


def split_http_message(message: bytes, max_body_bytes: int = ReadConfig.max_body_bytes,
                       ) -> tuple[int | None, str, bytes]:
    """(status, Content-Type, body) of a whole HTTP response in memory, read as read_warc reads one: the
    body's transfer and content codings removed, up to max_body_bytes + 1 bytes of it."""
    status, content_type, body, _ = _http_message(iter([message]), any_first_line=True)
    return status, content_type, _take(body, max_body_bytes)


def _dechunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Chunked transfer coding removed (RFC 9112 section 7.1), chunk data passed on as it arrives (warcio's
    reader held a whole chunk, which may declare 2 GiB). As warcio reads chunks: a size line is at most 64 bytes
    and ends in CRLF, with a hex number of at most 2^31 before any ';'. A size line that is not one, or a chunk
    not followed by CRLF, ends the dechunking: the bytes from there on are the body as sent (a body that only
    said it was chunked). A body cut inside a chunk ends there; trailers after the last chunk are ignored."""
    it = iter(pieces)
    buf, pos = b"", 0

    def more() -> bool:
        nonlocal buf, pos
        block = _next(it)
        buf, pos = buf[pos:] + block, 0
        return bool(block)

    while True:
        while (nl := buf.find(b"\n", pos, pos + 64)) < 0 and len(buf) - pos < 64 and more():
            pass
        size = _chunk_size(buf[pos : nl + 1]) if nl >= 0 else None
        if size is None:
            yield buf[pos:]
            yield from it
            return
        pos = nl + 1
        if size == 0:
            return
        while size > 0:
            if pos >= len(buf) and not more():
                return  # cut inside the chunk
            piece = buf[pos : pos + size]
            pos += len(piece)
            size -= len(piece)
            yield piece
        while len(buf) - pos < 2 and more():
            pass
        if buf[pos : pos + 2] != b"\r\n":
            yield buf[pos:]
            yield from it
            return
        pos += 2


def _chunk_size(line: bytes) -> int | None:
    """A chunk-size line's size, None when it is not one."""
    if not line.endswith(b"\r\n"):
        return None
    try:
        size = int(line[:-2].split(b";")[0], 16)
    except ValueError:
        return None
    return size if 0 <= size <= 2**31 else None


class _ZlibDecoder:
    """gzip (wbits 31), zlib-wrapped deflate (15) or raw deflate (-15)."""

    def __init__(self, wbits: int) -> None:
        self._d = zlib.decompressobj(wbits)

    @property
    def done(self) -> bool:
        return self._d.eof

    def feed(self, data: bytes) -> Iterator[bytes]:
        """`data`'s output, _BLOCK bytes at most at a time."""
        while True:
            out = self._d.decompress(data, _BLOCK)
            if out:
                yield out
            if self._d.eof:
                return
            data = self._d.unconsumed_tail
            if not data and len(out) < _BLOCK:  # a full output may leave more inside zlib: ask with no input
                return


class _BrotliDecoder:
    """br, with a brotli module that bounds its output (from 1.2 on: output_buffer_limit)."""

    def __init__(self) -> None:
        import brotli

        self._d = brotli.Decompressor()

    @property
    def done(self) -> bool:
        return self._d.is_finished()

    def feed(self, data: bytes) -> Iterator[bytes]:
        # Output is asked for with no input until none comes: brotli 1.2.1 says it can accept more data while
        # output is still pending (its limit is where the buffer stops growing, ~1.5 times _BLOCK at most).
        out = self._d.process(data, output_buffer_limit=_BLOCK)
        while out:
            yield out
            if self._d.is_finished():
                return
            out = self._d.process(b"", output_buffer_limit=_BLOCK)


def _brotli_bounded() -> bool:
    try:
        import brotli
    except ImportError:
        return False
    return hasattr(brotli.Decompressor, "can_accept_more_data")  # came with output_buffer_limit, in 1.2


# The content codings decoded, each with its decoders tried in turn on the body's first block (the first that
# takes it decodes the body; when none does, the body stays as sent: the label was not true). deflate is
# zlib-wrapped by the standard and raw in practice; warcio tried both, in this order. br only with a brotli
# module that bounds its output (an older one would inflate a block without a bound; warcio 1.8 does not
# decode br with brotli 1.2 either): without one a br body stays as sent, as warcio leaves a coding it
# cannot decode.
_DECODERS: dict[str, list] = {
    "gzip": [lambda: _ZlibDecoder(31)],
    "x-gzip": [lambda: _ZlibDecoder(31)],
    "deflate": [lambda: _ZlibDecoder(15), lambda: _ZlibDecoder(-15)],
}
if _brotli_bounded():
    _DECODERS["br"] = [_BrotliDecoder]
# A body's first bytes kept while no decoder has given output yet, to try the next one or pass them on as sent
# (a hostile gzip header may run for megabytes before any output).
_PROBE_MAX = 1 << 16


def _decoded(pieces: Iterable[bytes], coding: str) -> Iterator[bytes]:
    """Content coding removed, at most _BLOCK bytes at a time: a 16 KiB deflate block inflates to 16 MiB, a
    brotli one to gigabytes. As warcio decoded: only the first gzip member; a body that does not decode (an
    error, or its end, before any output) is tried with the coding's next decoder, then is the body as sent;
    one that stops decoding after some output ends there."""
    it = iter(pieces)
    seen: list[bytes] = []  # the body's first pieces, read before any output: the next decoder starts from them
    seen_size = 0
    for make in _DECODERS[coding]:
        decoder, i, produced = make(), 0, False
        try:
            while not decoder.done:
                if i < len(seen):
                    piece = seen[i]
                elif not (piece := _next(it)):
                    break
                elif not produced and seen_size <= _PROBE_MAX:
                    seen.append(piece)
                    seen_size += len(piece)
                i += 1
                for out in decoder.feed(piece):
                    produced = True
                    yield out
        except StoreError:
            raise  # reading the file failed, not decoding: the runner retries the bundle (storage/retry.py)
        except Exception:  # noqa: BLE001 - zlib.error, brotli.error: not this coding, or damage part way
            if produced or seen_size > _PROBE_MAX:
                return  # the body ends where it stops decoding
            continue
        if produced or seen_size > _PROBE_MAX:
            return
    yield from seen
    yield from it


def mime_type(content_type: str) -> str:
    """'text/html; charset=UTF-8' -> 'text/html'."""
    return content_type.split(";", 1)[0].strip().lower()


def triage(record: Record, config: ReadConfig) -> Decision | None:
    """Drop what can never become an HTML document, before paying for decoding or extraction.

    Returns None when the record goes on. Order matters only for which reason is named: status first
    (a 404 page is an error page whatever its type), then type, then size.
    """
    if record.record_type == "response":
        status = record.http_status
        if status is None:
            return Decision(STAGE_READ, "http_unparsable", detail="no HTTP status line, or an HTTP head over "
                            f"{_HTTP_HEAD_MAX >> 20} MiB or {_HTTP_HEAD_LINES} lines")
        if 300 <= status < 400:
            return Decision(STAGE_READ, "http_redirect", float(status))
        if status != 200:
            return Decision(STAGE_READ, "http_error" if status >= 400 else "http_status", float(status))
    mime = mime_type(record.content_type)
    if record.record_type == "conversion":
        if mime not in ("text/plain", ""):
            return Decision(STAGE_READ, "not_text", detail=mime)
    elif mime not in config.html_content_types:
        return Decision(STAGE_READ, "not_html", detail=mime or "no content type")
    if record.cut_short > 0:
        return Decision(STAGE_READ, "record_cut_short", float(record.cut_short))
    if record.cut_short < 0:
        return Decision(STAGE_READ, "no_content_length")
    if not record.body.strip():
        return Decision(STAGE_READ, "empty_body")
    if len(record.body) > config.max_body_bytes:
        # read_warc stops decoding at max_body_bytes + 1 bytes: M is then where it stopped, not the whole size.
        declared = f"declared {record.declared_size} bytes" if record.declared_size >= 0 else "no declared size"
        return Decision(STAGE_READ, "too_large", float(len(record.body)),
                        detail=f"{declared}, read {len(record.body)} decoded")
    return None
