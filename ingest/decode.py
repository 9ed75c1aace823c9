"""Bytes to str: the HTTP header's charset, then the page's <meta> charset, then detection.

Declared charsets lie often enough (a page saying latin-1 that is UTF-8) that a declared charset is only
trusted when it decodes the body without errors; detection (charset-normalizer) is the last, slowest resort.
A declared name is only taken when it is a page encoding: Python also knows codecs such as base64, zlib,
rot13 or punycode, which a hostile page can name too (see `_NOT_PAGE_ENCODINGS`).
"""

from __future__ import annotations

import codecs
import functools
import re

from charset_normalizer import from_bytes

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.IGNORECASE)
# WHATWG maps these labels to supersets; decoding with the superset is what browsers do.
_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252",
            "ascii": "cp1252", "gb2312": "gb18030", "gbk": "gb18030", "x-sjis": "shift_jis"}
# Codecs Python knows that decode bytes to str and yet are not a page's encoding, by codecs.lookup name. The
# bytes-to-bytes and str-to-str codecs (base64, bz2, hex, quopri, uu, zlib, rot13) are refused by
# `_is_page_encoding` without a list: decoding bytes with them does not give a str.
_NOT_PAGE_ENCODINGS = {
    "punycode": "the ASCII form of a Unicode host name, not a page's bytes",
    "idna": "host names too (punycode per label)",
    "unicode-escape": "Python string-literal escapes ('\\x41'), not a character encoding",
    "raw-unicode-escape": "the same, for raw literals",
    "undefined": "raises on any input, by design",
    "utf-7": "the WHATWG Encoding Standard has no label for it (browsers never decode a page with it): its "
             "+ADw- forms hide markup from filters",
    "charmap": "Python's table-driven codec machinery, latin-1 without a table: no page's charset",
    "mbcs": "Windows' current ANSI code page: the machine's setting, not the page's",
    "oem": "Windows' current OEM code page, the same",
}
_UTF16_32 = {"utf-16", "utf-16-be", "utf-16-le", "utf-32", "utf-32-be", "utf-32-le"}


@functools.lru_cache(maxsize=512)
def _is_page_encoding(name: str) -> bool:
    """Whether the codec `name` (a codecs.lookup name) maps a page's bytes to characters."""
    if name in _NOT_PAGE_ENCODINGS:
        return False
    try:
        # A text encoding decodes bytes to str; the others return bytes or raise (rot13 wants a str). Said by
        # trying it on no bytes rather than by the codec's private _is_text_encoding flag.
        return isinstance(codecs.lookup(name).decode(b"")[0], str)
    except Exception:  # noqa: BLE001 - a codec that cannot even decode nothing is no page encoding
        return False


def _codec(label: str) -> str | None:
    label = label.strip().lower()
    label = _ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return name if _is_page_encoding(name) else None


def declared_charsets(body: bytes, content_type: str) -> list[str]:
    """Codec names declared by the HTTP header and the first <meta> charset, in that order, de-duplicated;
    a label Python does not know, or that names no page encoding, is left out."""
    found: list[str] = []
    m = _HEADER_CHARSET.search(content_type or "")
    if m and (c := _codec(m.group(1))):
        found.append(c)
    m = _META_CHARSET.search(body[:4096])
    if m and (c := _codec(m.group(1).decode("ascii", "ignore"))):
        # A <meta> found by matching ASCII bytes proves the page is not UTF-16/32, whatever it says; the HTML
        # standard reads such a declaration as UTF-8, and so does this.
        c = "utf-8" if c in _UTF16_32 else c
        if c not in found:
            found.append(c)
    return found


def _decode(body: bytes, codec: str, errors: str = "strict") -> str | None:
    """`body` decoded with `codec`, or None when it does not decode."""
    try:
        return body.decode(codec, errors)
    # Not only UnicodeDecodeError: a codec may raise anything on hostile bytes (UnicodeError, ValueError, a
    # LookupError for a name detection returned), and one page must never end the run.
    except Exception:  # noqa: BLE001
        return None


def decode_body(body: bytes, content_type: str) -> tuple[str, str]:
    """Return (text, codec used). Never raises, whatever the bytes and whatever codec the header or a <meta>
    names: a declared page encoding is used when it decodes the body without errors, then strict UTF-8, then
    the encoding detection guesses (errors replaced), and the last resort is UTF-8 with replacement
    characters ("utf-8-replace")."""
    for codec in declared_charsets(body, content_type):
        if (text := _decode(body, codec)) is not None:
            return text, codec
    if (text := _decode(body, "utf-8")) is not None:
        return text, "utf-8"
    try:
        best = from_bytes(body[:65536]).best()
    except Exception:  # noqa: BLE001 - detection failing on hostile bytes leaves the last resort below
        best = None
    encoding = best.encoding if best is not None else None
    if encoding and _codec(encoding) and (text := _decode(body, encoding, "replace")) is not None:
        return text, encoding
    return body.decode("utf-8", errors="replace"), "utf-8-replace"
