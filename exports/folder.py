"""The export folder: how it is built and resumed, its manifest, and `tokenmill verify` of it.

    DIR/manifest.json   kind "export": the format, what was exported (path, kind, the sha256 of its
                        manifest), the tokenizer, every file's path, bytes, sha256, documents and tokens
    DIR/...             the format's files (exports/megatron.py, mds.py, litdata_chunks.py, hf.py)

Locally the folder is built beside DIR (`DIR.tmp-export`) and renamed into place when complete, as a release
is; on object storage it is written in place and manifest.json, written last, marks it complete. Either way
each finished part leaves a small record under `.progress/` (its files' sha256 and sizes) as it finishes, so
an export that is stopped (a killed job, a lost machine) and started again with the same source, format,
options and tokenmill version writes only the parts without an intact record; manifest.json is written, then
the records go (exports/run.py).
"""

from __future__ import annotations

import json
import os
import shutil

from release.publish import file_sha256, files_under
from storage.files import exists, filesystems, is_local, join, match, read_bytes, write_bytes
from storage.folders import holds_files
from storage.paths import UnsafePathError, check_entries

EXPORT_KIND = "export"
PROGRESS = ".progress"


def build_path(target: str) -> str:
    """Where the export is written before it is complete: beside `target` locally, `target` on a store."""
    return f"{target}.tmp-export" if is_local(target) else target


def export_manifest(path: str) -> dict | None:
    """The manifest of the export folder at `path`; None when it is no export folder."""
    manifest = join(path.rstrip("/"), "manifest.json")
    if not exists(manifest):
        return None
    data = json.loads(read_bytes(manifest))
    return data if isinstance(data, dict) and data.get("kind") == EXPORT_KIND else None


class Progress:
    """The `.progress/` records of an export being built in `build`: `identity` names the export (source,
    format, options); a record per finished part holds its file entries."""

    def __init__(self, build: str, identity: dict) -> None:
        self.build, self.identity = build, identity
        self.folder = join(build, PROGRESS)

    def start(self) -> dict[int, list[dict]]:
        """Begin, or resume: the entries of the parts an earlier attempt of the same export finished, each
        record readable and its files still there with the recorded sizes and sha256 (read again: a file cut
        short by a lost machine is written again). Anything else in a local build folder is cleared; on a
        store, a target holding anything but this export's own records was refused before (refuse_target)."""
        ident = join(self.folder, "export.json")
        if _json_or_none(ident) != self.identity:
            if is_local(self.build):
                shutil.rmtree(self.build, ignore_errors=True)
            _write_whole(ident, json.dumps(self.identity, sort_keys=True).encode())
            return {}
        present = dict(files_under(self.build))
        done = {}
        for path, _size in match(join(self.folder, "part-*.json")):
            record = _json_or_none(path)
            try:
                part, entries = int(record["part"]), list(record["files"])
                intact = all(present.get(e["path"]) == e["bytes"]
                             and file_sha256(join(self.build, e["path"])) == e["sha256"] for e in entries)
            except (TypeError, KeyError, ValueError):
                continue  # a record cut short: its part is written again
            if intact:
                done[part] = entries
        return done

    def finished(self, part: int, entries: list[dict]) -> None:
        _write_whole(join(self.folder, f"part-{part:06d}.json"),
                     json.dumps({"part": part, "files": entries}, sort_keys=True).encode())

    def clear(self) -> None:
        if is_local(self.build):
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        paths = [p for p, _ in match(join(self.folder, "*"))]
        if paths:
            filesystems().delete(paths)


def _json_or_none(path: str):
    """The JSON at `path`; None when it is missing or not JSON (a record cut short by a stop)."""
    try:
        return json.loads(read_bytes(path)) if exists(path) else None
    except (ValueError, UnicodeDecodeError):
        return None


def _write_whole(path: str, data: bytes) -> None:
    """A file that is there whole or not at all: locally written beside and renamed; on an object store an
    object appears only when its upload completes."""
    if not is_local(path):
        write_bytes(path, data)
        return
    write_bytes(f"{path}.tmp", data)
    os.replace(f"{path}.tmp", path)


def refuse_target(target: str, identity: dict) -> str | None:
    """Why `target` cannot take this export (None when it can): it must be new or empty, or on a store hold
    only an unfinished attempt of this same export."""
    if export_manifest(target) is not None or holds_files(target) and is_local(target):
        return f"{target} is not empty: an export is written into a new folder"
    if not is_local(target) and holds_files(target):
        ident = join(target, PROGRESS, "export.json")
        if not exists(ident) or json.loads(read_bytes(ident)) != identity:
            return f"{target} is not empty: an export is written into a new folder"
    return None


def verify_export(path: str, manifest: dict) -> list[str]:
    """Problems of an export folder (empty when intact): every listed file's size and sha256, and every file
    the manifest does not list."""
    path = path.rstrip("/")
    try:
        check_entries(manifest.get("files") or [], f"{path}/manifest.json files")
    except UnsafePathError as exc:
        return [str(exc)]
    from release.publish import in_parallel

    problems = []
    listed = {e["path"] for e in manifest["files"]} | {"manifest.json"}
    present = dict(files_under(path))
    for rel in sorted(set(present) - listed):
        problems.append(f"{rel}: not listed in the manifest")

    def check(entry: dict) -> list[str]:
        if entry["path"] not in present:
            return [f"{entry['path']}: missing"]
        if present[entry["path"]] != entry["bytes"]:
            return [f"{entry['path']}: size {present[entry['path']]} != {entry['bytes']}"]
        if file_sha256(join(path, entry["path"])) != entry["sha256"]:
            return [f"{entry['path']}: sha256 mismatch"]
        return []

    for found in in_parallel(check, manifest["files"]):
        problems += found
    return problems
