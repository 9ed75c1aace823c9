"""`tokenmill release` and `tokenmill verify`: an immutable, checksummed copy of a run's shards.

A release directory holds shards/, manifest.json (every file's sha256 and size, rows, tokens, tokenizer and
vocabulary hash, recipe and its hash, inputs, tokenmill version, creation time) and README.md (a dataset
card). Releasing into a directory that holds a different release is refused; releasing the same run again
is a no-op check.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from typing import Any

import pyarrow.parquet as pq

from outputs.reading import open_run
from outputs.run_files import read_json, tokenmill_version
from schemas.records import STAGES


class ReleaseError(ValueError):
    pass


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    for kind in ("language", "topic"):
        mix = stats.get(f"kept_by_{kind}")
        if mix:
            lines += ["", f"## By {kind}", "", f"| {kind} | documents | tokens |", "|---|---|---|"]
            lines += [f"| {k} | {v['documents']} | {v['tokens']} |" for k, v in sorted(mix.items())]
    lines += ["", "## Recipe", "", "```json", json.dumps(manifest["recipe"], indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def release(run_dir: str, name: str, version: str, target: str) -> dict[str, Any]:
    run = open_run(run_dir)
    stats = read_json(f"{run_dir.rstrip('/')}/stats.json")
    if os.path.exists(os.path.join(target, "manifest.json")):
        existing = read_json(os.path.join(target, "manifest.json"))
        same = existing.get("source_shards") == [s["sha256"] for s in run["shards"]] and (
            existing.get("name"), existing.get("version")) == (name, version)
        if not same:
            raise ReleaseError(f"{target} already holds release {existing.get('name')} {existing.get('version')}")
        verify(target)
        return existing
    if os.path.exists(target) and os.listdir(target):
        raise ReleaseError(f"{target} is not empty")
    tmp = target.rstrip("/") + ".tmp-release"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "shards"))
    files = []
    for entry in run["shards"]:
        src = os.path.join(run_dir, entry["path"])
        dst = os.path.join(tmp, entry["path"])
        shutil.copyfile(src, dst)
        digest = _sha256(dst)
        if digest != entry["sha256"]:
            raise ReleaseError(f"{src}: sha256 {digest} differs from the run manifest")
        files.append({"path": entry["path"], "bytes": os.path.getsize(dst), "sha256": digest, "rows": entry["rows"],
                      "tokens": entry.get("tokens", 0)})
    manifest = {
        "name": name, "version": version, "schema_version": run["schema_version"],
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tokenmill_version": tokenmill_version(), "tokenizer": run["tokenizer"], "recipe": run["recipe"],
        "recipe_sha256": run["recipe_sha256"], "inputs": run["inputs"], "score_columns": run["score_columns"],
        "totals": {"documents": run["totals"]["documents"], "tokens": run["totals"]["tokens"]},
        "files": files, "source_shards": [s["sha256"] for s in run["shards"]],
    }
    with open(os.path.join(tmp, "README.md"), "w") as f:
        f.write(_card(name, version, run, stats))
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    if os.path.exists(target):
        os.rmdir(target)
    os.rename(tmp, target)
    for root, _dirs, names in os.walk(target):  # immutable: read-only files
        for n in names:
            os.chmod(os.path.join(root, n), 0o444)
    return manifest


def verify(target: str) -> list[str]:
    """Problems found (empty when the release is intact): checksums, sizes, rows and schema of every listed
    file, and every file the manifest does not list. Raises ReleaseError when `target` is not a release."""
    path = os.path.join(target, "manifest.json")
    if not os.path.exists(path):
        raise ReleaseError(f"{target}: not a release (no manifest.json)")
    manifest = read_json(path)
    if "files" not in manifest:
        if "shards" in manifest:
            raise ReleaseError(f"{target} is a run's output folder, not a release: `tokenmill release {target} --to "
                               f"DIR` makes one; `tokenmill stats {target}` reads the run")
        raise ReleaseError(f"{path}: not a tokenmill release manifest (no 'files')")
    problems = []
    listed = {entry["path"] for entry in manifest["files"]} | {"manifest.json", "README.md"}
    for folder, _dirs, names in os.walk(target):
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), target).replace(os.sep, "/")
            if rel not in listed:
                problems.append(f"{rel}: not listed in the manifest (a reader of shards/*.parquet would read it)")
    for entry in manifest["files"]:
        f = os.path.join(target, entry["path"])
        if not os.path.exists(f):
            problems.append(f"{entry['path']}: missing")
            continue
        if os.path.getsize(f) != entry["bytes"]:
            problems.append(f"{entry['path']}: size {os.path.getsize(f)} != {entry['bytes']}")
        if _sha256(f) != entry["sha256"]:
            problems.append(f"{entry['path']}: sha256 mismatch")
            continue
        meta = pq.ParquetFile(f)
        if meta.metadata.num_rows != entry["rows"]:
            problems.append(f"{entry['path']}: {meta.metadata.num_rows} rows != {entry['rows']}")
        if "tokens" not in meta.schema_arrow.names or "doc_id" not in meta.schema_arrow.names:
            problems.append(f"{entry['path']}: not a tokenmill shard schema")
    return problems
