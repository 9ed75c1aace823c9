"""The file paths a manifest or a plan lists, checked before anything is copied or read by them.

A run's manifest.json lists its shards, ledger and dedup index parts, a release's its files, a mixture's its plan
files and each source's shard files, all as paths relative to their folder. A tampered or hand-written manifest
could list `../escape.parquet`, `/etc/passwd`, `s3://other/x` or `shards/../../x`: `tokenmill release` would copy
it to outside its target, a reader would read outside its folder. `inside` refuses any path that is not a plain
relative path below the folder, in one line naming the entry as a terminal shows it (console.safe.shown).
"""

from __future__ import annotations

import re

from console.safe import shown

# `scheme:` at the start: a URL (s3://, file:, gs://) or a drive (C:).
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class UnsafePathError(ValueError):
    """A manifest lists a path that is absolute, has a scheme or leaves its folder."""


def unsafe_reason(path: object) -> str | None:
    """Why `path` is not a plain relative path below its folder ('/'-separated, no '.', '..' or empty parts, no
    scheme, backslash or control character), or None when it is one."""
    if not isinstance(path, str) or not path:
        return "is not a path"
    if path.startswith("/"):
        return "is absolute"
    if _SCHEME.match(path):
        return "has a scheme (a URL or a drive)"
    if "\\" in path:
        return "holds a backslash"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in path):
        return "holds a control character"
    parts = path.split("/")
    if ".." in parts:
        return "leaves the folder ('..')"
    if any(p in ("", ".") for p in parts):
        return "has an empty or '.' part"
    return None


def inside(path: object, where: str) -> str:
    """`path` itself when it is a plain relative path inside its folder; otherwise UnsafePathError naming
    `where` (the manifest and the entry's place in it) and the path, escaped for a terminal."""
    reason = unsafe_reason(path)
    if reason is not None:
        raise UnsafePathError(f"{shown(where)}: path {shown(repr(path))} {reason}; refused, nothing read or "
                              "written by it")
    return path


def check_entries(entries: list, where: str) -> None:
    """`inside` for the 'path' of every entry of a manifest's list ({path, bytes, sha256, ...})."""
    for i, entry in enumerate(entries):
        inside(entry.get("path") if isinstance(entry, dict) else None, f"{where}[{i}]")
