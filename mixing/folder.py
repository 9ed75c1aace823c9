"""The mixture folder: what marks it (manifest.json's kind), the plan files' schema, writing and reading them,
and `verify` of a mixture.

    manifest.json            kind "mixture"; the spec; per source its path, the sha256 of its manifest.json
                             (which lists every shard's sha256), its shard files, weight, where, repeat table,
                             documents, tokens per epoch, epochs, copies; the composition; warnings
    plan/part-NNNNN.parquet  one row per unit in stream order: window, source, file, row_group, epoch, tokens,
                             take (0, or the one row's tokens kept), rows (the row group's rows to read)

The folder holds no tokens: `release/reader.py: PackedReader(mix_dir, ...)` reads the sources' shards
through the plan (mixing/reader.py).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mixing.plan import Units
from release.publish import file_sha256, files_under
from storage.files import exists, join, match, open_read, read_bytes
from storage.paths import check_entries

MIXTURE_KIND = "mixture"
PLAN_PART_UNITS = 100_000  # units per plan file (~1 M tokens each: 10^11 tokens per file)
PLAN_SCHEMA = pa.schema([
    pa.field("window", pa.int32()), pa.field("source", pa.int32()), pa.field("file", pa.int32()),
    pa.field("row_group", pa.int32()), pa.field("epoch", pa.int32()),
    pa.field("tokens", pa.int64()), pa.field("take", pa.int64()), pa.field("rows", pa.list_(pa.int32())),
])


def mixture_manifest(path: str) -> dict | None:
    """The manifest of the mixture folder at `path`, None when `path` is no mixture (a run, a release, nothing):
    one read that both tells a mixture apart and gives what the commands show of it. Raises
    storage.paths.UnsafePathError (a ValueError) when a mixture's manifest lists a path outside its folder."""
    manifest = join(path.rstrip("/"), "manifest.json")
    if not exists(manifest):
        return None
    data = json.loads(read_bytes(manifest))
    if data.get("kind") != MIXTURE_KIND:
        return None
    check_mixture_paths(path.rstrip("/"), data)
    return data


def check_mixture_paths(target: str, manifest: dict) -> None:
    """The plan files (inside `target`) and each source's shard files (inside the source's folder) are plain
    relative paths (storage.paths.inside): nothing reads or verifies a tampered `../x` or absolute path. A
    source's own `path` is where the source is, absolute by design, and is not checked here."""
    check_entries((manifest.get("plan") or {}).get("files") or [], f"{target}/manifest.json plan.files")
    for i, s in enumerate(manifest.get("sources") or []):
        check_entries(s.get("files") or [], f"{target}/manifest.json sources[{i}].files")


def plan_tables(units: Units) -> list[pa.Table]:
    tables = []
    ends = np.cumsum(units.count)  # unit u's rows end here in units.rows
    for a in range(0, max(len(units.tokens), 1), PLAN_PART_UNITS):
        b = min(a + PLAN_PART_UNITS, len(units.tokens))
        first = int(ends[a - 1]) if a else 0
        offsets = np.concatenate([[0], ends[a:b] - first]).astype(np.int32)
        rows = units.rows[first: first + offsets[-1]]
        tables.append(pa.Table.from_arrays([
            pa.array(units.window[a:b], pa.int32()), pa.array(units.source[a:b], pa.int32()),
            pa.array(units.file[a:b], pa.int32()), pa.array(units.row_group[a:b], pa.int32()),
            pa.array(units.epoch[a:b], pa.int32()),
            pa.array(units.tokens[a:b], pa.int64()), pa.array(units.take[a:b], pa.int64()),
            pa.ListArray.from_arrays(pa.array(offsets), pa.array(rows, pa.int32())),
        ], schema=PLAN_SCHEMA))
    return tables


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=10_000)
    return sink.getvalue().to_pybytes()


def read_plan(target: str, manifest: dict, columns: list[str] | None = None, parts: list[int] | None = None
              ) -> pa.Table:
    """The plan's rows (all parts, or the given ones), in stream order."""
    files = manifest["plan"]["files"]
    tables = []
    for k in range(len(files)) if parts is None else parts:
        with open_read(join(target, files[k]["path"])) as stream:
            tables.append(pq.read_table(stream, columns=columns))
    return pa.concat_tables(tables)


def verify_mixture(target: str, manifest: dict) -> list[str]:
    """Problems found (empty when intact): the plan files' checksums and sizes; each source's manifest
    unchanged (its sha256) and every shard file the plan reads present with its size; the plan's units
    within the files' row groups and rows; the manifest's totals equal to the plan's. The sources' own bytes
    are `tokenmill verify SOURCE`'s business."""
    target = target.rstrip("/")
    check_mixture_paths(target, manifest)  # raises UnsafePathError: refused, not a mismatch
    problems = []
    listed = {f["path"] for f in manifest["plan"]["files"]} | {"manifest.json"}
    present = dict(files_under(target))
    for rel in sorted(set(present) - listed):
        problems.append(f"{rel}: not listed in the manifest")
    for f in manifest["plan"]["files"]:
        if f["path"] not in present:
            problems.append(f"{f['path']}: missing")
        elif present[f["path"]] != f["bytes"]:
            problems.append(f"{f['path']}: size {present[f['path']]} != {f['bytes']}")
        elif file_sha256(join(target, f["path"])) != f["sha256"]:
            problems.append(f"{f['path']}: sha256 mismatch")
    if problems:
        return problems
    for s in manifest["sources"]:
        m = join(s["path"], "manifest.json")
        if not exists(m):
            problems.append(f"source {s['label']}: {s['path']} is gone")
            continue
        if file_sha256(m) != s["manifest_sha256"]:
            problems.append(f"source {s['label']}: {m} changed since the mix (sha256 differs)")
            continue
        folders = sorted({os.path.dirname(f["path"]) for f in s["files"]})
        sizes = dict(p for d in folders for p in match(join(s["path"], d, "*.parquet")))
        for f in s["files"]:
            full = join(s["path"], f["path"])
            if full not in sizes:
                problems.append(f"source {s['label']}: {f['path']} missing")
            elif sizes[full] != f["bytes"]:
                problems.append(f"source {s['label']}: {f['path']}: size {sizes[full]} != {f['bytes']}")
    if problems:
        return problems
    plan = read_plan(target, manifest)
    src, fil, grp = (plan.column(c).to_numpy() for c in ("source", "file", "row_group"))
    rows = plan.column("rows")
    tokens = int(plan.column("tokens").to_numpy().sum())
    if tokens != manifest["plan"]["tokens"]:
        problems.append(f"plan: {tokens:,} tokens, the manifest says {manifest['plan']['tokens']:,}")
    used = sorted(set(zip(src.tolist(), fil.tolist(), strict=True)))
    footers: dict[tuple[int, int], pq.FileMetaData] = {}
    for si, fi in used:
        s = manifest["sources"][si] if si < len(manifest["sources"]) else None
        if s is None or fi >= len(s["files"]):
            problems.append(f"plan: unit names source {si} file {fi}, which the manifest does not list")
            continue
        with open_read(join(s["path"], s["files"][fi]["path"])) as stream:
            footers[si, fi] = pq.ParquetFile(stream).metadata
    if problems:
        return problems
    lengths = pc.list_value_length(rows).to_numpy()
    flat = pc.list_flatten(rows).to_numpy()
    top = np.maximum.reduceat(flat, np.cumsum(lengths) - lengths) if len(flat) else np.zeros(len(src), np.int64)
    for u in range(len(src)):
        meta = footers[int(src[u]), int(fil[u])]
        if grp[u] >= meta.num_row_groups or top[u] >= meta.row_group(int(grp[u])).num_rows:
            problems.append(f"plan unit {u}: row group {grp[u]} / row {top[u]} beyond "
                            f"{manifest['sources'][src[u]]['files'][fil[u]]['path']}")
            break
    return problems
