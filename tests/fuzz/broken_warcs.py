"""A seeded generator of hostile WARC files: what a crawl segment throws at a pipeline every day.

    python -m tests.fuzz.broken_warcs OUT_DIR [--seed 0] [--big-mb 12]

Every file mixes ordinary pages with one kind of damage, so a test can check that the damage is contained.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--big-mb", type=int, default=12)
    args = ap.parse_args()
    for name, what in generate(args.out, args.seed, args.big_mb).items():
        print(f"{name}: {what}")


if __name__ == "__main__":
    main()
