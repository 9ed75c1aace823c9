"""`tokenmill export`: a release or a mixture in a training stack's own format, streamed part by part.

Order of work: the source is opened and verified, the format's checks pass (the tokenizer's vocabulary fits
the format's dtype, the target is empty), and only then is anything written, so a refused export leaves
nothing behind. Parts (one source shard each) are written `threads` at a time; each holds one row group in
memory at a time, so memory is flat in the release's size. Each finished part is recorded (exports/folder.py:
Progress), so a stopped export resumes where it was; manifest.json, with every file's sha256, is written
last, and `tokenmill verify DIR` checks it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from exports import hf, litdata_chunks, mds, megatron
from exports.folder import EXPORT_KIND, Progress, build_path, export_manifest, refuse_target, verify_export
from exports.sources import ExportError, ExportSource, open_export_source
from outputs.run_files import tokenmill_version
from release.publish import THREADS, ReleaseError, created_time, in_parallel
from storage.files import is_local, join, write_bytes
from storage.folders import holds_files, into_place

FORMATS = ("megatron", "hf", "mds", "litdata")


def vocabulary_size(tokenizer: dict) -> int:
    """The release's tokenizer's vocabulary size, the tokenizer checked against the vocabulary hash the
    release recorded (a tokenizer.json changed since would give another size)."""
    from tokenization.tokenizers import vocabulary

    name = tokenizer["name"]
    try:
        vocab_sha256, size = vocabulary(name)
    except Exception as exc:  # noqa: BLE001 - tokenizers raises its own exception types for a bad tokenizer.json
        raise ExportError(f"the release's tokenizer {name!r} cannot be loaded to learn its vocabulary size: "
                          f"{exc}") from None
    if vocab_sha256 != tokenizer["vocab_sha256"]:
        raise ExportError(f"the tokenizer {name!r} is not the one the release was tokenized with (its "
                          "vocabulary hash differs from the manifest's)")
    return size


def token_dtype(fmt: str, tokenizer: dict, dtype: str) -> np.dtype:
    """The dtype the format stores ids in; ExportError when the vocabulary does not fit it. Only Megatron
    picks its dtype by the vocabulary; the others store int32, which each part checks its ids against
    (`exports/sources.py: flat_tokens`), so they need no tokenizer at export time."""
    if fmt != "megatron":
        if dtype != "auto":
            raise ExportError(f"--dtype is for --format megatron; {fmt} stores int32 ids")
        return np.dtype(np.int32)
    vocab = vocabulary_size(tokenizer)
    chosen = megatron.megatron_dtype(vocab) if dtype == "auto" else np.dtype(dtype)
    if vocab - 1 > np.iinfo(chosen).max:
        raise ExportError(f"the tokenizer's {vocab:,} ids do not fit {fmt}'s {chosen} (largest id "
                          f"{np.iinfo(chosen).max:,}): nothing written")
    return chosen


def _write_part(fmt: str, src: ExportSource, part, build: str, ids: np.dtype) -> list[dict]:
    if fmt == "megatron":
        return megatron.write_part(src, part, build, ids)
    if fmt == "mds":
        return mds.write_part(src, part, build)
    if fmt == "litdata":
        return litdata_chunks.write_part(src, part, build)
    return hf.write_part(src, part, build)


def _index_files(fmt: str, src: ExportSource, files: list[dict], target: str, license_id: str | None
                 ) -> dict[str, bytes]:
    if fmt == "megatron":
        return megatron.blend_files(src, files, target)
    if fmt == "mds":
        return mds.finish(src, files, target)
    if fmt == "litdata":
        return litdata_chunks.finish(src, files, target)
    return {"README.md": hf.card(src, files, license_id).encode("utf-8")}


def export(path: str, fmt: str, target: str, *, dtype: str = "auto", license_id: str | None = None,
           threads: int = THREADS, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Export the release or mixture at `path` to `target` in `fmt`. Raises ExportError (one line) before
    writing anything when it cannot be done, and (one line, naming the part) when a part fails on the way;
    the same call again then resumes. Returns the export's manifest."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    target = target.rstrip("/")
    if is_local(target):
        target = os.path.abspath(target)
    try:
        created = created_time()
    except ReleaseError as exc:
        raise ExportError(str(exc)) from None
    # What costs nothing is refused before the source is verified (a sha256 of every shard).
    if fmt == "megatron" and any(c.isspace() for c in target):
        raise ExportError(f"{target!r}: Megatron's --data-path splits on whitespace; export to a path without it")
    if fmt != "megatron" and dtype != "auto":
        raise ExportError(f"--dtype is for --format megatron; {fmt} stores int32 ids")
    if is_local(target) and holds_files(target) and export_manifest(target) is None:
        raise ExportError(f"{target} is not empty: an export is written into a new folder")
    src = open_export_source(path)
    ids = token_dtype(fmt, src.tokenizer, dtype)
    identity = {"format": fmt, "source": src.path, "source_manifest_sha256": src.manifest_sha256,
                "dtype": str(ids), "license": license_id, "tokenmill_version": tokenmill_version()}
    existing = export_manifest(target)
    if existing is not None:
        if existing.get("identity") != identity:
            raise ExportError(f"{target} already holds another export: an export is written into a new folder")
        problems = verify_export(target, existing)
        if problems:
            raise ExportError(f"{target}: the export there is damaged: {problems[0]}")
        Progress(target, identity).clear()  # a stop between the manifest and the records' removal
        log(f"  {target} already holds this export (verified), nothing written")
        return existing
    why = refuse_target(target, identity)
    if why:
        raise ExportError(why)
    build = build_path(target)
    progress = Progress(build, identity)
    done = progress.start()
    parts = src.parts
    if done:
        log(f"  resuming: {len(done)} of {len(parts)} parts already written")

    def one(i: int) -> tuple[int, list[dict]]:
        try:
            entries = _write_part(fmt, src, parts[i], build, ids)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise ExportError(f"{parts[i].path}: {exc}; the parts written so far are kept: the same command "
                              "again resumes") from None
        progress.finished(i, entries)  # as each part finishes, whatever the others are doing
        return i, entries

    for i, entries in in_parallel(one, [i for i in range(len(parts)) if i not in done], threads):
        done[i] = entries
    files = [e for i in sorted(done) for e in done[i]]
    for rel, data in _index_files(fmt, src, files, target, license_id).items():
        write_bytes(join(build, rel), data)
        files.append({"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    manifest = _manifest(src, fmt, ids, license_id, files, created) | {"identity": identity}
    # The manifest first, then the records go: a stop between the two leaves a complete export, which the
    # same call again verifies and tidies (above); locally the rename then shows it whole.
    write_bytes(join(build, "manifest.json"), json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    progress.clear()
    into_place(build, target)
    return manifest


def _manifest(src: ExportSource, fmt: str, ids: np.dtype, license_id: str | None, files: list[dict],
              created: str) -> dict:
    data = [f for f in files if "documents" in f]
    return {
        "kind": EXPORT_KIND, "format": fmt, "created": created, "tokenmill_version": tokenmill_version(),
        "source": {"kind": src.kind, "path": src.path, "name": src.name, "version": src.version,
                   "manifest_sha256": src.manifest_sha256},
        "sources": [{"label": s.label, "path": s.path, "name": s.name, "manifest_sha256": s.manifest_sha256,
                     "weight": s.weight, "where": s.where,
                     "repeat_by_cluster_size": {str(k): v for k, v in s.repeat} or None} for s in src.sources],
        "tokenizer": src.tokenizer, "dtype": str(ids), "license": license_id,
        "totals": {"documents": sum(f["documents"] for f in data), "tokens": sum(f["tokens"] for f in data)},
        "files": [{k: v for k, v in f.items() if k not in ("languages", "mds", "litdata")} for f in files],
    }
