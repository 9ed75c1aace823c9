"""WARC/WET framing and the cheap record triage that runs before any decoding.

warcio frames records (WARC/1.0, 1.1 and ClueWeb's 0.18, gzip per record or plain, chunked HTTP bodies).
A file that cannot be read past some point yields a ReadError with the offset and the records before it
stand; the pipeline records the error in stats and goes on with the next file.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator

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


def read_warc(stream: BinaryIO, source_path: str) -> Iterator[Record | SkippedRecord | WarcInfo | ReadError]:
    """Yield every record of one WARC/WET file, in file order.

    `source_path` is only used for its base name, which enters the doc id (see make_doc_id).
    """
    source = source_name(source_path)
    head = stream.read(1 << 12)
    if not starts_like_warc(head):
        # warcio reads almost anything as records (a text file's lines became ten "responses"): say what it is.
        yield ReadError(source, 0, f"not a WARC file: it starts with {file_start(head)[:32]!r}")
        return
    counting = _CountingReader(stream, head)
    # arc2warc off: once a file is known to be WARC, garbage is a framing error, not a "record" in ARC format.
    iterator = ArchiveIterator(counting, arc2warc=False)
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
                info = warc_fields(rec.content_stream().read()) if rec_type == "warcinfo" else None
                (offset, end), last_missing = framed(), 0
                if info is not None:
                    yield WarcInfo(info)
                yield SkippedRecord(rec_type)
                continue
            body = rec.content_stream().read()
            # warcio ends a record silently where the file ends; what it still expected is the damage.
            has_length = (rec.rec_headers.get_header("Content-Length") or "").strip().isdigit()
            missing = (getattr(rec.raw_stream, "limit", 0) or 0) if has_length else -1
            offset, end = framed()
            http = rec.http_headers if rec_type == "response" else None
            status = None
            content_type = ""
            if http is not None:
                try:
                    status = int(http.get_statuscode())
                except (TypeError, ValueError):
                    status = None
                content_type = _header(http, "Content-Type")
            elif rec_type == "response" and body.startswith(b"HTTP/"):
                # warcio parses HTTP headers only for http(s):// target URIs; crawls with other URI schemes
                # (or none) still carry an HTTP message, so split it here.
                status, content_type, body = split_http_message(body)
            if not content_type:
                content_type = _header(rec.rec_headers, "Content-Type")
            record_id = _header(rec.rec_headers, "WARC-Record-ID") or f"<offset:{offset}>"
            yield Record(
                doc_id=make_doc_id(source, record_id),
                source=source,
                offset=offset,
                record_type=rec_type,
                url=_header(rec.rec_headers, "WARC-Target-URI"),
                warc_record_id=record_id,
                crawl_date=_header(rec.rec_headers, "WARC-Date"),
                http_status=status,
                content_type=content_type,
                body=body,
                truncated=bool(_header(rec.rec_headers, "WARC-Truncated")),
                cut_short=missing,
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


_STATUS_LINE = re.compile(rb"HTTP/\d(?:\.\d)?\s+(\d{3})")


def split_http_message(message: bytes) -> tuple[int | None, str, bytes]:
    """(status, Content-Type, body) of a raw HTTP response whose headers warcio did not parse."""
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = message.partition(b"\n\n")
    lines = head.decode("latin-1").splitlines()
    m = _STATUS_LINE.match(message)
    content_type = ""
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-type":
            content_type = value.strip()
        elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        body = _dechunk(body)
    return (int(m.group(1)) if m else None), content_type, body


def _dechunk(data: bytes) -> bytes:
    out, pos = [], 0
    while pos < len(data):
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            break
        try:
            size = int(data[pos:line_end].split(b";")[0].strip() or b"0", 16)
        except ValueError:
            return data  # not really chunked: keep the bytes as they are
        if size == 0:
            break
        out.append(data[line_end + 2 : line_end + 2 + size])
        pos = line_end + 2 + size + 2
    return b"".join(out)


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
            return Decision(STAGE_READ, "http_unparsable", detail="no HTTP status line")
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
        return Decision(STAGE_READ, "too_large", float(len(record.body)))
    return None
