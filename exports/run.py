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

from exports import hf, litdata_chunks, mds, megatron
from exports.folder import EXPORT_KIND, Progress, build_path, into_place, refuse_target
from exports.sources import ExportError, ExportSource, open_export_source
from outputs.run_files import tokenmill_version
from release.publish import THREADS, created_time, in_parallel
from storage.files import is_local, join, write_bytes

FORMATS = ("megatron", "hf", "mds", "litdata")
MEGATRON_DTYPES = ("auto", "uint16", "int32")


def vocabulary_size(tokenizer: dict) -> int:
    from tokenization.tokenizers import vocabulary_size as size

    try:
        return size(tokenizer["name"])
    except (ValueError, OSError) as exc:
        raise ExportError(f"the release's tokenizer {tokenizer['name']!r} cannot be loaded to learn its "
                          f"vocabulary size: {exc}") from None


def token_dtype(fmt: str, vocab: int, dtype: str) -> np.dtype:
    """The dtype the format stores ids in; ExportError when the vocabulary does not fit it."""
    if fmt == "megatron":
        chosen = megatron.megatron_dtype(vocab) if dtype == "auto" else np.dtype(dtype)
    else:
        if dtype != "auto":
            raise ExportError(f"--dtype is for --format megatron; {fmt} stores int32 ids")
        chosen = np.dtype(np.int32)
    if vocab - 1 > np.iinfo(chosen).max:
        raise ExportError(f"the tokenizer's {vocab:,} ids do not fit {fmt}'s {chosen} (largest id "
                          f"{np.iinfo(chosen).max:,}): nothing written")
    return chosen


def export(path: str, fmt: str, target: str, *, dtype: str = "auto", license_id: str | None = None,
           threads: int = THREADS, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Export the release or mixture at `path` to `target` in `fmt`. Raises ExportError (one line) before
    writing anything when it cannot be done. Returns the export's manifest."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    target = target.rstrip("/")
    if is_local(target):
        target = os.path.abspath(target)
    src = open_export_source(path)
    vocab = vocabulary_size(src.tokenizer)
    ids = token_dtype(fmt, vocab, dtype)
    if fmt == "megatron" and any(c.isspace() for c in target):
        raise ExportError(f"{target!r}: Megatron's --data-path splits on whitespace; export to a path without it")
    identity = {"format": fmt, "source": src.path, "source_manifest_sha256": src.manifest_sha256,
                "dtype": str(ids), "license": license_id}
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
        part = parts[i]
        if fmt == "megatron":
            return i, megatron.write_part(src, part, build, ids)
        if fmt == "mds":
            return i, mds.write_part(src, part, build)
        if fmt == "litdata":
            return i, litdata_chunks.write_part(src, part, build)
        return i, hf.write_part(src, part, build)

    for i, entries in in_parallel(one, [i for i in range(len(parts)) if i not in done], threads):
        progress.finished(i, entries)
        done[i] = entries
    files = [e for i in sorted(done) for e in done[i]]
    if fmt == "megatron":
        extra = megatron.blend_files(src, files, target)
    elif fmt == "mds":
        extra = mds.finish(src, files, target)
    elif fmt == "litdata":
        extra = litdata_chunks.finish(src, files, target)
    else:
        extra = {"README.md": hf.card(src, files, license_id).encode("utf-8")}
    for rel, data in extra.items():
        write_bytes(join(build, rel), data)
        files.append({"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    progress.clear()
    manifest = _manifest(src, fmt, ids, license_id, files)
    write_bytes(join(build, "manifest.json"), json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    into_place(build, target)
    return manifest


def _manifest(src: ExportSource, fmt: str, ids: np.dtype, license_id: str | None, files: list[dict]) -> dict:
    data = [f for f in files if "documents" in f]
    return {
        "kind": EXPORT_KIND, "format": fmt, "created": created_time(), "tokenmill_version": tokenmill_version(),
        "source": {"kind": src.kind, "path": src.path, "name": src.name, "version": src.version,
                   "manifest_sha256": src.manifest_sha256},
        "sources": [{"label": s.label, "path": s.path, "name": s.name, "manifest_sha256": s.manifest_sha256,
                     "weight": s.weight, "where": s.where,
                     "repeat_by_cluster_size": {str(k): v for k, v in s.repeat} or None} for s in src.sources],
        "tokenizer": src.tokenizer, "dtype": str(ids), "license": license_id,
        "totals": {"documents": sum(f["documents"] for f in data), "tokens": sum(f["tokens"] for f in data)},
        "files": [{k: v for k, v in f.items() if k not in ("languages", "mds", "litdata")} for f in files],
    }
