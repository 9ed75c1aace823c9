"""`tokenmill release` and `tokenmill verify`: an immutable, checksummed copy of a run's shards and dedup index.

A release directory holds shards/, dedup_index/ (what a later run deduplicates against: release/against.py),
manifest.json (every file's sha256 and size, rows, tokens, tokenizer and vocabulary hash, the doc id scheme
(`doc_id`), recipe and its hash, inputs, the releases the run was deduplicated against, tokenmill version,
creation time) and README.md (a dataset card). Releasing into a directory that holds a different release is
refused; releasing the same run again is a no-op check.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pyarrow.parquet as pq

from outputs.reading import open_run
from outputs.run_files import FIX_AND_RERUN, read_json, run_failure, tokenmill_version
from release.reader import row_group_tokens
from schemas.records import STAGES, doc_id_scheme
from schemas.tables import DEDUP_INDEX_SCHEMA
from storage.files import copy, exists, is_local, join, match, open_read, open_stream, write_bytes
from storage.folders import build_folder, holds_files, into_place
from storage.paths import UnsafePathError, check_entries


class ReleaseError(ValueError):
    pass


# Files copied or hashed at once by `release` and `verify`. Their work is waiting on the store and sha256,
# and hashlib releases the GIL while it hashes more than 2,047 bytes (the hashlib documentation), so threads
# overlap both; 8 keeps a store's round trips (tens of ms each on S3 or GCS) from idling a few cores while
# holding 8 MiB of read buffers. `python bench/release_copy.py` gives figures (docs/scaling.md).
THREADS = 8

_T = TypeVar("_T")
_R = TypeVar("_R")


def in_parallel(work: Callable[[_T], _R], items: Iterable[_T], threads: int = THREADS) -> Iterator[_R]:
    """work(item) for every item on at most `threads` threads, the results in the items' order; the first
    exception in that order is raised, and the work not yet started is cancelled."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def created_time() -> str:
    """The release's creation time: now, or SOURCE_DATE_EPOCH's when set (the reproducible-builds convention,
    https://reproducible-builds.org/specs/source-date-epoch/): the same run released twice then gives the same
    manifest, and the runs deduplicated against it (which record its manifest_sha256) the same manifests too."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not epoch.isdigit():  # the spec: a malformed value is an error, not "now"
        raise ReleaseError(f"SOURCE_DATE_EPOCH={epoch!r} is not a count of seconds since 1970")
    return _dt.datetime.fromtimestamp(int(epoch), _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_sha256(path: str) -> str:
    """sha256 of a file on any store, streamed."""
    return sha256_and_size(path)[0]


def sha256_and_size(path: str) -> tuple[str, int]:
    """(sha256, bytes) of a file on any store, streamed: the size counted as it is read, not asked again."""
    h, n = hashlib.sha256(), 0
    with open_stream(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def files_under(folder: str) -> list[tuple[str, int]]:
    """(path relative to `folder` with '/', size) of every file below it, on any store."""
    folder = folder.rstrip("/")
    if is_local(folder):
        out = []
        for root, _dirs, names in os.walk(folder):
            for name in names:
                full = os.path.join(root, name)
                out.append((os.path.relpath(full, folder).replace(os.sep, "/"), os.path.getsize(full)))
        return sorted(out)
    return [(path.removeprefix(f"{folder}/"), n) for path, n in match(f"{folder}/**")]


def footer_tokens(path: str) -> list[int]:
    """A shard's tokens per row group, from its footer (release.reader.row_group_tokens)."""
    with open_read(path) as stream:
        return row_group_tokens(pq.ParquetFile(stream).metadata, path)


def check_release_paths(target: str, manifest: dict) -> None:
    """Every file a release's manifest lists is a relative path inside `target` (storage.paths). Raises
    ReleaseError naming the first that is not."""
    try:
        check_entries(manifest.get("files") or [], f"{target}/manifest.json files")
        check_entries((manifest.get("dedup_index") or {}).get("files") or [], f"{target}/manifest.json dedup_index")
    except UnsafePathError as exc:
        raise ReleaseError(str(exc)) from None


def _card(name: str, version: str, manifest: dict, stats: dict) -> str:
    lines = [f"# {name} {version}", "", "Made with tokenmill from a web crawl.", "",
             f"- documents: {manifest['totals']['documents']:,}", f"- tokens: {manifest['totals']['tokens']:,}",
             f"- tokenizer: {manifest['tokenizer']['name']} "
             f"(vocabulary sha256 {manifest['tokenizer']['vocab_sha256']})",
             f"- recipe: {manifest['recipe']['name']} (sha256 {manifest['recipe_sha256']})",
             f"- input files: {len(manifest['inputs'])}", "", "## Funnel", "",
             "| stage | in | out | dropped |", "|---|---|---|---|"]
    stages = stats.get("stages", {})
    for stage in [st for st in STAGES if st in stages]:  # pipeline order (stats.json keeps its keys sorted)
        s = stages[stage]
        dropped = ", ".join(f"{r} {n}" for r, n in s["dropped"].items()) or "-"
        lines.append(f"| {stage} | {s['in']} | {s['out']} | {dropped} |")
    errors = stats.get("read", {}).get("file_errors", [])
    lines += ["", "## Input files not read to the end", ""]
    if errors:
        lines += ["| file | at byte | error |", "|---|---|---|"]
        lines += [f"| {e['file']} | {e['offset']} | {e['error'].replace('|', '/')} |" for e in errors]
    else:
        lines.append(f"None: every one of the {len(manifest['inputs'])} input files was read to its end.")
    against = stats.get("dedup_against")
    if against:  # lineage: what this data was deduplicated against
        lines += ["", "## Deduplicated against", "", "| release | version | path | exact copies | near copies |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['version']} | {r['path']} | {r['exact_copies']} | {r['near_copies']} |"
                  for r in against]
    decon = stats.get("decontamination")
    if decon:  # what a user of the data needs to trust its evaluation numbers
        verb = "dropped" if decon["action"] == "drop" else "flagged (kept; ledger reason contaminated)"
        lines += ["", "## Decontamination", "",
                  f"Documents sharing at least {decon['min_matches']} word {decon['ngram']}-gram(s) with one item of "
                  f"these benchmark files were {verb}.",
                  "", "| benchmark file | sha256 | items | items found | documents |", "|---|---|---|---|---|"]
        lines += [f"| {s['path']} | {s['sha256']} | {s['items']} | {s['items_found']} | {s['documents']} |"
                  for s in decon["sources"]]
    for kind in ("language", "topic"):
        mix = stats.get(f"kept_by_{kind}")
        if mix:
            lines += ["", f"## By {kind}", "", f"| {kind} | documents | tokens |", "|---|---|---|"]
            lines += [f"| {k} | {v['documents']} | {v['tokens']} |" for k, v in sorted(mix.items())]
    lines += ["", "## Recipe", "", "```json", json.dumps(manifest["recipe"], indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def release(run_dir: str, name: str, version: str, target: str, threads: int = THREADS) -> dict[str, Any]:
    """Copy the run's shards to `target` (any store), checking each copy's sha256 against the run's manifest
    (`threads` files at a time, THREADS);
    then README.md, then manifest.json, whose presence marks the release complete. Locally the release is
    built beside `target` and renamed into place, and its files are made read-only; on object storage, where
    there is no rename, the manifest is written last."""
    run_dir, target = run_dir.rstrip("/"), target.rstrip("/")
    run = open_run(run_dir)
    stats = read_json(f"{run_dir}/stats.json")
    failure = run_failure(run_dir)
    if failure is not None:  # what it kept is what could be read before it failed: not a dataset to publish
        raise ReleaseError(f"{run_dir}: the run ended in an error, so it is not released: {failure}; "
                           f"{FIX_AND_RERUN}")
    if not run["totals"]["documents"]:  # a release of nothing would pass verify and feed a mixture no token
        raise ReleaseError(f"{run_dir}: the run kept no document (of {stats.get('records', 0):,} records read): "
                           "nothing to release")
    if exists(join(target, "manifest.json")):
        existing = read_json(join(target, "manifest.json"))
        same = existing.get("source_shards") == [s["sha256"] for s in run["shards"]] and (
            existing.get("name"), existing.get("version")) == (name, version)
        if not same:
            raise ReleaseError(f"{target} already holds release {existing.get('name')} {existing.get('version')}")
        problems = verify(target)
        if problems:
            raise ReleaseError(f"{target}: the release there is damaged: {problems[0]}")
        return existing
    if holds_files(target):
        raise ReleaseError(f"{target} is not empty")
    build = build_folder(target, "release")
    def copied(entry: dict) -> dict:
        src, dst = f"{run_dir}/{entry['path']}", join(build, entry["path"])
        copy(src, dst)  # within one object store a server-side copy: the read-back below is the one transfer
        digest, n = sha256_and_size(dst)
        if digest != entry["sha256"]:
            raise ReleaseError(f"{src}: sha256 {digest} differs from the run manifest")
        return {"path": entry["path"], "bytes": n, "sha256": digest, "rows": entry["rows"]}

    # The dedup index (runs before 2026-12-06 have none): a later run deduplicates against the release with it.
    run_index = run.get("dedup_index", {"parts": [], "settings": {}})
    done = list(in_parallel(copied, run["shards"] + run_index["parts"], threads))
    shards = len(run["shards"])
    files = [f | {"tokens": entry.get("tokens", 0)} for f, entry in zip(done[:shards], run["shards"], strict=True)]
    # Each shard's tokens per row group, from its footer: a training rank deals row groups from the manifest
    # alone and opens only the files it reads (release/reader.py).
    for f, counts in zip(files, in_parallel(lambda f: footer_tokens(join(build, f["path"])), files, threads),
                         strict=True):
        f["row_group_tokens"] = counts
    index_files = done[shards:]
    documents = run["totals"]["documents"]
    manifest = {
        "name": name, "version": version, "schema_version": run["schema_version"],
        "created": created_time(),
        "tokenmill_version": tokenmill_version(), "tokenizer": run["tokenizer"], "doc_id": doc_id_scheme(run),
        "recipe": run["recipe"],
        "recipe_sha256": run["recipe_sha256"], "inputs": run["inputs"], "score_columns": run["score_columns"],
        "totals": {"documents": run["totals"]["documents"], "tokens": run["totals"]["tokens"]},
        "files": files, "source_shards": [s["sha256"] for s in run["shards"]],
        "dedup_index": {
            "files": index_files, "settings": run_index["settings"],
            "bytes_per_document": round(sum(f["bytes"] for f in index_files) / documents, 1) if documents else 0.0,
        } if index_files else None,
        # Lineage: the releases the run was deduplicated against ([dedup] against), as it read them.
        "deduplicated_against": run.get("dedup_against", []),
    }
    write_bytes(join(build, "README.md"), _card(name, version, run, stats).encode("utf-8"))
    write_bytes(join(build, "manifest.json"), json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    into_place(build, target, read_only=True)  # immutable: read-only files
    return manifest


def verify(target: str, threads: int = THREADS) -> list[str]:
    """Problems found (empty when the release is intact): checksums, sizes, rows and schema of every listed
    file (`threads` at a time, THREADS), and every file the manifest does not list. Raises ReleaseError when
    `target` is not a release."""
    target = target.rstrip("/")
    path = join(target, "manifest.json")
    if not exists(path):
        raise ReleaseError(f"{target}: not a release (no manifest.json)")
    manifest = read_json(path)
    if "files" not in manifest:
        if "shards" in manifest:
            raise ReleaseError(f"{target} is a run's output folder, not a release: `tokenmill release {target} --to "
                               f"DIR` makes one; `tokenmill stats {target}` reads the run")
        raise ReleaseError(f"{path}: not a tokenmill release manifest (no 'files')")
    check_release_paths(target, manifest)
    problems = []
    index = manifest.get("dedup_index") or {"files": []}
    listed = {entry["path"] for entry in manifest["files"] + index["files"]} | {"manifest.json", "README.md"}
    present = dict(files_under(target))  # one listing, not a request per file
    for rel in sorted(set(present) - listed):
        problems.append(f"{rel}: not listed in the manifest (a reader of shards/*.parquet would read it)")

    def check(item: tuple[dict, str, list[str]]) -> list[str]:
        entry, kind, wanted = item
        f = join(target, entry["path"])
        if entry["path"] not in present:
            return [f"{entry['path']}: missing"]
        found = []
        if present[entry["path"]] != entry["bytes"]:
            found.append(f"{entry['path']}: size {present[entry['path']]} != {entry['bytes']}")
        if file_sha256(f) != entry["sha256"]:
            return found + [f"{entry['path']}: sha256 mismatch"]
        with open_read(f) as stream:
            meta = pq.ParquetFile(stream)
        if meta.metadata.num_rows != entry["rows"]:
            found.append(f"{entry['path']}: {meta.metadata.num_rows} rows != {entry['rows']}")
        if not set(wanted) <= set(meta.schema_arrow.names):
            return found + [f"{entry['path']}: not a tokenmill {kind} schema"]
        if "row_group_tokens" in entry:  # releases since 2026-12-07: what a reader deals its row groups by
            try:
                counts = row_group_tokens(meta.metadata, entry["path"])
            except ValueError as exc:
                counts = str(exc)
            if counts != entry["row_group_tokens"]:
                found.append(f"{entry['path']}: tokens per row group {counts} != the manifest's "
                             f"{entry['row_group_tokens']}")
        return found

    # Each entry knows its kind: looking it up in the index's list inside the loop was a scan per file.
    items = [(e, "shard", ["doc_id", "tokens"]) for e in manifest["files"]] + [
        (e, "dedup index", DEDUP_INDEX_SCHEMA.names) for e in index["files"]]
    for found in in_parallel(check, items, threads):
        problems += found
    return problems
