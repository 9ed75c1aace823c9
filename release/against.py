"""A release as something a new run deduplicates against ([dedup] against): its dedup index, checked before the
run starts. A release the run cannot use the way the recipe asks is refused in one line naming it: no
manifest, not a release, no dedup index, tokens of another tokenizer, a MinHash of other settings (or none
while the run's near dedup needs one), an index file missing or failing its checksum."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dedup.exact import EXACT_KEY_DEFINITION
from release.publish import ReleaseError, check_release_paths, file_sha256
from schemas.recipe import Recipe
from schemas.records import doc_id_scheme
from storage.files import exists, join, read_bytes


class AgainstError(ValueError):
    """A release a run cannot deduplicate against; the message is the line the run prints."""


MINHASH_KEYS = ("ngram", "bands", "rows", "seed")


def open_against(path: str, recipe: Recipe, tokenizer: dict[str, Any]) -> dict[str, Any]:
    """{name, version, path, manifest_sha256, doc_id, documents, files} of the release at `path`, after checking
    it can serve this run's exact and near dedup. Every index file's sha256 is checked here, so a damaged release
    stops the run before it starts (the index is read once more by the run).

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
    files = []
    for entry in index["files"]:
        file = join(path, entry["path"])
        if not exists(file):
            raise AgainstError(f"{where}: {entry['path']} is missing (tokenmill verify {path})")
        if file_sha256(file) != entry["sha256"]:
            raise AgainstError(f"{where}: {entry['path']} fails its sha256 checksum (tokenmill verify {path})")
        files.append(file)
    return {"name": manifest["name"], "version": manifest["version"], "path": path,
            "manifest_sha256": hashlib.sha256(raw).hexdigest(), "doc_id": doc_id_scheme(manifest),
            "documents": sum(e["rows"] for e in index["files"]), "files": files}
