"""A release as something a new run deduplicates against ([dedup] against): its dedup index, checked before the
run starts from its manifest alone. A release the run cannot use the way the recipe asks is refused in one line
naming it: no manifest, not a release, no dedup index, tokens of another tokenizer, a MinHash of other settings
(or none while the run's near dedup needs one), an index path outside the release. Its index files are checked
against the manifest's sha256 by the workers as they read them (`checked_index_file`): the driver of a run
against a release of 10^9 documents (~1 KB of index each) does not read a terabyte before it submits."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from dedup.exact import EXACT_KEY_DEFINITION
from release.publish import ReleaseError, check_release_paths
from schemas.recipe import Recipe
from schemas.records import doc_id_scheme
from storage.files import exists, is_local, join, open_stream, read_bytes


class AgainstError(ValueError):
    """A release a run cannot deduplicate against; the message is the line the run prints."""


class IndexFileError(RuntimeError):
    """A released index file that is missing or fails its manifest's sha256, found by the worker reading it. The
    release's fault, not a record's: the run fails, and its message is the line the run prints
    (driver.job._STATED_FAILURES)."""


MINHASH_KEYS = ("ngram", "bands", "rows", "seed")


def open_against(path: str, recipe: Recipe, tokenizer: dict[str, Any]) -> dict[str, Any]:
    """{name, version, path, manifest_sha256, doc_id, documents, files} of the release at `path`, after checking
    it can serve this run's exact and near dedup; `files` are the index files' manifest entries ({path, sha256,
    ...}, paths relative to the release). Only manifest.json is read: each index file is checked against its
    sha256 by the worker that reads it (`checked_index_file`), since hashing them here held the driver for
    as long as reading the whole index takes (~1 s per GB from a warm local disk, plus the download from a
    store: bench/against_scale.py, docs/scaling.md).

    A release whose ids are of another scheme (`doc_id`: schemas.records.doc_id_scheme, older releases'
    64-bit ids) is used all the same: matching is on text keys (exact keys, MinHash band keys), never on ids,
    and the cluster_id `<release>:<doc_id>` a copy gets cites the release's own id, whose scheme the run's
    manifest records with the release (`dedup_against`)."""
    path = path.rstrip("/")
    where = f"dedup.against: {path}"
    manifest_path = join(path, "manifest.json")
    if not exists(manifest_path):
        raise AgainstError(f"{where}: not a release (no manifest.json)")
    raw = read_bytes(manifest_path)
    manifest = json.loads(raw)
    if "files" not in manifest:
        kind = "a run's output folder" if "shards" in manifest else "not a tokenmill release"
        raise AgainstError(f"{where}: {kind}, not a release (`tokenmill release` makes one)")
    index = manifest.get("dedup_index")
    if not index or not index.get("files"):
        raise AgainstError(f"{where}: the release carries no dedup index (released before 2026-12-06): release its "
                           "run again with this tokenmill")
    ours = tokenizer.get("vocab_sha256")
    theirs = manifest.get("tokenizer", {}).get("vocab_sha256")
    if theirs != ours:
        raise AgainstError(f"{where}: its tokens are {manifest['tokenizer'].get('name')} (vocabulary sha256 "
                           f"{str(theirs)[:12]}), this run's {tokenizer.get('name')} ({str(ours)[:12]}): one "
                           "training set needs one tokenizer")
    if recipe.dedup.exact.enabled and index.get("settings", {}).get("exact_key") != EXACT_KEY_DEFINITION:
        raise AgainstError(f"{where}: its exact keys are {index.get('settings', {}).get('exact_key')!r}, this run's "
                           f"{EXACT_KEY_DEFINITION!r}")
    near = recipe.dedup.near
    if near.enabled:
        minhash = index.get("settings", {}).get("minhash")
        if not minhash:
            raise AgainstError(f"{where}: its dedup index has no MinHash signatures (its run had near dedup off); "
                               "this run's near dedup cannot match against it")
        wanted = {k: getattr(near, k) for k in MINHASH_KEYS}
        have = {k: minhash.get(k) for k in MINHASH_KEYS}
        if have != wanted:
            raise AgainstError(f"{where}: its MinHash index was made with {have}, this run's dedup.near is "
                               f"{wanted}: band keys of other settings never meet")
    try:
        check_release_paths(path, manifest)
    except ReleaseError as exc:
        raise AgainstError(f"dedup.against: {exc}") from None
    return {"name": manifest["name"], "version": manifest["version"], "path": path,
            "manifest_sha256": hashlib.sha256(raw).hexdigest(), "doc_id": doc_id_scheme(manifest),
            "documents": sum(e["rows"] for e in index["files"]), "files": index["files"]}


@contextlib.contextmanager
def checked_index_file(release: str, entry: str, sha256: str) -> Iterator[str]:
    """A local file holding the release's index file `entry` (a path relative to `release`), whose bytes were
    checked against `sha256` (its manifest's) before the caller reads a row: the file itself when local (read
    twice: hashed, then parsed), else a temporary copy hashed while it was fetched (one read of the store),
    removed on exit. Raises IndexFileError naming the file when it is missing or its bytes differ."""
    where = f"dedup.against: {release}"
    path = join(release, entry)
    folder = None
    try:
        try:
            source = open_stream(path)
        except Exception as exc:
            if not exists(path):
                raise IndexFileError(f"{where}: {entry} is missing (tokenmill verify {release})") from exc
            raise  # the store's own failure: the bundle is retried
        h = hashlib.sha256()
        with source:
            if is_local(path):
                local = path
                for chunk in iter(lambda: source.read(1 << 20), b""):
                    h.update(chunk)
            else:
                folder = tempfile.mkdtemp(prefix="tokenmill-index-")
                local = os.path.join(folder, "index.parquet")
                with open(local, "wb") as copy:
                    for chunk in iter(lambda: source.read(1 << 20), b""):
                        h.update(chunk)
                        copy.write(chunk)
        if h.hexdigest() != sha256:
            raise IndexFileError(f"{where}: {entry} fails its sha256 checksum (tokenmill verify {release})")
        yield local
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
