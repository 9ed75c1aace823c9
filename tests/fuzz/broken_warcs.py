"""A seeded generator of hostile WARC files: what a crawl segment throws at a pipeline every day.

    python -m tests.fuzz.broken_warcs OUT_DIR [--seed 0] [--big-mb 12] [--single] [--bomb-mb 64]

Every file mixes ordinary pages with one kind of damage, so a test can check that the damage is contained.
With --single, one file per hostile single record (`hostile_records`: bombs, bad codecs, bogus chunk sizes,
control characters, huge headers, ...), each followed by a good record, written both as gzip members and plain.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from demo.warc_writer import WarcWriter, _record

PAGE = "<html><head><title>Page {i}</title></head><body><article><h1>Title {i}</h1>{paras}</article></body></html>"


def page(rng: random.Random, i: int) -> bytes:
    words = ["river", "canyon", "bread", "weather", "bridge", "forest", "water", "study", "light", "keeper"]
    paras = "".join(
        "<p>" + " ".join(rng.choice(words) for _ in range(60)) + ".</p>" for _ in range(4)
    )
    return PAGE.format(i=i, paras=paras).encode()


def _good(w: WarcWriter, rng: random.Random, n: int, tag: str) -> None:
    for i in range(n):
        w.response(f"https://{tag}.example/{i}", page(rng, i))


def generate(out: str, seed: int = 0, big_mb: int = 12) -> dict[str, str]:
    """Write the files; returns {file name: what is wrong with it}."""
    os.makedirs(out, exist_ok=True)
    rng = random.Random(seed)
    made: dict[str, str] = {}

    def writer(name: str, what: str):
        made[name] = what
        buf = io.BytesIO()
        return buf, WarcWriter(buf, seed=name)

    def save(name: str, data: bytes) -> None:
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)

    buf, w = writer("truncated-member.warc.gz", "file cut in the middle of a gzip member")
    _good(w, rng, 5, "trunc")
    data = buf.getvalue()
    save("truncated-member.warc.gz", data[: int(len(data) * 0.8)])

    buf, w = writer("garbage-between.warc.gz", "random bytes between records")
    _good(w, rng, 3, "between")
    buf.write(bytes(rng.getrandbits(8) for _ in range(3000)))
    _good(w, rng, 3, "after")
    save("garbage-between.warc.gz", buf.getvalue())

    buf, w = writer("garbage-inside.warc.gz", "random bytes inside bodies labelled text/html")
    _good(w, rng, 3, "inside")
    for i in range(3):
        w.response(f"https://binary.example/{i}", bytes(rng.getrandbits(8) for _ in range(20_000)))
    save("garbage-inside.warc.gz", buf.getvalue())

    buf, w = writer("bad-lengths.warc.gz", "Content-Length too short, too long and missing")
    _good(w, rng, 2, "len")
    body = page(rng, 99)
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body
    for declared in (len(http) - 400, len(http) + 50):
        raw = _record("response", f"https://len.example/{declared}", "2026-01-01T00:00:00Z", http,
                      "application/http; msgtype=response", f"00000000-0000-0000-0000-{declared:012d}")
        raw = raw.replace(f"Content-Length: {len(http)}".encode(), f"Content-Length: {declared}".encode())
        buf.write(gzip.compress(raw, mtime=0))
    raw = _record("response", "https://len.example/missing", "2026-01-01T00:00:00Z", http,
                  "application/http; msgtype=response", "00000000-0000-0000-0000-000000000001")
    buf.write(gzip.compress(raw.replace(f"Content-Length: {len(http)}\r\n".encode(), b""), mtime=0))
    _good(w, rng, 2, "lenafter")
    save("bad-lengths.warc.gz", buf.getvalue())

    buf, w = writer("bad-header.warc.gz", "an invalid WARC header line and an unknown version")
    _good(w, rng, 2, "hdr")
    buf.write(gzip.compress(b"WARC/9.9\r\nthis is not a header\r\nContent-Length: 5\r\n\r\nhello\r\n\r\n", mtime=0))
    _good(w, rng, 2, "hdrafter")
    save("bad-header.warc.gz", buf.getvalue())

    buf, w = writer("charsets.warc.gz", "empty bodies, wrong, unknown and mixed charsets")
    w.response("https://cs.example/empty", b"")
    w.response("https://cs.example/latin1-says-utf8", "<p>Grüße aus Köln, schöne Straße</p>".encode("latin-1"))
    w.response("https://cs.example/unknown", b"<p>plain text here</p>", content_type="text/html; charset=x-no-such")
    w.response("https://cs.example/mixed", "<p>UTF-8 ü</p>".encode() + "<p>latin ü</p>".encode("latin-1"))
    w.response("https://cs.example/sjis", "<meta charset='shift_jis'><p>日本語のページです</p>".encode("shift_jis"))
    save("charsets.warc.gz", buf.getvalue())

    buf, w = writer("huge-and-nested.warc.gz", f"a {big_mb} MB page and deeply nested HTML")
    w.response("https://big.example/page", b"<html><body>" + b"<p>word </p>" * (big_mb * 1024 * 1024 // 12))
    w.response("https://deep.example/page", b"<html><body>" + b"<div>" * 200_000 + b"deep" + b"</div>" * 200_000)
    _good(w, rng, 2, "afterbig")
    save("huge-and-nested.warc.gz", buf.getvalue())

    buf, w = writer("non-http.warc.gz", "resource, metadata and conversion records, a non-HTTP response")
    buf.write(gzip.compress(_record("resource", "file:///local.html", "2026-01-01T00:00:00Z", page(rng, 1),
                                    "text/html", "00000000-0000-0000-0000-0000000000aa"), mtime=0))
    buf.write(gzip.compress(_record("metadata", "https://m.example/", "2026-01-01T00:00:00Z", b"fetchTimeMs: 5",
                                    "application/warc-fields", "00000000-0000-0000-0000-0000000000ab"), mtime=0))
    w.conversion("https://wet.example/", "Plain text from a WET file. " * 20)
    buf.write(gzip.compress(_record("response", "ftp://ftp.example/file", "2026-01-01T00:00:00Z", b"not http at all",
                                    "application/octet-stream", "00000000-0000-0000-0000-0000000000ac"), mtime=0))
    save("non-http.warc.gz", buf.getvalue())

    raw = io.BytesIO()
    w = WarcWriter(raw, seed="plain")
    _good(w, rng, 2, "plain")
    save("plain-uncompressed.warc", b"".join(gzip.decompress(raw.getvalue()) for _ in [0]))
    made["plain-uncompressed.warc"] = "uncompressed WARC"
    return made


# ---- hostile single records ----------------------------------------------------------------------------------

GOOD_URL = "https://good.example/after"


def repeated(pattern: bytes, size: int) -> Iterator[bytes]:
    """`size` bytes of `pattern` over and over, in pieces of about 1 MiB: never held whole."""
    unit = pattern * max(1, (1 << 20) // len(pattern))
    while size > 0:
        piece = unit[:size]
        size -= len(piece)
        yield piece


def deflated(pieces: Iterable[bytes], wbits: int = 31) -> bytes:
    """The pieces compressed as one stream: gzip (wbits 31), zlib (15) or raw deflate (-15)."""
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return b"".join(c.compress(p) for p in pieces) + c.flush()


def http_head(*headers: str, status: str = "HTTP/1.1 200 OK") -> bytes:
    return ("\r\n".join([status, *headers]) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def record_pieces(block: Iterable[bytes], size: int, *, url: str = "https://hostile.example/", record_id: str = "1",
                  warc_type: str = "response", content_type: str = "application/http; msgtype=response",
                  content_length: str | None = None, extra: tuple[str, ...] = ()) -> Iterator[bytes]:
    """A WARC/1.1 record in pieces: its header (Content-Length `size`, or `content_length` as written), the
    block's pieces, the two blank lines. A block of gigabytes can be compressed without being held."""
    lines = ["WARC/1.1", f"WARC-Type: {warc_type}",
             f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{record_id:0>12}>", "WARC-Date: 2026-01-01T00:00:00Z",
             f"WARC-Target-URI: {url}", f"Content-Type: {content_type}",
             *extra, f"Content-Length: {size if content_length is None else content_length}"]
    yield ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    yield from block
    yield b"\r\n\r\n"


def good_record() -> bytes:
    """The record every single-record file ends with; a test checks it is read intact."""
    body = b"<html><body><p>" + b"The good page after the hostile record. " * 20 + b"</p></body></html>"
    http = http_head("Content-Type: text/html; charset=utf-8", f"Content-Length: {len(body)}") + body
    return b"".join(record_pieces([http], len(http), url=GOOD_URL, record_id="900"))


@dataclass(frozen=True)
class Hostile:
    """One hostile record. `pieces()` gives its bytes uncompressed. `plain`: a plain (uncompressed) file can hold it
    with a record after it that stays readable (its framing is whole, and it is not gigabytes once uncompressed).
    `ends_file`: True when the damage is in the WARC framing itself, so reading the file stops there with a
    ReadError (warcio cannot find the next record, even in the next gzip member); None when it may."""

    name: str
    what: str
    pieces: Callable[[], Iterable[bytes]]
    plain: bool = True
    ends_file: bool | None = False

    def member(self) -> bytes:
        """The record as one gzip member, Common Crawl's layout."""
        return deflated(self.pieces())

    def file(self, compressed: bool) -> bytes:
        """The record followed by the good one, as gzip members or plain."""
        if compressed:
            return self.member() + gzip.compress(good_record(), mtime=0)
        return b"".join(self.pieces()) + good_record()


def _response(http: bytes, **kw) -> Callable[[], Iterable[bytes]]:
    return lambda: record_pieces([http], len(http), **kw)


def _streamed(head: bytes, body: Callable[[], Iterable[bytes]], size: int, **kw) -> Callable[[], Iterable[bytes]]:
    return lambda: record_pieces(_chain([head], body()), len(head) + size, **kw)


def _chain(*parts: Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield from part


def _chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


BAD_CODECS = ("punycode", "idna", "base64", "zlib", "bz2", "hex", "uu", "quopri", "rot13", "undefined",
              "unicode_escape", "raw_unicode_escape", "utf-7", "utf-16", "utf-32", "charmap", "mbcs", "x-no-such")
CONTROL = "\x1b[31m\x00\x07\u202e\u2066\x85\u2028\ufeff\x7f"  # ESC, NUL, BEL, bidi overrides, NEL, LS, BOM, DEL


def hostile_records(bomb_bytes: int = 64 << 20, seed: int = 0) -> list[Hostile]:
    """Every kind of hostile single record, the bombs inflating to `bomb_bytes`. Named cases, then seeded random
    mutations of an ordinary page (`mutations`)."""
    html = b"<html><head><title>t</title></head><body><p>" + b"price-list and words " * 40 + b"</p></body></html>"
    ct = "Content-Type: text/html; charset=utf-8"
    zeros = lambda: repeated(b"\0", bomb_bytes)  # noqa: E731
    page_bomb = lambda: repeated(b"<p>bomb</p>", bomb_bytes)  # noqa: E731
    cases: list[Hostile] = []

    for label in BAD_CODECS:
        cases.append(Hostile(f"meta-{label}", f"<meta charset={label}> on hostile bytes", _response(
            http_head(ct) + f"<meta charset={label}>".encode() + b"<p>price-list</p>\xff\xfe\x00\xd8+ADw-")))
        cases.append(Hostile(f"header-{label}", f"Content-Type charset={label}", _response(
            http_head(f"Content-Type: text/html; charset={label}") + b"<p>price-list</p>\xc3\x28\x00")))

    # Content-Encoding bombs: a small body that inflates to bomb_bytes.
    for coding, wbits in (("gzip", 31), ("x-gzip", 31), ("deflate", 15), ("deflate", -15)):
        name = f"{coding}-bomb" if wbits != -15 else "raw-deflate-bomb"
        body = deflated(page_bomb(), wbits)
        cases.append(Hostile(name, f"Content-Encoding: {coding}, {len(body)} bytes inflating to {bomb_bytes}",
                             _response(http_head(ct, f"Content-Encoding: {coding}", f"Content-Length: {len(body)}")
                                       + body)))
    try:
        import brotli
    except ImportError:
        brotli = None
    if brotli is not None:
        c = brotli.Compressor(quality=5)
        body = b"".join(c.process(piece) for piece in page_bomb()) + c.finish()
        cases.append(Hostile("br-bomb", f"Content-Encoding: br inflating to {bomb_bytes}",
                             _response(http_head(ct, "Content-Encoding: br") + body)))
    gz = deflated(page_bomb())
    cases.append(Hostile("chunked-gzip-bomb", "a gzip bomb sent in chunks", _response(
        http_head(ct, "Content-Encoding: gzip", "Transfer-Encoding: chunked")
        + b"".join(_chunked(gz[i:i + 4000] for i in range(0, len(gz), 4000))))))
    # Bombs in the WARC record's own gzip member: the block is bomb_bytes of zeros or of a page.
    head = http_head(ct, f"Content-Length: {bomb_bytes}")
    cases.append(Hostile("member-bomb", "a WARC gzip member whose body inflates to bomb_bytes of zeros",
                         _streamed(head, zeros, bomb_bytes), plain=False))
    cases.append(Hostile("member-bomb-resource", "a resource record's member inflating to bomb_bytes",
                         lambda: record_pieces(page_bomb(), bomb_bytes, warc_type="resource",
                                               content_type="text/html"), plain=False))
    cases.append(Hostile("member-bomb-no-http-head", "a response member of bomb_bytes of zeros, no HTTP head at all",
                         lambda: record_pieces(zeros(), bomb_bytes), plain=False))
    chunk_head = http_head(ct, "Transfer-Encoding: chunked") + b"%x\r\n" % bomb_bytes
    cases.append(Hostile("member-bomb-one-chunk", "one chunk of bomb_bytes in a WARC gzip member",
                         _streamed(chunk_head, lambda: _chain(page_bomb(), [b"\r\n0\r\n\r\n"]), bomb_bytes + 7),
                         plain=False))

    # Chunked bodies with bogus sizes.
    te = http_head(ct, "Transfer-Encoding: chunked")
    for name, body in (("chunk-size-huge", b"ffffffffffff\r\n<p>x</p>\r\n0\r\n\r\n"),
                       ("chunk-size-2g", b"80000000\r\n<p>only this</p>"),
                       ("chunk-size-negative", b"-5\r\n<p>x</p>\r\n0\r\n\r\n"),
                       ("chunk-size-not-hex", b"zz\r\n<p>x</p>\r\n0\r\n\r\n"),
                       ("chunk-size-line-long", b"1" * 5000 + b"\r\n<p>x</p>"),
                       ("chunk-no-terminator", b"5\r\nhelloXX6\r\n world\r\n0\r\n\r\n"),
                       ("chunk-cut", b"100\r\n<p>short</p>"),
                       ("chunks-tiny", b"".join(b"1\r\n%c\r\n" % c for c in b"<p>tiny chunks</p>" * 1000)
                        + b"0\r\n\r\n"),
                       ("chunk-trailers", b"3\r\n<p>\r\n0\r\nX-Trailer: 1\r\n\r\n")):
        cases.append(Hostile(name, f"Transfer-Encoding: chunked, {name}", _response(te + body)))

    # Broken content codings.
    gz = gzip.compress(html, mtime=0)
    for name, head_lines, body in (
            ("gzip-not-gzip", ("Content-Encoding: gzip",), html),
            ("gzip-cut", ("Content-Encoding: gzip",), gz[: len(gz) // 2]),
            ("gzip-corrupt", ("Content-Encoding: gzip",), gz[:40] + bytes(range(256)) + gz[40:]),
            ("gzip-twice", ("Content-Encoding: gzip, gzip",), gzip.compress(gz, mtime=0)),
            ("gzip-members", ("Content-Encoding: gzip",), gz + gz),
            ("br-not-br", ("Content-Encoding: br",), html),
            ("deflate-empty", ("Content-Encoding: deflate",), b"")):
        cases.append(Hostile(name, f"{' '.join(head_lines)}: {name}", _response(http_head(ct, *head_lines) + body)))

    # Control, escape and bidi characters where a terminal, a log or a report would show them.
    cases.append(Hostile("control-uri", "ESC, NUL and bidi characters in WARC-Target-URI",
                         _response(http_head(ct) + html, url=f"https://hostile.example/{CONTROL}")))
    cases.append(Hostile("control-content-type", "control characters in the HTTP and WARC Content-Type",
                         _response(http_head(f"Content-Type: text/html{CONTROL}; charset=utf-8{CONTROL}") + html,
                                   content_type=f"application/http{CONTROL}; msgtype=response")))
    cases.append(Hostile("control-text", "control characters in the page text",
                         _response(http_head(ct) + f"<p>{CONTROL * 50}</p>".encode() + html)))
    cases.append(Hostile("nul-everywhere", "NUL bytes in the HTTP head and the body",
                         _response(b"HTTP/1.1 200 OK\x00\r\nContent-Type: text/html\x00\r\nX\x00: \x00\r\n\r\n"
                                   + b"\x00" * 5000 + html + b"\x00" * 5000)))

    # Huge headers.
    cases.append(Hostile("http-header-line-1mb", "a 1 MB HTTP header line",
                         _response(http_head(ct, "X-Big: " + "a" * 1_000_000) + html)))
    cases.append(Hostile("http-header-many", "100,000 HTTP header lines",
                         _response(http_head(ct, *[f"X-{i}: v" for i in range(100_000)]) + html)))
    cases.append(Hostile("http-head-endless", "an HTTP head of 8 MB without a blank line",
                         _response(http_head(ct)[:-2] + b"X: y\r\n" * ((8 << 20) // 6))))
    cases.append(Hostile("warc-header-line-1mb", "a 1 MB WARC header line", lambda: record_pieces(
        [http_head(ct) + html], len(http_head(ct) + html), extra=("X-Big: " + "b" * 1_000_000,))))
    cases.append(Hostile("warc-header-endless", "a WARC header of 64 MB of lines in one gzip member",
                         lambda: _chain([b"WARC/1.1\r\nWARC-Type: response\r\n"], repeated(b"X: y\r\n", 64 << 20)),
                         plain=False, ends_file=True))
    cases.append(Hostile("warc-blank-lines", "64 MB of blank lines after a record, in its gzip member",
                         lambda: _chain(record_pieces([http_head(ct) + html], len(http_head(ct) + html)),
                                        repeated(b"\r\n", 64 << 20)), plain=False, ends_file=True))

    # Empty and cut records.
    cases.append(Hostile("empty-block", "Content-Length: 0", lambda: record_pieces([], 0)))
    cases.append(Hostile("empty-body", "an HTTP head and no body", _response(http_head(ct))))
    cases.append(Hostile("blank-body", "a body of whitespace", _response(http_head(ct) + b" \r\n\t" * 100)))
    cases.append(Hostile("no-http-head", "a response whose block is a bare page", _response(html)))
    cases.append(Hostile("status-garbage", "a status line that is not one", _response(
        http_head(ct, status="HTTP/1.1 2OO OK\x1b[0m") + html)))
    partial = http_head(ct, "X-More: 1")[:30]
    cases.append(Hostile("cut-in-http-head", "the member ends inside the HTTP head",
                         lambda: record_pieces([partial], len(partial) + 500), plain=False))
    cases.append(Hostile("length-beyond-file", "Content-Length 10^12 in a small member", lambda: record_pieces(
        [http_head(ct) + html], 0, content_length=str(10**12)), plain=False))
    # warcio reads a record whose Content-Length is not a number as empty, then its block as the next header.
    cases.append(Hostile("length-not-a-number", "Content-Length: lots", lambda: record_pieces(
        [http_head(ct) + html], 0, content_length="lots"), plain=False, ends_file=True))
    cases.append(Hostile("length-negative", "Content-Length: -5", lambda: record_pieces(
        [http_head(ct) + html], 0, content_length="-5"), plain=False, ends_file=True))
    cases.append(Hostile("length-superscript", "Content-Length: ² (a digit to str.isdigit, not to int)",
                         lambda: record_pieces([http_head(ct) + html], 0, content_length="\u00b2"), plain=False,
                         ends_file=None))
    cases += mutations(random.Random(seed), http_head(ct) + html)
    return cases


def _mutate(rng: random.Random, data: bytes) -> bytes:
    """One random change: bytes flipped, inserted, deleted or repeated, the data cut, or a control byte put in."""
    data = bytearray(data)
    at = rng.randrange(len(data) + 1)
    kind = rng.randrange(6)
    if kind == 0 and data:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
    elif kind == 1:
        data[at:at] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
    elif kind == 2:
        del data[at : at + rng.randint(1, 200)]
    elif kind == 3:
        data[at:at] = data[at : at + rng.randint(1, 300)] * rng.randint(2, 50)
    elif kind == 4:
        del data[at:]
    else:
        data[at:at] = rng.choice([b"\x00", b"\x1b[2J", b"\r", b"\n", b"\r\n\r\n", b"\xff", b"\xe2\x80\xae", b":"])
    return bytes(data)


def mutations(rng: random.Random, http: bytes, n: int = 40) -> list[Hostile]:
    """Seeded random mutations of an HTTP message (plain, chunked and gzip-encoded) inside a record whose
    Content-Length stays true (hostile content, whole framing), and n // 4 more whose Content-Length is mutated
    too (hostile framing: the file may end there)."""
    head, _, body = http.partition(b"\r\n\r\n")
    variants = [http, head + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(_chunked([body[:100], body[100:]])),
                head + b"\r\nContent-Encoding: gzip\r\n\r\n" + gzip.compress(body, mtime=0)]
    cases = []
    for i in range(n):
        data = rng.choice(variants)
        for _ in range(rng.randint(1, 4)):
            data = _mutate(rng, data)
        cases.append(Hostile(f"mutated-{i}", "a random mutation of an ordinary response", _response(data)))
    for i in range(n // 4):
        data = _mutate(rng, rng.choice(variants))
        length = str(rng.choice([0, 1, len(data) // 2, len(data) - 1, len(data) + 1, len(data) * 3, 2**63]))
        cases.append(Hostile(f"mutated-length-{i}", f"a random mutation with Content-Length {length}",
                             lambda data=data, length=length: record_pieces([data], 0, content_length=length),
                             plain=False, ends_file=None))
    return cases


def generate_single(out: str, bomb_bytes: int = 64 << 20, seed: int = 0) -> dict[str, str]:
    """One file per hostile record and layout (gzip members, plain), the good record after it."""
    os.makedirs(out, exist_ok=True)
    made = {}
    for case in hostile_records(bomb_bytes, seed):
        for compressed in (True, False) if case.plain else (True,):
            name = f"single-{case.name}.warc" + (".gz" if compressed else "")
            with open(os.path.join(out, name), "wb") as f:
                f.write(case.file(compressed))
            made[name] = case.what
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--big-mb", type=int, default=12)
    ap.add_argument("--single", action="store_true", help="one file per hostile single record instead")
    ap.add_argument("--bomb-mb", type=int, default=64)
    args = ap.parse_args()
    made = (generate_single(args.out, args.bomb_mb << 20, args.seed) if args.single
            else generate(args.out, args.seed, args.big_mb))
    for name, what in made.items():
        print(f"{name}: {what}")


if __name__ == "__main__":
    main()
