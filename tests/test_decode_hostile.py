"""decode_body never raises: every codec name Python knows, declared in a <meta> tag or in the HTTP header,
over hostile bytes. A page naming `punycode` used to raise UnicodeError out of decode_body and end the run."""

from __future__ import annotations

import encodings.aliases
import random

from ingest.decode import declared_charsets, decode_body

# Codecs that are no page encoding: bytes-to-bytes, str-to-str, host-name and escape codecs, and the rest.
NOT_PAGE_ENCODINGS = ["base64_codec", "base64", "bz2_codec", "bz2", "hex_codec", "hex", "quopri_codec", "quopri",
                      "rot_13", "rot13", "uu_codec", "uu", "zlib_codec", "zlib", "zip", "punycode", "idna",
                      "undefined", "unicode_escape", "raw_unicode_escape", "utf_7", "utf-7", "mbcs", "oem", "charmap",
                      "unicode_internal", "string_escape", "no-such-codec", "."]
LABELS = sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values()) | set(NOT_PAGE_ENCODINGS))

_rng = random.Random(32)
HOSTILE_BODIES = [
    b"",
    b"\x00" * 512,
    b"<p>price-list</p>",  # the page that stopped a run (with charset=punycode)
    b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\x28",  # invalid UTF-8
    "\ud800 \udfff".encode("utf-8", "surrogatepass"),  # lone surrogates, UTF-8 encoded
    b"\x00\xd8a\x00\x00\xdc",  # lone surrogates, UTF-16-LE encoded
    b"\xff" * 4096,
    b"\xfe\xff\x00",  # a BOM and half a character
    "日本語".encode()[:-1] + b"<p>" + "日本".encode("shift_jis")[:-1],  # truncated multi-byte sequences
    b"+ADw-script+AD4-alert(1)+ADw-/script+AD4-",  # UTF-7 markup
    b"\\x41\\u12\\N{", b"xn--80ak6aa92e", b"begin 644 x\n", b"=\n=4",  # what escape, punycode, uu, quopri parse
    b"<meta " * 150,  # meta tags that never close
    b"<meta http-equiv=a content='" + b"x" * 100_000 + b"'>",  # a huge meta tag
    bytes(_rng.getrandbits(8) for _ in range(3000)),
]


def _bodies(label: str):
    tag = f"<meta charset={label}>".encode()
    for body in HOSTILE_BODIES:
        yield body, "text/html"
        yield tag + body, "text/html"
        yield body, f"text/html; charset={label}"
        yield body, f'text/html; charset="{label}"'


def test_decode_body_never_raises_whatever_codec_is_declared():
    for label in LABELS:
        for body, content_type in _bodies(label):
            text, codec = decode_body(body, content_type)
            assert isinstance(text, str) and isinstance(codec, str), (label, body[:40], content_type)


def test_only_page_encodings_are_taken_as_declared():
    for label in NOT_PAGE_ENCODINGS:
        assert declared_charsets(f"<meta charset={label}>".encode(), f"text/html; charset={label}") == [], label
    assert decode_body(b"<meta charset=punycode><p>price-list</p>", "text/html") == (
        "<meta charset=punycode><p>price-list</p>", "utf-8")
    assert decode_body(b"<p>SGVsbG8=</p>", "text/html; charset=base64") == ("<p>SGVsbG8=</p>", "utf-8")
    # real encodings are still taken, by any of their names
    assert declared_charsets(b"<meta charset=koi8_r>", "text/html; charset=Shift-JIS") == ["shift_jis", "koi8-r"]
    # a <meta> read as ASCII is no UTF-16 page, whatever it says (read as UTF-8, as the HTML standard does)
    assert declared_charsets(b"<meta charset=utf-16le><p>x</p>", "text/html") == ["utf-8"]
    assert declared_charsets(b"", "text/html; charset=utf-16") == ["utf-16"]
