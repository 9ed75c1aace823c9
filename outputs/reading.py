"""Reading a run's output directory back: validation, ledger/shard queries, deterministic samples.

Used by `tokenmill stats`, `tokenmill inspect` and the release step. Works on local and Beam FileSystems
paths (storage.files opens local files directly and the others through FileSystems).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from outputs.run_files import FIX_AND_RERUN, STARTED, read_json, run_failure
from schemas import SCHEMA_VERSION
from schemas.tables import LEDGER_SCHEMA, shard_schema
from storage.files import exists, is_local, match
from storage.files import open_read as open_for_reading
from storage.paths import UnsafePathError, check_entries


class OutputDirError(ValueError):
    """The directory is missing, partial, or written by another schema version."""


def open_run(root: str) -> dict[str, Any]:
    """The run's manifest after checking that the directory is a complete run of this schema version."""
    root = root.rstrip("/")
    manifest = open_manifest(root)
    # One listing per folder, not one request per part: a snapshot's run has ~10^5 parts, and on object
    # storage each existence check is a round trip.
    present = {path.removeprefix(f"{root}/") for folder in ("shards", "ledger")
               for path, _size in match(f"{root}/{folder}/*")}
    missing = [e["path"] for e in manifest["shards"] + manifest["ledger"] if e["path"] not in present]
    if missing:
        raise OutputDirError(f"{root}: partial output, missing {missing[0]} (and {len(missing) - 1} more)")
    return manifest


def open_manifest(root: str) -> dict[str, Any]:
    """The run's manifest after checking it is a run's (not a release's) of this schema version; the parts
    are not looked at (`tokenmill stats` reads only the manifest and stats.json)."""
    root = root.rstrip("/")
    if not exists(f"{root}/manifest.json"):
        failure = run_failure(root)
        if failure is not None:  # the pipeline raised: nothing was written but the marker
            raise OutputDirError(f"{root}: the run ended in an error before writing its outputs: {failure}; "
                                 f"{FIX_AND_RERUN}")
        if exists(f"{root}/{STARTED}"):
            raise OutputDirError(f"{root}: holds a run that was interrupted or is still running (no manifest.json "
                                 "yet); the same command runs it again from the start")
        if is_local(root) and not os.path.exists(root):
            raise OutputDirError(f"{root}: no such folder")
        raise OutputDirError(f"{root}: not a tokenmill output directory (no manifest.json); is the run finished?")
    if exists(f"{root}/{STARTED}") and run_failure(root) is None:
        # Its driver removes STARTED only after the run's final step (which writes the manifest) has succeeded:
        # a driver stopped in between leaves both, and the run may still be finishing. A rerun treats it as
        # interrupted too (driver.output_folder.prepare_output).
        raise OutputDirError(f"{root}: holds a run that was interrupted or is still running (its manifest.json is "
                             "written, but the run has not ended); the same command runs it again from the start")
    manifest = read_json(f"{root}/manifest.json")
    if manifest.get("kind") == "mixture":
        raise OutputDirError(f"{root} is a mixture, not a run's output folder: `tokenmill stats {root}` and "
                             f"`tokenmill report {root} -o FILE` show it, `tokenmill verify {root}` checks it")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise OutputDirError(
            f"{root}: schema version {manifest.get('schema_version')!r}, this tokenmill reads {SCHEMA_VERSION!r}"
        )
    if "shards" not in manifest and "files" in manifest:
        raise OutputDirError(f"{root} is a release, not a run's output folder: `tokenmill verify {root}` checks "
                             "it and release/reader.py reads it; stats, inspect, diff and report read a run")
    check_run_paths(root, manifest)
    return manifest


def check_run_paths(root: str, manifest: dict[str, Any]) -> None:
    """Every part the run's manifest lists is a relative path inside `root` (storage.paths): a tampered
    `../x` or absolute path is refused before inspect reads it or release copies it. Raises OutputDirError."""
    try:
        for key in ("shards", "ledger", "scored"):
            check_entries(manifest.get(key) or [], f"{root}/manifest.json {key}")
        check_entries((manifest.get("dedup_index") or {}).get("parts") or [], f"{root}/manifest.json dedup_index")
    except UnsafePathError as exc:
        raise OutputDirError(str(exc)) from None


def _read(root: str, entries: list[dict], columns: list[str] | None = None, filter_=None,
          schema: pa.Schema | None = None) -> pa.Table:
    """The parts' rows (the columns asked for, the rows the filter keeps). A run with no parts of a kind (a
    crawl with no content record has no ledger part since parts are cut across input files, bdc7f72) reads as
    an empty table of `schema`, so `inspect` and `diff` find their columns."""
    if not entries and schema is not None:
        return (schema if columns is None else pa.schema([
            schema.field(c) if c in schema.names else pa.field(c, pa.float64()) for c in columns])).empty_table()
    tables = []
    for e in entries:
        with open_for_reading(f"{root.rstrip('/')}/{e['path']}") as f:
            # The filter goes into the scan: rows are dropped batch by batch as the part is read, so what is
            # held is the matching rows, not the part (a snapshot's ledger has ~3 B rows).
            tables.append(pq.read_table(f, columns=columns, filters=filter_))
    return pa.concat_tables(tables) if tables else pa.table({})


def read_ledger(root: str, manifest: dict, columns: list[str] | None = None, filter_=None) -> pa.Table:
    return _read(root, manifest["ledger"], columns, filter_, LEDGER_SCHEMA)


def read_shards(root: str, manifest: dict, columns: list[str] | None = None, filter_=None) -> pa.Table:
    return _read(root, manifest["shards"], columns, filter_, shard_schema([]))


def _sample_rank(seed: int, doc_id: str) -> int:
    """Where a document ranks in the seeded sample: the lowest n ranks are sampled."""
    return xxhash.xxh3_64_intdigest(f"{seed}\x00{doc_id}".encode())


def sample_ids(ids: list[str], n: int, seed: int) -> list[str]:
    """n of `ids` chosen by a seeded hash: the same ones on every call, in id order (sample_rows' choice)."""
    if len(ids) <= n:
        return sorted(ids)
    return sorted(sorted(ids, key=lambda i: _sample_rank(seed, i))[:n])


def ledger_rows(root: str, manifest: dict, ids: list[str]) -> list[dict]:
    """The whole ledger rows of these documents, in doc id order (the filter pushed into the scan)."""
    if not ids:
        return []
    rows = read_ledger(root, manifest, filter_=pc.field("doc_id").isin(ids)).to_pylist()
    return sorted(rows, key=lambda r: r["doc_id"])


def sample_ledger(root: str, manifest: dict, n: int, seed: int, filter_=None) -> tuple[int, list[dict]]:
    """(how many ledger rows match `filter_`, n of them sampled as sample_rows samples), reading the matching
    rows' doc ids first and then only the sampled rows: a snapshot's ledger (~3 B rows) is never held, only
    the matching ids."""
    ids = read_ledger(root, manifest, ["doc_id"], filter_).column("doc_id").to_pylist()
    return len(ids), ledger_rows(root, manifest, sample_ids(ids, n, seed))


def sample_rows(table: pa.Table, n: int, seed: int) -> list[dict]:
    """n rows chosen by a seeded hash of doc_id: the same rows on every call, in doc_id order."""
    if table.num_rows <= n:
        return table.to_pylist()
    ids = table.column("doc_id").to_pylist()
    ranked = sorted(range(len(ids)), key=lambda i: _sample_rank(seed, ids[i]))
    picked = sorted(ranked[:n], key=lambda i: ids[i])
    return table.take(pa.array(picked)).to_pylist()


def doc_filter(
    *, dropped: bool | None = None, stage: str | None = None, reason: str | None = None, lang: str | None = None,
    topic: str | None = None, score_min: float | None = None, score_max: float | None = None,
):
    """A pyarrow filter expression over ledger columns from CLI options (None = no condition)."""
    expr = None

    def add(e):
        nonlocal expr
        expr = e if expr is None else expr & e

    if dropped is not None:
        add(pc.field("kept") == (not dropped))
    if stage:
        add(pc.field("stage") == stage)
    if reason:
        add(pc.field("reason") == reason)
    if lang:
        add(pc.field("language") == lang)
    if topic:
        add(pc.field("topic") == topic)
    if score_min is not None:
        add(pc.field("score") >= score_min)
    if score_max is not None:
        add(pc.field("score") <= score_max)
    return expr


def history(root: str, manifest: dict, doc_id: str) -> Iterator[dict]:
    """Everything the run recorded about one document: its ledger row, and its shard row if kept."""
    rows = read_ledger(root, manifest, filter_=pc.field("doc_id") == doc_id).to_pylist()
    for row in rows:
        yield {"kind": "ledger", **row}
    if any(r["kept"] for r in rows):
        for row in read_shards(root, manifest, filter_=pc.field("doc_id") == doc_id).to_pylist():
            yield {"kind": "shard", **row}
