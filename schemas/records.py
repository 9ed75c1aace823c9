"""The in-flight shapes of one document's journey: Record -> Document -> StagedRef (while the Document waits
in staging) -> a shard row and a kept LedgerRow, or a dropped LedgerRow (built from a Record, a Document, or
a LateDrop's staged Document).

These are plain dataclasses (picklable, no Beam) so every core can be unit-tested without a runner.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import xxhash

# Stage names, in pipeline order. The ledger's `stage` column holds one of these; stats derive the funnel
# from that order, so a new stage is added here once. Language ID is a signal step, not a stage: it labels
# every document and the `language` filter in the filter slot applies the recipe's keep rule.
STAGE_READ = "read"
STAGE_URL = "url"  # URL-only filters, run before extraction
# Cheap-first language guess on tag-stripped HTML, before extraction (filters.language.precheck_margin).
STAGE_LANGUAGE_PRECHECK = "language_precheck"
STAGE_EXTRACT = "extract"
STAGE_FILTERS = "filters"
# Benchmark test-set overlap (decontamination/): after the filters, before classifiers, dedup and tokenization.
STAGE_DECONTAMINATION = "decontamination"
# The score a contaminated document carries: distinct n-grams shared with its best-matching benchmark item
# (a shard column when decontamination flags instead of dropping).
CONTAMINATION_SCORE = "contamination_ngrams"
# Reasons more than one part of the project names (the stage that decides, the CLI and report that show it).
REASON_CONTAMINATED = "contaminated"
REASON_DUPLICATE_OF_RELEASE = "duplicate_of_release"  # exact or near dedup against [dedup] against's releases
# A step raised on this record (pipelines/isolation.py): a bug or a hostile record, dropped instead of failing
# the job. Its detail is "<step>: <exception type>: <message>".
REASON_INTERNAL_ERROR = "internal_error"
STAGE_CLASSIFIERS = "classifiers"
STAGE_EXACT_DEDUP = "exact_dedup"
STAGE_NEAR_DEDUP = "near_dedup"
STAGE_TOKENIZE = "tokenize"
STAGE_KEPT = "kept"
STAGES: tuple[str, ...] = (
    STAGE_READ,
    STAGE_URL,
    STAGE_LANGUAGE_PRECHECK,
    STAGE_EXTRACT,
    STAGE_FILTERS,
    STAGE_DECONTAMINATION,
    STAGE_CLASSIFIERS,
    STAGE_EXACT_DEDUP,
    STAGE_NEAR_DEDUP,
    STAGE_TOKENIZE,
)

# Every reason a ledger row can name, by the stage that gives it (the ledger's `reason` column; a kept row's
# reason is empty or a flag: `contaminated`). `tokenmill inspect --reason` refuses any other value with this
# list; tests/test_cli_help.py checks it against the reasons the code's stages return.
DROP_REASONS: dict[str, tuple[str, ...]] = {
    STAGE_READ: ("http_unparsable", "http_redirect", "http_error", "http_status", "not_text", "not_html",
                 "record_cut_short", "no_content_length", "empty_body", "too_large"),
    STAGE_URL: ("url_domain_blocked", "url_blocked", "url_banned_word", "url_soft_banned_words",
                "url_banned_subword"),
    STAGE_LANGUAGE_PRECHECK: ("language_not_kept",),
    STAGE_EXTRACT: ("empty_text", "extract_error", "extract_timeout"),
    STAGE_FILTERS: (
        "language_not_kept", "language_score_low",
        "gopher_short_doc", "gopher_long_doc", "gopher_below_avg_word_length", "gopher_above_avg_word_length",
        "gopher_too_many_hashes", "gopher_too_many_ellipsis", "gopher_too_many_bullets",
        "gopher_too_many_end_ellipsis", "gopher_below_alpha_threshold", "gopher_few_stop_words",
        "dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac",
        *(f"top_{n}_gram" for n in (2, 3, 4)), *(f"duplicated_{n}_n_grams" for n in range(5, 11)),
        "c4_lorem_ipsum", "c4_curly_bracket", "c4_too_few_sentences",
        "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio",
        "bad_words",
    ),
    STAGE_DECONTAMINATION: (REASON_CONTAMINATED,),
    STAGE_CLASSIFIERS: ("quality_classifier", "topic_dropped"),
    STAGE_EXACT_DEDUP: ("exact_duplicate", REASON_DUPLICATE_OF_RELEASE),
    STAGE_NEAR_DEDUP: ("near_duplicate", REASON_DUPLICATE_OF_RELEASE),
    STAGE_TOKENIZE: (),
}
# Any stage may also drop a record a step raised on.
REASONS: tuple[str, ...] = tuple(sorted({r for rs in DROP_REASONS.values() for r in rs} | {REASON_INTERNAL_ERROR}))

# WARC record types that carry a document and therefore get exactly one ledger row each.
# warcinfo, request, metadata and revisit records describe other records; they are counted in stats.json
# (read/skipped_record_types) but have no ledger row.
CONTENT_RECORD_TYPES: frozenset[str] = frozenset({"response", "resource", "conversion"})


# What a run's doc ids are, as manifest.json's `doc_id` entry (carried into releases) and the doc_id column's
# Parquet field metadata (DOC_ID_METADATA_KEY) say: `source` is the ledger's column of that name, so any id can
# be recomputed from its ledger row.
DOC_ID_SCHEME = "xxh3_128(source, WARC-Record-ID)"
# Runs and releases whose manifest has no `doc_id` entry (before 2026-12): 16 hex digits of the file's base name.
LEGACY_DOC_ID_SCHEME = "xxh3_64(base name, WARC-Record-ID)"
DOC_ID_METADATA_KEY = "tokenmill.doc_id"


def doc_id_scheme(manifest: dict) -> str:
    """The id scheme of a run's or release's manifest."""
    return manifest.get("doc_id", LEGACY_DOC_ID_SCHEME)


def make_doc_id(source: str, record_id: str) -> str:
    """The document's id: xxh3_128 of `source` (the file's name in the run, ingest.warc.source_name), a NUL
    byte and its WARC-Record-ID, UTF-8, as 32 hex digits (DOC_ID_SCHEME).

    128 bits because ids are join keys (staging, dedup, the per-file writer): two documents sharing one are
    silently merged. The chance that any two of n documents share an id is at most n^2 / 2^129: 1.5e-17 at
    10^11 documents (1.3e-20 at a 3-billion-record snapshot, where 64-bit ids collide with probability ~22 %).
    The source name is the path below the inputs' common folder, so ids are equal when a crawl is moved or read
    from gs:// instead of a local copy, and two files of one base name in different folders get different
    ids; WARC-Record-IDs are UUIDs, so the pair is unique in practice.
    """
    return xxhash.xxh3_128_hexdigest(f"{source}\x00{record_id}".encode())


def in_sample(doc_id: str, seed: int, rate: float) -> bool:
    """Seeded, order-free sampling: the same documents are sampled on every rerun and runner."""
    return xxhash.xxh3_64_intdigest(f"{seed}\x00{doc_id}".encode()) < rate * 2**64


@dataclass(slots=True)
class Record:
    """One WARC record as framed by the reader, before any decoding."""

    doc_id: str
    source: str  # the WARC file's name in the run: its path below the common folder of the inputs (source_name)
    offset: int  # byte offset of the record in the (compressed) file, for debugging
    record_type: str
    url: str
    warc_record_id: str
    crawl_date: str
    http_status: int | None
    content_type: str  # HTTP Content-Type (or the WARC Content-Type for resource/conversion records)
    body: bytes  # HTTP payload with transfer encodings removed
    truncated: bool = False  # the crawler cut the body (WARC-Truncated header); the record itself is whole
    # Bytes of the record missing because its file or gzip member ends inside it; -1 when the header has no
    # Content-Length (required by WARC; warcio then reads to the end of the member or file).
    cut_short: int = 0
    # The body's size as its record declares it (the WARC Content-Length less the HTTP head: the body as sent,
    # before transfer and content codings are removed), -1 without a Content-Length. read_warc decodes at most
    # ReadConfig.max_body_bytes + 1 bytes of a body, so `body` may be shorter than the page (triage: too_large).
    declared_size: int = -1


@dataclass(frozen=True, slots=True)
class RecordMeta:
    """The record facts a Document carries along only for its ledger row."""

    offset: int
    record_type: str
    http_status: int | None
    content_type: str

    @classmethod
    def of(cls, record: Record) -> RecordMeta:
        return cls(record.offset, record.record_type, record.http_status, record.content_type)


@dataclass(slots=True)
class Document:
    """A record that reached text form. Stages add signals to `scores` and fill the later fields."""

    doc_id: str
    source: str
    url: str
    warc_record_id: str
    crawl_date: str
    meta: RecordMeta
    text: str
    title: str = ""
    published_date: str = ""
    language: str = ""
    language_score: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    modified_by: list[str] = field(default_factory=list)  # names of text modifiers that changed the text
    tokens: bytes = b""  # little-endian uint32 token ids, end-of-text included
    token_count: int = 0
    # Duplicate cluster: the id of the document that represents it (empty when the document has no
    # duplicate) and, on that kept document, how many input documents the cluster holds.
    cluster_id: str = ""
    cluster_size: int = 1
    topic: str = ""
    # A finding that keeps the document (decontamination with action "flag"): its kept ledger row carries the
    # reason, score and detail.
    flag: Decision | None = None

    # Pickling (Beam's coder for Documents, staging files): every field in order, as dataclasses does for slots,
    # except that the score names come back interned: a decoded document otherwise carries its own copy of
    # every name (~30 strings, ~1.9 KB of its ~8.2 KB decoded on the bench crawl).
    def __getstate__(self) -> list:
        return [getattr(self, name) for name in _DOCUMENT_FIELDS]

    def __setstate__(self, state: list) -> None:
        for name, value in zip(_DOCUMENT_FIELDS, state, strict=True):
            object.__setattr__(self, name, value)
        self.scores = {sys.intern(name): value for name, value in self.scores.items()}

    @classmethod
    def of_record(cls, record: Record, text: str, title: str = "", published_date: str = "") -> Document:
        """The Document a framed record becomes once its text is known."""
        return cls(doc_id=record.doc_id, source=record.source, url=record.url,
                   warc_record_id=record.warc_record_id, crawl_date=record.crawl_date, meta=RecordMeta.of(record),
                   text=text, title=title, published_date=published_date)


_DOCUMENT_FIELDS = tuple(f.name for f in fields(Document))


@dataclass(slots=True)
class StagedRef:
    """What the steps after staging (classifier cut, dedup, the per-file writer) carry of a document, ~0.3 KB
    pickled: where its staged Document is, and the few values those steps decide on. The Document itself
    (text, signals; untokenized) waits in its staging file (outputs/staging.py); the per-file writer reads it
    back, tokenizes it if it survived, and applies `cluster_id` / `cluster_size` from here.

    Why not the Document: the local runner (FnApiRunner) keeps every shuffle in its driver and hands a
    worker whole partitions, so its memory peaks grow with what these steps carry per document."""

    doc_id: str
    source: str
    staged: str  # staging file
    staged_at: int  # byte offset of the document's frame in it
    token_count: int  # 0 until the per-file writer tokenizes the survivors; it then reads them back by tokens
    exact_key: str  # dedup.exact.exact_key of the text
    signature: bytes = b""  # MinHash values as little-endian uint64 (near dedup only)
    quality: float | None = None  # scores["quality_score"] when the quality classifier ran
    topic: str = ""
    topic_score: float | None = None
    cluster_id: str = ""  # as on Document
    cluster_size: int = 1
    text: str = ""  # only while near dedup confirms a cluster (read back from staging for it)
    offset: int = 0  # the record's byte offset in its input file (the first_seen survivor rule)

    # Pickled as its values only: a slotted dataclass otherwise pickles a dict of its field names, per ref.
    def __getstate__(self) -> tuple:
        return tuple(getattr(self, name) for name in _REF_FIELDS)

    def __setstate__(self, state: tuple) -> None:
        for name, value in zip(_REF_FIELDS, state, strict=True):
            object.__setattr__(self, name, value)


_REF_FIELDS = tuple(f.name for f in fields(StagedRef))


@dataclass(frozen=True, slots=True)
class Decision:
    """Why a stage dropped something. `score` is the signal that crossed the threshold (NaN when none)."""

    stage: str
    reason: str
    score: float = float("nan")
    detail: str = ""  # free text for humans: an exception message, the offending value


class LateDrop(NamedTuple):
    """A document dropped after staging (classifier cut, dedup). Its ledger row is built where its input
    file's ledger pieces are written, from the staged Document with the ref's cluster fields."""

    ref: StagedRef
    decision: Decision


@dataclass(slots=True)
class LedgerRow:
    """One row of out/ledger: the fate of one content record. Built by `ledger_row`, never by hand."""

    doc_id: str
    source: str
    offset: int
    record_type: str
    url: str
    warc_record_id: str
    crawl_date: str
    http_status: int | None
    content_type: str
    stage: str
    reason: str
    kept: bool
    score: float
    detail: str
    language: str
    language_score: float | None
    token_count: int | None
    scores: dict[str, float]
    modified_by: list[str]
    text: str | None
    cluster_id: str | None = None
    topic: str | None = None


def ledger_row_for_record(record: Record, decision: Decision) -> LedgerRow:
    """Ledger row for a record dropped before it became a Document (read or extract stage)."""
    return LedgerRow(
        doc_id=record.doc_id,
        source=record.source,
        offset=record.offset,
        record_type=record.record_type,
        url=record.url,
        warc_record_id=record.warc_record_id,
        crawl_date=record.crawl_date,
        http_status=record.http_status,
        content_type=record.content_type,
        stage=decision.stage,
        reason=decision.reason,
        kept=False,
        score=decision.score,
        detail=decision.detail,
        language="",
        language_score=None,
        token_count=None,
        scores={},
        modified_by=[],
        text=None,
    )


def ledger_row_for_document(doc: Document, decision: Decision | None, text: str | None) -> LedgerRow:
    """Ledger row for a Document: dropped (decision given) or kept (decision None; a flag it carries gives the
    row its reason, score and detail)."""
    shown = doc.flag if decision is None else None
    return LedgerRow(
        doc_id=doc.doc_id,
        source=doc.source,
        offset=doc.meta.offset,
        record_type=doc.meta.record_type,
        url=doc.url,
        warc_record_id=doc.warc_record_id,
        crawl_date=doc.crawl_date,
        http_status=doc.meta.http_status,
        content_type=doc.meta.content_type,
        stage=decision.stage if decision else STAGE_KEPT,
        reason=decision.reason if decision else (shown.reason if shown else ""),
        kept=decision is None,
        score=(decision or shown).score if (decision or shown) else float("nan"),
        detail=(decision or shown).detail if (decision or shown) else "",
        language=doc.language,
        language_score=doc.language_score,
        token_count=doc.token_count if decision is None else None,
        scores=dict(doc.scores),
        modified_by=list(doc.modified_by),
        text=text,
        cluster_id=doc.cluster_id or None,
        topic=doc.topic or None,
    )




def ledger_row_for_drop(doc: Document, decision: Decision, seed: int, rate: float) -> LedgerRow:
    """Ledger row of a dropped Document, carrying its text when the seeded sample (`rate`) picks it."""
    return ledger_row_for_document(doc, decision, doc.text if in_sample(doc.doc_id, seed, rate) else None)
