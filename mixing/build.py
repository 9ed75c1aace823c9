"""`tokenmill mix`: read the sources' small columns, plan the mixture (mixing.plan), write the mixture folder;
and `verify` of a mixture.

A mixture folder holds no tokens:

    manifest.json          kind "mixture"; the spec; per source its path, the sha256 of its manifest.json
                           (which lists every shard's sha256), its shard files, weight, where, repeat table,
                           documents, tokens per epoch, epochs, copies; the composition; warnings
    plan/part-NNNNN.parquet  one row per unit in stream order: window, source, file, row_group, epoch,
                           tokens, take (0, or the one row's tokens kept), rows (the row group's rows to read)

`release/reader.py: PackedReader(mix_dir, ...)` reads the sources' shards through the plan.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mixing.plan import PlanError, SourceDocs, SourcePlan, Units, plan_mixture
from mixing.spec import MixSpec, SourceSpec, SpecError
from mixing.where import WhereError, parse_where
from schemas.tables import shard_schema
from storage.files import exists, is_local, join, match, open_read, read_bytes, write_bytes

MIXTURE_KIND = "mixture"
PLAN_PART_UNITS = 100_000  # units per plan file (~1 M tokens each: 10^11 tokens per file)
PLAN_SCHEMA = pa.schema([
    pa.field("window", pa.int32()), pa.field("source", pa.int32()), pa.field("file", pa.int32()),
    pa.field("row_group", pa.int32()), pa.field("epoch", pa.int32()),
    pa.field("tokens", pa.int64()), pa.field("take", pa.int64()), pa.field("rows", pa.list_(pa.int32())),
])
# What the plan reads of every selected row (besides the `where` columns): never the tokens.
META_COLUMNS = ["token_count", "cluster_size", "language", "topic"]


@dataclass
class Source:
    spec: SourceSpec
    index: int
    path: str  # absolute for a local path: the mixture may be read from another working directory
    label: str
    kind: str  # "release" or "run"
    manifest: dict
    manifest_sha256: str
    files: list[dict]  # {path (relative to the source), bytes, sha256, rows}
    schema: pa.Schema


def is_mixture(path: str) -> bool:
    manifest = join(path.rstrip("/"), "manifest.json")
    return exists(manifest) and json.loads(read_bytes(manifest)).get("kind") == MIXTURE_KIND


def open_source(spec: SourceSpec, index: int) -> Source:
    """The release or run a source names, checked: there, finished, a shard source. Raises SpecError."""
    where = f"sources[{index}] ({spec.path})"
    path = os.path.abspath(spec.path) if is_local(spec.path) else spec.path
    manifest_path = join(path, "manifest.json")
    if not exists(manifest_path):
        raise SpecError(f"{where}: no release or finished run there (no manifest.json)")
    raw = read_bytes(manifest_path)
    manifest = json.loads(raw)
    if manifest.get("kind") == MIXTURE_KIND:
        raise SpecError(f"{where} is a mixture: name its sources instead")
    if "files" in manifest:
        kind, entries = "release", manifest["files"]
    elif "shards" in manifest:
        kind, entries = "run", manifest["shards"]
    else:
        raise SpecError(f"{where}: manifest.json is not a tokenmill release's or run's")
    files = [{k: e[k] for k in ("path", "bytes", "sha256", "rows")} for e in entries if e["path"].endswith(".parquet")]
    label = spec.label or (f"{manifest['name']}-{manifest['version']}" if kind == "release"
                           else os.path.basename(path.rstrip("/")))
    return Source(spec=spec, index=index, path=path, label=label, kind=kind, manifest=manifest,
                  manifest_sha256=hashlib.sha256(raw).hexdigest(), files=files,
                  schema=shard_schema(manifest.get("score_columns", [])))


def open_sources(spec: MixSpec) -> list[Source]:
    """Every source opened and checked against the others: one tokenizer, `where` columns that exist."""
    sources = [open_source(s, i) for i, s in enumerate(spec.sources)]
    labels = [s.label for s in sources]
    for s in sources:  # two sources from one release (say, two `where` slices) get their index
        if labels.count(s.label) > 1:
            s.label = f"{s.label}[{s.index}]"
    first = sources[0].manifest["tokenizer"]
    for s in sources[1:]:
        tok = s.manifest["tokenizer"]
        if (tok.get("name"), tok.get("vocab_sha256"), tok.get("append_eos"), tok.get("eos_id")) != (
                first.get("name"), first.get("vocab_sha256"), first.get("append_eos"), first.get("eos_id")):
            raise SpecError(f"sources of different tokenizers: {sources[0].label} is {first['name']} (vocabulary "
                            f"sha256 {first['vocab_sha256'][:12]}), {s.label} is {tok['name']} "
                            f"(vocabulary sha256 {tok['vocab_sha256'][:12]})")
    for s in sources:
        if s.spec.where:
            try:
                parse_where(s.spec.where, s.schema)
            except WhereError as exc:
                raise SpecError(f"sources[{s.index}] ({s.spec.path}): where: {exc}") from None
    return sources


def _read_file(source: Source, fi: int, columns: list[str], expr) -> list[tuple[int, int, pa.Table]]:
    """(file, row group, the selected rows' columns + __row) of one shard file."""
    out = []
    with open_read(join(source.path, source.files[fi]["path"])) as stream:
        pf = pq.ParquetFile(stream)
        for g in range(pf.metadata.num_row_groups):
            table = pf.read_row_group(g, columns=columns)
            table = table.append_column("__row", pa.array(np.arange(table.num_rows, dtype=np.int32)))
            if expr is not None:
                table = table.filter(expr)
            out.append((fi, g, table.select(["__row", *META_COLUMNS])))
    return out


def read_docs(source: Source, threads: int = 8) -> SourceDocs:
    """The source's selected documents: the small columns of every row group, filtered by `where` in Arrow
    (files read in parallel: on object storage each is a few round trips)."""
    expr, used = parse_where(source.spec.where, source.schema) if source.spec.where else (None, set())
    columns = [c for c in source.schema.names if c in set(META_COLUMNS) | used]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        parts = [p for chunk in pool.map(lambda fi: _read_file(source, fi, columns, expr), range(len(source.files)))
                 for p in chunk]
    sizes = [t.num_rows for _, _, t in parts]

    def column(name: str) -> pa.ChunkedArray:
        return pa.chunked_array([t.column(name).combine_chunks() for _, _, t in parts],
                                type=source.schema.field(name).type if name != "__row" else pa.int32())

    cluster = column("cluster_size").fill_null(1).to_numpy().astype(np.int64)
    if source.spec.repeat:
        keys = np.array([k for k, _ in source.spec.repeat])
        values = np.array([v for _, v in source.spec.repeat])
        copies = values[np.maximum(np.searchsorted(keys, cluster, side="right") - 1, 0)]
    else:
        copies = np.ones(len(cluster), np.int64)
    language = column("language").fill_null("").dictionary_encode().combine_chunks()
    topic = column("topic").fill_null("").dictionary_encode().combine_chunks()
    return SourceDocs(
        file=np.repeat(np.array([fi for fi, _, _ in parts], np.int32), sizes),
        row_group=np.repeat(np.array([g for _, g, _ in parts], np.int32), sizes),
        row=column("__row").to_numpy().astype(np.int32), tokens=column("token_count").to_numpy().astype(np.int64),
        copies=copies.astype(np.int64), language=language.indices.to_numpy().astype(np.int32),
        topic=topic.indices.to_numpy().astype(np.int32), languages=language.dictionary.to_pylist(),
        topics=topic.dictionary.to_pylist())


def _plan_tables(units: Units) -> list[pa.Table]:
    tables = []
    for a in range(0, max(len(units.tokens), 1), PLAN_PART_UNITS):
        b = min(a + PLAN_PART_UNITS, len(units.tokens))
        start, count = units.start[a:b], units.count[a:b]
        offsets = np.concatenate([[0], np.cumsum(count)]).astype(np.int32)
        rows = units.rows[start[0]: start[0] + offsets[-1]] if b > a else np.zeros(0, np.int32)
        tables.append(pa.Table.from_arrays([
            pa.array(units.window[a:b], pa.int32()), pa.array(units.source[a:b], pa.int32()),
            pa.array(units.file[a:b], pa.int32()), pa.array(units.row_group[a:b], pa.int32()),
            pa.array(units.epoch[a:b], pa.int32()),
            pa.array(units.tokens[a:b], pa.int64()), pa.array(units.take[a:b], pa.int64()),
            pa.ListArray.from_arrays(pa.array(offsets), pa.array(rows, pa.int32())),
        ], schema=PLAN_SCHEMA))
    return tables


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=10_000)
    return sink.getvalue().to_pybytes()


def _source_entry(s: Source, plan: SourcePlan, total: int) -> dict[str, Any]:
    m = s.manifest
    return {
        "label": s.label, "path": s.path, "kind": s.kind, "name": m.get("name"), "version": m.get("version"),
        "manifest_sha256": s.manifest_sha256, "weight": s.spec.weight, "where": s.spec.where,
        "repeat_by_cluster_size": {str(k): v for k, v in s.spec.repeat} or None, "files": s.files,
        "documents": plan.documents, "pool_tokens": plan.pool_tokens, "target_tokens": plan.target_tokens,
        "planned_tokens": plan.planned_tokens, "share": plan.planned_tokens / total,
        "epochs": round(plan.epochs, 4), "full_epochs": plan.full_epochs, "tokens_by_epoch": plan.tokens_by_epoch,
        # copies per epoch -> documents; and the tokens the copies beyond the first add per epoch
        "copies": {str(k): v for k, v in plan.copies_histogram.items()},
        "repeated_tokens_per_epoch": plan.pool_tokens - plan.selected_tokens,
        "tokens_by_language": plan.tokens_by_language, "tokens_by_topic": plan.tokens_by_topic,
    }


def _sum(dicts: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def mix(spec: MixSpec, target: str, log=print) -> dict[str, Any]:
    """Plan the mixture and write it to `target` (any store; locally built beside it and renamed into place,
    on object storage the manifest is written last). Raises SpecError with one line."""
    target = target.rstrip("/")
    local = is_local(target)
    if local and os.path.exists(target) and os.listdir(target) or not local and match(f"{target}/**"):
        raise SpecError(f"{target} is not empty: a mixture is written into a new folder")
    sources = open_sources(spec)
    docs = []
    for s in sources:
        docs.append(read_docs(s))
        log(f"  {s.label}: {len(docs[-1].tokens):,} documents selected of "
            f"{sum(f['rows'] for f in s.files):,}, {int(docs[-1].tokens.sum()):,} tokens")
    try:
        units, plans = plan_mixture(docs, [s.weight for s in spec.sources], spec.total_tokens, spec.seed,
                                    spec.window_tokens)
    except PlanError as exc:
        s = sources[exc.args[1]]
        raise SpecError(f"sources[{s.index}] ({s.spec.path}): {exc.args[0]}"
                        + (f" (where {s.spec.where!r})" if s.spec.where else "")) from None
    total = sum(p.planned_tokens for p in plans)
    warnings = [f"{s.label} repeats {p.epochs:.2f} epochs, above warn_epochs = {spec.warn_epochs:g}: "
                f"{p.pool_tokens:,} tokens per epoch for a target of {p.target_tokens:,}"
                for s, p in zip(sources, plans, strict=True) if p.epochs > spec.warn_epochs]
    by_epoch = [0] * max(len(p.tokens_by_epoch) for p in plans)  # tokens in each source's e-th pass
    for p in plans:
        for e, t in enumerate(p.tokens_by_epoch):
            by_epoch[e] += t
    build = target + ".tmp-mix" if local else target
    if local:
        shutil.rmtree(build, ignore_errors=True)
    plan_files = []
    for k, table in enumerate(_plan_tables(units)):
        data = _parquet_bytes(table)
        rel = f"plan/part-{k:05d}.parquet"
        write_bytes(join(build, rel), data)
        plan_files.append({"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                           "rows": table.num_rows})
    from outputs.run_files import tokenmill_version

    manifest = {
        "kind": MIXTURE_KIND, "name": spec.name, "seed": spec.seed, "total_tokens": spec.total_tokens,
        "warn_epochs": spec.warn_epochs, "window_tokens": spec.window_tokens, "spec": spec.raw,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "tokenmill_version": tokenmill_version(),
        "tokenizer": sources[0].manifest["tokenizer"],
        "sources": [_source_entry(s, p, total) for s, p in zip(sources, plans, strict=True)],
        "plan": {"files": plan_files, "units": int(len(units.tokens)), "windows": int(units.window.max()) + 1,
                 "entries": int(len(units.rows)), "tokens": total},
        "composition": {
            "by_source": {s.label: p.planned_tokens for s, p in zip(sources, plans, strict=True)},
            "by_language": _sum([p.tokens_by_language for p in plans]),
            "by_topic": _sum([p.tokens_by_topic for p in plans]),
            "by_epoch": by_epoch,
        },
        "warnings": warnings,
    }
    write_bytes(join(build, "manifest.json"), json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    if local:
        if os.path.exists(target):
            os.rmdir(target)
        os.rename(build, target)
    return manifest


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
    problems = []
    listed = {f["path"] for f in manifest["plan"]["files"]} | {"manifest.json"}
    present = {p.removeprefix(f"{target}/"): n for p, n in match(f"{target}/**")} if not is_local(target) else {
        os.path.relpath(os.path.join(r, n), target).replace(os.sep, "/"): os.path.getsize(os.path.join(r, n))
        for r, _d, names in os.walk(target) for n in names}
    for rel in sorted(set(present) - listed):
        problems.append(f"{rel}: not listed in the manifest")
    for f in manifest["plan"]["files"]:
        if f["path"] not in present:
            problems.append(f"{f['path']}: missing")
        elif present[f["path"]] != f["bytes"]:
            problems.append(f"{f['path']}: size {present[f['path']]} != {f['bytes']}")
        elif hashlib.sha256(read_bytes(join(target, f["path"]))).hexdigest() != f["sha256"]:
            problems.append(f"{f['path']}: sha256 mismatch")
    if problems:
        return problems
    for s in manifest["sources"]:
        m = join(s["path"], "manifest.json")
        if not exists(m):
            problems.append(f"source {s['label']}: {s['path']} is gone")
            continue
        if hashlib.sha256(read_bytes(m)).hexdigest() != s["manifest_sha256"]:
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
