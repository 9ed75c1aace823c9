"""read_warc decodes at most max_body_bytes + 1 bytes of a body, whatever the body inflates to: gzip, deflate
and br bombs in the HTTP Content-Encoding, chunked bodies, and the WARC record's own gzip member. A 1 GiB gzip
bomb took one process to 2.1 GB before; here bombs of 96 MiB are read with a 1 MiB limit, in a few MiB."""

from __future__ import annotations

import gzip
import io
import random
import tracemalloc
import zlib

import pytest
from warcio.archiveiterator import ArchiveIterator

from ingest.warc import _DECODERS, ReadError, Record, _dechunked, _decoded, read_warc, split_http_message, triage
from schemas.recipe import ReadConfig
from tests.fuzz.broken_warcs import GOOD_URL, good_record, hostile_records, http_head, record_pieces

LIMIT = 1 << 20
BOMB = 96 << 20
CONFIG = ReadConfig(max_body_bytes=LIMIT)
BOMBS = ("gzip-bomb", "x-gzip-bomb", "deflate-bomb", "raw-deflate-bomb", "br-bomb", "chunked-gzip-bomb",
         "member-bomb", "member-bomb-resource", "member-bomb-one-chunk")
GOOD_BODY = good_record().partition(b"\r\n\r\n")[2].partition(b"\r\n\r\n")[2][: -len(b"\r\n\r\n")]


def read_traced(data: bytes, limit: int = LIMIT) -> tuple[list, int]:
    """read_warc's items for `data`, and the most memory Python held while reading (tracemalloc)."""
    tracemalloc.start()
    try:
        items = list(read_warc(io.BytesIO(data), "bombs.warc.gz", limit))
        return items, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def good_after(items: list) -> bool:
    """Whether the good record every test file ends with was read whole."""
    return any(isinstance(i, Record) and i.url == GOOD_URL and i.http_status == 200 and i.body == GOOD_BODY
               and triage(i, CONFIG) is None for i in items)


@pytest.fixture(scope="module")
def bombs():
    return {case.name: case for case in hostile_records(BOMB) if case.name in BOMBS}


@pytest.mark.parametrize("name", BOMBS)
def test_a_bomb_is_read_in_bounded_memory_and_dropped_as_too_large(bombs, name):
    if name not in bombs:
        pytest.skip("no brotli module that bounds its output: a br body stays as sent")
    case = bombs[name]
    for compressed in (True, False) if case.plain else (True,):
        items, peak = read_traced(case.file(compressed))
        assert peak < 24 << 20, (name, compressed, peak)  # the body inflates to 96 MiB
        bomb = items[0]
        assert isinstance(bomb, Record) and len(bomb.body) == LIMIT + 1
        decision = triage(bomb, CONFIG)
        assert decision.reason == "too_large" and decision.score == LIMIT + 1
        assert decision.detail == f"declared {bomb.declared_size} bytes, read {LIMIT + 1} decoded"
        if name.startswith("member-"):
            assert bomb.declared_size >= BOMB  # the WARC record declares the inflated block
        else:
            assert bomb.declared_size < BOMB // 100  # a small body, inflating
        assert good_after(items) and not [i for i in items if isinstance(i, ReadError)]


def test_the_body_read_is_the_start_of_the_page(bombs):
    (bomb, _good) = [i for i in read_traced(bombs["gzip-bomb"].file(True))[0] if isinstance(i, Record)]
    assert bomb.body == (b"<p>bomb</p>" * (LIMIT // 11 + 1))[: LIMIT + 1]


def test_a_content_length_beyond_the_file_allocates_nothing_up_front():
    """A record declaring 10^12 bytes in a small file: warcio only sets a limit, read_warc reads what is there in
    bounded blocks, the record is cut short and the file's end is the error."""
    http = http_head("Content-Type: text/html") + b"<p>a page</p>"
    raw = b"".join(record_pieces([http], 0, content_length=str(10**12)))
    items, peak = read_traced(raw)
    assert peak < 1 << 20
    (record, error) = items
    assert record.cut_short > 10**12 - 1000 and triage(record, CONFIG).reason == "record_cut_short"
    assert record.declared_size == 10**12 - len(http_head("Content-Type: text/html"))
    assert isinstance(error, ReadError) and "file ends inside the record" in error.error
    # In its own gzip member, the next member's record is read as usual.
    items, peak = read_traced(gzip.compress(raw, mtime=0) + gzip.compress(good_record(), mtime=0))
    assert peak < 1 << 20 and good_after(items)


def test_bodies_equal_warcios_own_reading(warc_samples):
    """Every content record of the sample files: read_warc's status, Content-Type and body are what warcio's own
    HTTP parsing and content_stream() give (read_warc parses heads and decodes bodies itself, within bounds)."""
    checked = 0
    for path in sorted(warc_samples.glob("*.warc*")):
        with open(path, "rb") as f:
            ours = [i for i in read_warc(f, path.name, 1 << 40) if isinstance(i, Record)]
        with open(path, "rb") as f:
            theirs = []
            for rec in ArchiveIterator(f):
                if rec.rec_type in ("response", "resource", "conversion"):
                    theirs.append((rec.http_headers, rec.content_stream().read()))
        assert len(ours) == len(theirs), path.name
        for record, (http, body) in zip(ours, theirs, strict=True):
            if http is None:
                continue  # warcio parsed no head (not an http(s):// response)
            assert record.http_status == int(http.get_statuscode()), (path.name, record.url)
            assert record.content_type == (http.get_header("Content-Type") or record.content_type)
            assert record.body == body, (path.name, record.url)
            checked += 1
    assert checked > 80


def _pieces(data: bytes, rng: random.Random) -> list[bytes]:
    """`data` cut at random places, empty pieces included: decoders must not care where blocks end."""
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randint(0, 12)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def _chunk(body: bytes, rng: random.Random) -> bytes:
    out, pos = [], 0
    while pos < len(body):
        n = rng.randint(1, 300)
        ext = rng.choice([b"", b";name=value"])
        out.append(b"%x%s\r\n%s\r\n" % (n if pos + n <= len(body) else len(body) - pos, ext, body[pos : pos + n]))
        pos += n
    return b"".join(out) + b"0\r\n\r\n"


def test_dechunking_and_inflating_do_not_depend_on_where_blocks_end():
    rng = random.Random(7)
    for _ in range(300):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 3000)))
        assert b"".join(_dechunked(_pieces(_chunk(body, rng), rng))) == body
        for coding, wbits in (("gzip", 31), ("x-gzip", 31), ("deflate", 15), ("deflate", -15)):
            c = zlib.compressobj(rng.randint(0, 9), zlib.DEFLATED, wbits)
            encoded = c.compress(body) + c.flush()
            assert b"".join(_decoded(_pieces(encoded, rng), coding)) == body, (coding, wbits)


def test_br_is_decoded_in_bounded_pieces_with_a_brotli_that_bounds_them():
    if "br" not in _DECODERS:
        pytest.skip("no brotli module that bounds its output: a br body stays as sent")
    import brotli

    rng = random.Random(9)
    for _ in range(40):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 3000))) + b"<p>" * rng.randint(0, 400_000)
        outs = list(_decoded(_pieces(brotli.compress(body, quality=rng.randint(0, 11)), rng), "br"))
        assert b"".join(outs) == body and max(map(len, outs), default=0) <= 2 << 16


def test_chunked_bodies_that_lie():
    def dechunk(data: bytes) -> bytes:
        return b"".join(_dechunked([data]))

    assert dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n") == b"hello world"  # trailers ignored
    assert dechunk(b"zz\r\n<p>x</p>") == b"zz\r\n<p>x</p>"  # not chunked after all: as sent
    assert dechunk(b"80000001\r\n<p>x</p>") == b"80000001\r\n<p>x</p>"  # over 2^31: as sent
    assert dechunk(b"-5\r\n<p>x</p>") == b"-5\r\n<p>x</p>"
    assert dechunk(b"1" * 70 + b"\r\nx") == b"1" * 70 + b"\r\nx"  # a size line over 64 bytes
    assert dechunk(b"5\r\nhelloXX6\r\n world") == b"helloXX6\r\n world"  # no CRLF after a chunk: the rest as sent
    assert dechunk(b"100\r\n<p>short</p>") == b"<p>short</p>"  # cut inside a chunk
    # A chunk that declares 2 GiB is passed on as it arrives, never held whole.
    pieces = _dechunked([b"80000000\r\n", *(b"\0" * (1 << 16) for _ in range(64))])
    assert max(len(p) for p in pieces) <= 1 << 16


def test_content_codings_that_lie():
    page = b"<html><body><p>" + b"words " * 500 + b"</p></body></html>"
    gz = gzip.compress(page, mtime=0)
    assert b"".join(_decoded([page], "gzip")) == page  # not gzip at all: the body as sent
    assert b"".join(_decoded([gz + gz], "gzip")) == page  # the first member only, as warcio read it
    assert b"".join(_decoded([gz[: len(gz) // 2]], "gzip")) == page[: len(b"".join(_decoded([gz[: len(gz) // 2]],
                                                                                           "gzip")))]
    corrupt = b"".join(_decoded([gz[:60], bytes(range(256)) * 4, gz[60:]], "gzip"))
    assert page.startswith(corrupt)  # it ends where it stops decoding
    assert b"".join(_decoded([], "gzip")) == b""


def test_split_http_message_is_bounded():
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    body = gz.compress(b"\0" * (64 << 20)) + gz.flush()
    message = http_head("Content-Type: text/html", "Content-Encoding: gzip", "Transfer-Encoding: chunked")
    message += b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    tracemalloc.start()
    status, content_type, decoded = split_http_message(message, LIMIT)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (status, content_type, decoded) == (200, "text/html", b"\0" * (LIMIT + 1)) and peak < 8 << 20


def test_heads_beyond_any_real_one():
    """An HTTP head over 2 MiB or 16,384 lines is no HTTP message (the record is dropped as http_unparsable, the
    next one read); a WARC header over 4 MiB, or 64 KiB of blank lines, stops the file's framing."""
    cases = {case.name: case for case in hostile_records(1 << 20)}
    for name in ("http-head-endless", "http-header-many"):
        items, _ = read_traced(cases[name].file(True))
        assert triage(items[0], CONFIG).reason == "http_unparsable" and good_after(items), name
    items, _ = read_traced(cases["http-header-line-1mb"].file(True))
    assert triage(items[0], CONFIG) is None and good_after(items)  # a 1 MB header line is still a head
    for name, error in (("warc-header-endless", "a WARC header of over 4 MiB"),
                        ("warc-blank-lines", "over 64 KiB of blank lines")):
        items, peak = read_traced(cases[name].file(True))
        assert peak < 24 << 20 and [i.error for i in items if isinstance(i, ReadError)] == [
            f"HeaderTooLarge: {error}" + (" or 16384 lines" if "WARC header" in error else " after a record")]


def test_a_body_of_many_tiny_chunks_is_read_in_bounded_memory():
    """Two-byte chunks: the body read is held in one buffer, not as one object per chunk (a list of the pieces
    took 62 MiB for 1 MB decoded)."""
    chunks = b"".join(b"2\r\n<p\r\n" for _ in range(400_000)) + b"0\r\n\r\n"  # 800 KB decoded
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    tracemalloc.start()
    try:
        _status, _ct, body = split_http_message(head + chunks, LIMIT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert body == b"<p" * 400_000
    assert peak < 4 * len(head + chunks) + (8 << 20), peak
