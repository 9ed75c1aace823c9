"""A mixture's sources: the release or finished run each names, checked against the others (one tokenizer,
`where` columns that exist), and the small columns of the documents it selects, read by Arrow with the
`where` pushed into it, a row group at a time: summed per row group for the plan (`SourceScan.groups`,
mixing.plan.SourceGroups), read again when the plan writes a row group's rows unless the scan kept them
(`SourceScan.load_rows`)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mixing.folder import MIXTURE_KIND
from mixing.plan import GroupDocs, PlanError, SourceGroups, entry_rows
from mixing.spec import MixSpec, SourceSpec, SpecError, copies_by_cluster_size
from mixing.where import WhereError, parse_where
from outputs.run_files import FIX_AND_RERUN, run_failure
from schemas.tables import shard_schema
from storage.files import exists, is_local, join, open_read, read_bytes
from storage.paths import UnsafePathError, check_entries

# What the plan reads of every selected row (besides the `where` columns): never the tokens.
META_COLUMNS = ["token_count", "cluster_size", "language", "topic"]
# The scan keeps each row group's selected rows and copies (2 + 1 bytes a document in most sources) until
# they take this much, so writing the plan reads those row groups' columns no more; the rest are read again
# from the shards, which costs: `python bench/mix_scale.py --rows-cache-bytes 0` at 6f69510, 10^7 documents
# 12.8 -> 28.5 s, 10^8 114.9 -> 390.9 s. 256 MiB holds ~85 M selected documents' rows; peak RSS at 10^8 was
# 724 MiB with the cache, 421 MiB without.
ROWS_CACHE_BYTES = 256 << 20


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


def _filtered(pf: pq.ParquetFile, g: int, columns: list[str], expr) -> pa.Table:
    """Row group `g`'s selected rows: `columns` and __row (the row within the row group), filtered by `where`."""
    table = pf.read_row_group(g, columns=columns)
    table = table.append_column("__row", pa.array(np.arange(table.num_rows, dtype=np.int32)))
    return table.filter(expr) if expr is not None else table


def _labels(column: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """A string column's distinct values (nulls as "") in order of first appearance, and each row's index."""
    encoded = column.fill_null("").combine_chunks().dictionary_encode()
    return encoded.dictionary.to_pylist(), encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)


@dataclass
class _Group:
    """One row group's sums, as the scan gives them (labels by name: codes are given once all are seen)."""

    file: int
    row_group: int
    documents: int
    selected_tokens: int
    entries: int
    tokens: int
    copies: dict[int, int]
    languages: dict[str, int]  # tokens x copies per language
    topics: dict[str, int]
    rows: tuple[np.ndarray, np.ndarray] | None  # the selected rows and their copies, in the smallest integer type


def _narrow(values: np.ndarray) -> np.ndarray:
    """Non-negative integers in the smallest unsigned type holding them (for the rows cache)."""
    top = int(values.max()) if len(values) else 0
    return values.astype(np.uint8 if top < 1 << 8 else np.uint16 if top < 1 << 16 else np.uint32 if top < 1 << 32
                         else np.int64)


class SourceScan:
    """A source's selected documents read a row group at a time: `groups()` sums every row group for the
    plan (mixing.plan.SourceGroups), `load` reads a row group's documents again when the plan needs its rows.
    Nothing here holds a column of the whole source (issue 35: 10^8 documents planned in 724 MiB peak RSS,
    bench/mix_scale.py)."""

    def __init__(self, source: Source, threads: int = 8, cache_left: list[int] | None = None) -> None:
        self.source, self.threads = source, threads
        self.expr, used = parse_where(source.spec.where, source.schema) if source.spec.where else (None, set())
        self.columns = [c for c in source.schema.names if c in set(META_COLUMNS) | used]
        self.rows_columns = [c for c in source.schema.names if c in {"cluster_size"} | used]
        self.languages: dict[str, int] = {}
        self.topics: dict[str, int] = {}
        # (file, row_group) -> its selected rows and copies, while they fit the bytes left in `cache_left`
        # (ROWS_CACHE_BYTES, one budget shared by the sources of a mix: `scan_sources`)
        self.rows_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.cache_left = [ROWS_CACHE_BYTES] if cache_left is None else cache_left

    def _copies(self, table: pa.Table) -> np.ndarray:
        """Each selected row's copies in the mixture (from its cluster_size, the source's `copies` rule)."""
        cluster = table.column("cluster_size").fill_null(1).to_numpy().astype(np.int64)
        return copies_by_cluster_size(self.source.spec.repeat, cluster)

    def _docs(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tokens = table.column("token_count").to_numpy().astype(np.int64)
        return table.column("__row").to_numpy().astype(np.int32), tokens, self._copies(table)

    def _read_groups(self, fi: int, row_groups: list[int], columns: list[str]) -> Iterator[tuple[int, pa.Table]]:
        """(g, its selected rows' `columns`) for row groups the scan saw in file `fi`, the file opened once;
        a row group no longer there stops the mix (the file changed since the scan)."""
        path = self.source.files[fi]["path"]
        with open_read(join(self.source.path, path)) as stream:
            pf = pq.ParquetFile(stream)
            for g in row_groups:
                if g >= pf.metadata.num_row_groups:
                    raise PlanError(f"{path}: no row group {g}: it changed while mixing")
                yield g, _filtered(pf, g, columns, self.expr)

    def _scan_file(self, fi: int) -> list[_Group]:
        out = []
        with open_read(join(self.source.path, self.source.files[fi]["path"])) as stream:
            pf = pq.ParquetFile(stream)
            for g in range(pf.metadata.num_row_groups):
                table = _filtered(pf, g, self.columns, self.expr)
                _, tokens, copies = self._docs(table)
                weight = tokens * copies
                sizes, counts = np.unique(copies, return_counts=True)
                sums = []
                for name in ("language", "topic"):
                    labels, codes = _labels(table.column(name))
                    per = np.bincount(codes, weights=weight, minlength=len(labels)).astype(np.int64)
                    sums.append({label: int(t) for label, t in zip(labels, per, strict=True)})
                # the rows for the cache, unless it is full (read racily: it only spares work)
                rows = (_narrow(table.column("__row").to_numpy()), _narrow(copies)) if self.cache_left[0] else None
                out.append(_Group(fi, g, table.num_rows, int(tokens.sum()), int(copies.sum()), int(weight.sum()),
                                  {int(s): int(c) for s, c in zip(sizes, counts, strict=True)}, *sums, rows))
        return out

    def groups(self) -> SourceGroups:
        """Every row group's sums, files read in parallel (on object storage each is a few round trips);
        the row groups with no entry are left out (they make no unit)."""
        keep: dict[str, list] = {k: [] for k in ("file", "row_group", "entries", "tokens")}
        sparse = {name: ([0], [], []) for name in ("language", "topic")}
        documents, selected, histogram = 0, 0, Counter()
        with concurrent.futures.ThreadPoolExecutor(self.threads) as pool:
            for chunk in pool.map(self._scan_file, range(len(self.source.files))):
                for grp in chunk:
                    documents += grp.documents
                    selected += grp.selected_tokens
                    histogram.update(grp.copies)
                    for name, labels in (("language", self.languages), ("topic", self.topics)):
                        for label in getattr(grp, name + "s"):  # every label selected, as Arrow's encoding did
                            labels.setdefault(label, len(labels))
                    if grp.entries == 0:
                        continue
                    size = grp.rows[0].nbytes + grp.rows[1].nbytes if grp.rows is not None else None
                    if size is not None and size <= self.cache_left[0]:
                        self.rows_cache[grp.file, grp.row_group] = grp.rows
                        self.cache_left[0] -= size
                    else:
                        self.cache_left[0] = 0  # the cache ends here: the row groups kept are a prefix
                    for k in keep:
                        keep[k].append(getattr(grp, k))
                    for name, labels in (("language", self.languages), ("topic", self.topics)):
                        offsets, codes, tokens = sparse[name]
                        sums = getattr(grp, name + "s")
                        codes.extend(labels[label] for label in sums)
                        tokens.extend(sums.values())
                        offsets.append(len(codes))
        lang, topic = ((np.array(o, np.int64), np.array(c, np.int64), np.array(t, np.int64))
                       for o, c, t in (sparse["language"], sparse["topic"]))
        return SourceGroups(
            file=np.array(keep["file"], np.int32), row_group=np.array(keep["row_group"], np.int32),
            entries=np.array(keep["entries"], np.int64), tokens=np.array(keep["tokens"], np.int64),
            language_offsets=lang[0], language_codes=lang[1], language_tokens=lang[2],
            topic_offsets=topic[0], topic_codes=topic[1], topic_tokens=topic[2],
            documents=documents, selected_tokens=selected,
            copies_histogram={s: histogram[s] for s in sorted(histogram)},
            languages=list(self.languages), topics=list(self.topics), load=self.load)

    def _load_file(self, fi: int, row_groups: list[int]) -> list[GroupDocs]:
        out = []
        for g, table in self._read_groups(fi, row_groups, self.columns):
            row, tokens, copies = self._docs(table)
            codes = []
            for name, known in (("language", self.languages), ("topic", self.topics)):
                labels, local = _labels(table.column(name))
                if any(label not in known for label in labels):
                    raise PlanError(f"{self.source.files[fi]['path']} row group {g}: a {name} the scan did not "
                                    "see: it changed while mixing")
                codes.append(np.array([known[label] for label in labels], np.int32)[local]
                             if len(local) else np.zeros(0, np.int32))
            out.append(GroupDocs(row=row, tokens=tokens, copies=copies, language=codes[0], topic=codes[1]))
        return out

    def load(self, fi: int, g: int) -> GroupDocs:
        """Row group `g` of file `fi`: its selected documents."""
        return self._load_file(fi, [g])[0]

    def _rows_file(self, fi: int, row_groups: list[int]) -> list[np.ndarray]:
        return [entry_rows(table.column("__row").to_numpy(), self._copies(table))
                for _g, table in self._read_groups(fi, row_groups, self.rows_columns)]

    def load_rows(self, keys: list[tuple[int, int]]) -> list[np.ndarray]:
        """The entries' rows (mixing.plan.entry_rows) of (file, row_group)s, in the order asked: from the scan's
        cache, else read again (only cluster_size and the `where` columns), each file opened once, files in
        parallel."""
        by_file: dict[int, list[int]] = {}
        for fi, g in keys:
            if (fi, g) not in self.rows_cache:
                by_file.setdefault(fi, []).append(g)
        found = {k: entry_rows(*self.rows_cache[k]) for k in keys if k in self.rows_cache}
        if by_file:
            with concurrent.futures.ThreadPoolExecutor(self.threads) as pool:
                read = pool.map(lambda fi: self._rows_file(fi, by_file[fi]), by_file)
                for fi, rows in zip(by_file, read, strict=True):
                    found.update(((fi, g), r) for g, r in zip(by_file[fi], rows, strict=True))
        return [found[k] for k in keys]


def scan_sources(sources: list[Source], cache_bytes: int | None = None) -> list[SourceScan]:
    """A SourceScan per source, sharing one rows cache budget of `cache_bytes` (ROWS_CACHE_BYTES)."""
    left = [ROWS_CACHE_BYTES if cache_bytes is None else cache_bytes]
    return [SourceScan(s, cache_left=left) for s in sources]


def mixture_loader(scans: list[SourceScan]) -> Callable[[list[tuple[int, int, int]]], list[np.ndarray]]:
    """mixing.plan.unit_rows' `load` over every source: (source, file, row_group)s -> their entries' rows."""

    def load(keys: list[tuple[int, int, int]]) -> list[np.ndarray]:
        out: dict[tuple[int, int, int], np.ndarray] = {}
        for si in sorted({k[0] for k in keys}):
            mine = [(fi, g) for s, fi, g in keys if s == si]
            out.update(((si, fi, g), d) for (fi, g), d in zip(mine, scans[si].load_rows(mine), strict=True))
        return [out[k] for k in keys]

    return load
