"""Bytes to str: the HTTP header's charset, then the page's <meta> charset, then detection.

Declared charsets lie often enough (a page saying latin-1 that is UTF-8) that a declared charset is only
trusted when it decodes the body without errors; detection (charset-normalizer) is the last, slowest resort.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.IGNORECASE)
# WHATWG maps these labels to supersets; decoding with the superset is what browsers do.
_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252",
            "ascii": "cp1252", "gb2312": "gb18030", "gbk": "gb18030", "x-sjis": "shift_jis"}


def _codec(label: str) -> str | None:
    label = label.strip().lower()
    label = _ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def declared_charsets(body: bytes, content_type: str) -> list[str]:
    """Codec names declared by the HTTP header and the first <meta> charset, in that order, de-duplicated."""
    found: list[str] = []
    m = _HEADER_CHARSET.search(content_type or "")
    if m and (c := _codec(m.group(1))):
        found.append(c)
    m = _META_CHARSET.search(body[:4096])
    if m and (c := _codec(m.group(1).decode("ascii", "ignore"))) and c not in found:
        found.append(c)
    return found


def decode_body(body: bytes, content_type: str) -> tuple[str, str]:
    """Return (text, codec used). Never raises: the last resort is UTF-8 with replacement characters."""
    for codec in declared_charsets(body, content_type):
        try:
            return body.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            continue
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(body[:65536]).best()
    if best is not None and best.encoding:
        try:
            return body.decode(best.encoding, errors="replace"), best.encoding
        except LookupError:
            pass
    return body.decode("utf-8", errors="replace"), "utf-8-replace"
