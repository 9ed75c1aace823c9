"""The mixture folder: what marks it (manifest.json's kind), the plan files' schema, writing and reading them,
and `verify` of a mixture.

    manifest.json            kind "mixture"; the spec; per source its path, the sha256 of its manifest.json
                             (which lists every shard's sha256), its shard files, weight, where, repeat table,
                             documents, tokens per epoch, epochs, copies; the composition; warnings
    plan/part-NNNNN.parquet  one row per unit in stream order: window, source, file, row_group, epoch, tokens,
                             take (0, or the one row's tokens kept), rows (the row group's rows to read)

The folder holds no tokens: `training/reader.py: PackedReader(mix_dir, ...)` returns mixing/reader.py's
MixtureReader, which reads the sources' shards through the plan (release.reader.PackedReader refuses a mixture
folder since 2026-12-07).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mixing.plan import Units, unit_rows
from outputs.parquet_parts import HashingWriter
from release.publish import file_sha256, files_under
from storage.files import create, exists, join, match, open_read, read_bytes
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


# Units per row group of a plan file: the plan's format since it was written (as 10,000 rows per row group by
# pq.write_table); a row group's rows are held whole while written, so its pages are the whole table's.
PLAN_ROW_GROUP_UNITS = 10_000
# Units whose rows verify reads at once (Arrow decodes a batch, not the row group: reading a whole plan row group
# of 22 M entries peaked at 513 MiB RSS, batches of 1,000 units at 160 MiB; bench/mix_scale.py's 10^7 plan).
VERIFY_BATCH_UNITS = 1_000


def plan_table(units: Units, a: int, b: int, rows: np.ndarray) -> pa.Table:
    """Units [a, b) as plan rows, `rows` their rows laid end to end."""
    offsets = np.concatenate([[0], np.cumsum(units.count[a:b])]).astype(np.int32)
    return pa.Table.from_arrays([
        pa.array(units.window[a:b], pa.int32()), pa.array(units.source[a:b], pa.int32()),
        pa.array(units.file[a:b], pa.int32()), pa.array(units.row_group[a:b], pa.int32()),
        pa.array(units.epoch[a:b], pa.int32()),
        pa.array(units.tokens[a:b], pa.int64()), pa.array(units.take[a:b], pa.int64()),
        pa.ListArray.from_arrays(pa.array(offsets), pa.array(rows, pa.int32())),
    ], schema=PLAN_SCHEMA)


def write_plan(target: str, units: Units, load) -> list[dict]:
    """plan/part-NNNNN.parquet under `target`, PLAN_PART_UNITS units a file, each file streamed to its store
    a row group (PLAN_ROW_GROUP_UNITS units) at a time, the rows of only that row group in memory
    (mixing.plan.unit_rows with `load`): the same bytes as a whole part written by `parquet_bytes`. Returns
    the files' manifest entries."""
    files = []
    n = len(units.tokens)
    for k, a in enumerate(range(0, max(n, 1), PLAN_PART_UNITS)):
        b = min(a + PLAN_PART_UNITS, n)
        rel = f"plan/part-{k:05d}.parquet"
        with create(join(target, rel)) as raw:
            sink = HashingWriter(raw, close_raw=False)  # the `with` closes the file
            if a == b:  # no unit: what parquet_bytes writes for an empty table
                sink.write(parquet_bytes(plan_table(units, a, b, np.zeros(0, np.int32))))
            else:
                with pq.ParquetWriter(sink, PLAN_SCHEMA, compression="zstd") as writer:
                    for c in range(a, b, PLAN_ROW_GROUP_UNITS):
                        d = min(c + PLAN_ROW_GROUP_UNITS, b)
                        writer.write_table(plan_table(units, c, d, unit_rows(units, c, d, load)))
        files.append({"path": rel, "bytes": sink.size, "sha256": sink.hexdigest, "rows": b - a})
    return files


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=PLAN_ROW_GROUP_UNITS)
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
    # The units' small columns first (a few numbers per unit), then the rows VERIFY_BATCH_UNITS units at a time:
    # what verify holds does not grow with the plan's entries (246 M at 10^8 documents in bench/mix_scale.py).
    plan = read_plan(target, manifest, columns=["source", "file", "tokens"])
    src, fil = (plan.column(c).to_numpy() for c in ("source", "file"))
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
    first = 0  # the batch's first unit
    for f in manifest["plan"]["files"]:
        with open_read(join(target, f["path"])) as stream:
            batches = pq.ParquetFile(stream).iter_batches(VERIFY_BATCH_UNITS, columns=[
                "source", "file", "row_group", "rows"])
            for part in batches:
                src, fil, grp = (part.column(c).to_numpy() for c in ("source", "file", "row_group"))
                rows = part.column("rows")
                lengths = pc.list_value_length(rows).to_numpy()
                flat = pc.list_flatten(rows).to_numpy()
                top = np.maximum.reduceat(flat, np.cumsum(lengths) - lengths) if len(flat) else np.zeros(
                    len(src), np.int64)
                for u in range(len(src)):
                    meta = footers[int(src[u]), int(fil[u])]
                    if grp[u] >= meta.num_row_groups or top[u] >= meta.row_group(int(grp[u])).num_rows:
                        return [f"plan unit {first + u}: row group {grp[u]} / row {top[u]} beyond "
                                f"{manifest['sources'][src[u]]['files'][fil[u]]['path']}"]
                first += len(src)
    return problems
