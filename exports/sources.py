"""What an export reads: a release, or a mixture's sources, as a list of parts (one source shard each) whose
documents come a row group at a time.

A release is one source of weight 1 holding all its documents. A mixture (`tokenmill mix`) is its sources
with their shares of the mixture's tokens, each source's documents chosen by its `where` and repeated by its
`repeat_by_cluster_size` table, as the mixture's plan counts them; the mixture's own order and token budget
are the training stack's business once exported (Megatron and NeMo draw from each source by its weight,
`datasets.interleave_datasets` takes the same weights as probabilities).

Before anything is written the source must pass `tokenmill verify` (every shard's sha256), so an export never
carries a damaged file's documents into a training run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from release.publish import ReleaseError, verify
from schemas.tables import SHARD_BASE_FIELDS
from storage.files import exists, is_local, join, open_read, read_bytes

# Shard columns an export carries besides the tokens (score columns, one per scorer, are added per source).
META_COLUMNS = ["doc_id", "url", "warc_record_id", "crawl_date", "title", "published_date", "language",
                "language_score", "token_count", "cluster_size", "topic"]


BASE_NAMES = {f.name for f in SHARD_BASE_FIELDS}


class ExportError(ValueError):
    """The export cannot start or go on: one line for the user, exit 2."""


@dataclass
class Part:
    """One shard of one source: where it is and which of its rows the export takes."""

    source: int  # index into ExportSource.sources
    index: int  # the part's position in its source (file order of the source's manifest)
    path: str
    sha256: str
    rows: int
    tokens: int


@dataclass
class Source:
    label: str  # safe as a folder name (`safe_label`)
    name: str
    path: str
    manifest_sha256: str
    weight: float  # the share of the mixture's tokens (1.0 for a release)
    where: str | None
    repeat: tuple[tuple[int, int], ...]
    schema: pa.Schema
    parts: list[Part] = field(default_factory=list)


@dataclass
class ExportSource:
    kind: str  # "release" or "mixture"
    path: str
    name: str
    version: str
    manifest_sha256: str
    tokenizer: dict
    license: str | None
    sources: list[Source]

    @property
    def parts(self) -> list[Part]:
        return [p for s in self.sources for p in s.parts]


# The names an export writes at its root: no source folder may take one.
RESERVED = {"manifest.json", "readme.md", "data", "index.json", "blend.megatron.txt", "blend.nemo.yaml",
            "llm-foundry.yaml", "combined.json", ".progress"}


def score_columns(source: Source) -> list[str]:
    """The source's score columns (one per scorer of its run), in shard order."""
    return [c for c in source.schema.names if c not in BASE_NAMES]


def folder_of(src: ExportSource, source: Source) -> str:
    """Where a source's files go in the export: the root for a release, a folder per source for a mixture."""
    return "" if src.kind == "release" else f"{source.label}/"


def safe_label(text: str, taken: set[str]) -> str:
    """A folder name for a source label from a manifest (hostile input: it names paths): letters, digits and
    `._-`, at most 80 characters, never starting with a dot, none of the export's own root names, and unique
    among `taken` without regard to case (a case-insensitive store would make "Web" and "web" one folder)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80].lstrip(".") or "source"
    label, n = base, 1
    while label.casefold() in taken or label.casefold() in RESERVED:
        n += 1
        label = f"{base}-{n}"
    taken.add(label.casefold())
    return label


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _release_source(path: str, manifest: dict, raw: bytes, label: str, weight: float, where: str | None,
                    repeat: tuple[tuple[int, int], ...], index: int) -> Source:
    files = manifest["files"]
    if not files:
        raise ExportError(f"{path}: the release lists no shard")
    with open_read(join(path, files[0]["path"])) as stream:
        schema = pq.ParquetFile(stream).schema_arrow
    source = Source(label=label, name=str(manifest.get("name", "")), path=path, manifest_sha256=_sha256(raw),
                    weight=weight, where=where, repeat=repeat, schema=schema)
    source.parts = [Part(index, i, join(path, f["path"]), f["sha256"], f["rows"], f.get("tokens", 0))
                    for i, f in enumerate(files)]
    return source


def _checked_release(path: str) -> tuple[dict, bytes]:
    """The manifest of an intact release at `path`: ExportError with the first problem `verify` finds, or
    when the manifest changed while it was being checked (what is exported is what was verified)."""
    before = read_bytes(join(path, "manifest.json"))
    try:
        problems = verify(path)
    except ReleaseError as exc:
        raise ExportError(str(exc)) from None
    if problems:
        more = f" (and {len(problems) - 1} more; `tokenmill verify {path}` lists them)" if len(problems) > 1 else ""
        raise ExportError(f"{path} fails verify: {problems[0]}{more}")
    raw = read_bytes(join(path, "manifest.json"))
    if raw != before:
        raise ExportError(f"{path}/manifest.json changed while the release was being verified: export again")
    return json.loads(raw), raw


def _mixture_terms(s: dict, where: str) -> tuple[float, str | None, tuple[tuple[int, int], ...]]:
    """(share, where, repeat table) of a mixture's source entry, checked: ExportError naming what is wrong
    (the manifest is input like any other)."""
    try:
        share = float(s["share"])
        repeat = tuple(sorted((int(k), int(v)) for k, v in (s.get("repeat_by_cluster_size") or {}).items()))
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{where}: unreadable share or repeat_by_cluster_size ({exc})") from None
    if not 0.0 <= share <= 1.0:
        raise ExportError(f"{where}: share {share} outside [0, 1]")
    if any(k < 1 or v < 0 for k, v in repeat):
        raise ExportError(f"{where}: repeat_by_cluster_size needs keys >= 1 and copies >= 0")
    clause = s.get("where")
    if clause is not None and not isinstance(clause, str):
        raise ExportError(f"{where}: where is not a string")
    return share, clause, repeat


def open_export_source(path: str) -> ExportSource:
    """The release or mixture at `path`, verified. Raises ExportError with one line."""
    from mixing.folder import mixture_manifest, verify_mixture

    path = path.rstrip("/")
    if is_local(path):
        import os

        path = os.path.abspath(path)  # blend files name the pairs by path: a training job runs elsewhere
    if not exists(join(path, "manifest.json")):
        raise ExportError(f"{path}: not a release or a mixture (no manifest.json)")
    try:
        mixture = mixture_manifest(path)
    except ValueError as exc:  # storage.paths.UnsafePathError
        raise ExportError(str(exc)) from None
    if mixture is None:
        manifest, raw = _checked_release(path)
        taken: set[str] = set()
        label = safe_label(f"{manifest.get('name', 'release')}-{manifest.get('version', '')}".rstrip("-"), taken)
        source = _release_source(path, manifest, raw, label, 1.0, None, (), 0)
        return ExportSource("release", path, str(manifest.get("name", "")), str(manifest.get("version", "")),
                            _sha256(raw), manifest["tokenizer"], None, [source])
    problems = verify_mixture(path, mixture)
    if problems:
        raise ExportError(f"{path} fails verify: {problems[0]}")
    raw = read_bytes(join(path, "manifest.json"))
    if json.loads(raw) != mixture:
        raise ExportError(f"{path}/manifest.json changed while the mixture was being verified: export again")
    sources, taken = [], set()
    tokenizer = None
    for i, s in enumerate(mixture["sources"]):
        manifest, source_raw = _checked_release(s["path"]) if "files" in json.loads(
            read_bytes(join(s["path"], "manifest.json"))) else (None, b"")
        if manifest is None:
            raise ExportError(f"{path}: source {s['label']} is a run's folder, not a release: release it, mix "
                              "again, then export")
        if _sha256(source_raw) != s["manifest_sha256"]:
            raise ExportError(f"{path}: source {s['label']} changed since the mix ({s['path']}/manifest.json has "
                              "another sha256): mix again")
        share, clause, repeat = _mixture_terms(s, f"{path}: source {s['label']}")
        source = _release_source(s["path"], manifest, source_raw, safe_label(str(s["label"]), taken), share,
                                 clause, repeat, i)
        if clause:
            from mixing.where import WhereError, parse_where

            try:
                parse_where(clause, source.schema)
            except WhereError as exc:
                raise ExportError(f"{path}: source {s['label']}: where: {exc}") from None
        sources.append(source)
        tokenizer = tokenizer or manifest["tokenizer"]
    return ExportSource("mixture", path, str(mixture.get("name", "")), "", _sha256(raw), tokenizer, None, sources)


def part_tables(source: Source, part: Part, columns: list[str]) -> Iterator[pa.Table]:
    """The part's documents, a row group at a time, as a table of `columns`: the rows its source's `where`
    selects, each repeated by the source's repeat table."""
    from mixing.spec import copies_by_cluster_size
    from mixing.where import parse_where

    expr, used = parse_where(source.where, source.schema) if source.where else (None, set())
    wanted = list(dict.fromkeys([*columns, *sorted(used), *(["cluster_size"] if source.repeat else [])]))
    with open_read(part.path) as stream:
        pf = pq.ParquetFile(stream)
        for g in range(pf.num_row_groups):
            table = pf.read_row_group(g, columns=wanted)
            if expr is not None:
                table = table.filter(expr)
            if source.repeat and table.num_rows:
                cluster = table.column("cluster_size").fill_null(1).to_numpy().astype(np.int64)
                table = table.take(np.repeat(np.arange(table.num_rows), copies_by_cluster_size(source.repeat, cluster)))
            yield table.select(columns)


def int32_ids(values: np.ndarray) -> np.ndarray:
    """Token ids as int32 (hf, mds, litdata); ValueError naming an id that does not fit, never a wrapped one."""
    if len(values) and int(values.max()) > np.iinfo(np.int32).max:
        raise ValueError(f"token id {int(values.max())} does not fit int32")
    return values.astype("<i4", copy=False)


def flat_tokens(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(every document's token ids back to back, each document's count) of a table's `tokens` column."""
    column = table.column("tokens").combine_chunks()
    offsets = column.offsets.to_numpy()
    values = column.values.to_numpy()[offsets[0]:offsets[-1]] if len(offsets) else np.zeros(0, np.uint32)
    return values, np.diff(offsets).astype(np.int64)
