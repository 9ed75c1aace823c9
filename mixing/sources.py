"""A mixture's sources: the release or finished run each names, checked against the others (one tokenizer,
`where` columns that exist), and the small columns of the documents it selects (`SourceDocs` for
mixing.plan), read by Arrow with the `where` pushed into it."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mixing.folder import MIXTURE_KIND
from mixing.plan import SourceDocs
from mixing.spec import MixSpec, SourceSpec, SpecError
from mixing.where import WhereError, parse_where
from outputs.run_files import FIX_AND_RERUN, run_failure
from schemas.tables import shard_schema
from storage.files import exists, is_local, join, open_read, read_bytes
from storage.paths import UnsafePathError, check_entries

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
        failure = run_failure(path)
        if failure is not None:
            raise SpecError(f"{where}: the run there ended in an error: {failure}; {FIX_AND_RERUN}")
    else:
        raise SpecError(f"{where}: manifest.json is not a tokenmill release's or run's")
    try:  # the plan and the reader open these files by their listed paths
        check_entries(entries, f"{manifest_path} {'files' if kind == 'release' else 'shards'}")
    except UnsafePathError as exc:
        raise SpecError(f"sources[{index}]: {exc}") from None
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
