"""Arrow schemas of the output files and the conversions into them.

out/shards/part-<n>.parquet: one row per kept document (SHARD_BASE_FIELDS + one float64 column per
    signal a stage recorded, named in the manifest) -- what training jobs read; cut across input files every
    output.shard_tokens tokens, in input order (input file, then doc_id): pipelines/recut.py.
out/ledger/part-<n>.parquet: one row per content record of the input (LEDGER_SCHEMA) -- what the inspect
    CLI and audits read; cut across input files every output.ledger_rows_per_part rows, in input order.
Both are zstd-compressed and in a fixed order (input order: input file, then doc_id), so reruns are
byte-identical. Every doc_id column carries its id scheme in its field metadata (DOC_ID_FIELD), as the manifest
does in its `doc_id` entry.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from schemas.records import DOC_ID_METADATA_KEY, DOC_ID_SCHEME, Document, LedgerRow, RecordMeta

# The doc_id column of every table: which ids it holds (schemas.records.make_doc_id) is in its field metadata.
DOC_ID_FIELD = pa.field("doc_id", pa.string(), nullable=False, metadata={DOC_ID_METADATA_KEY: DOC_ID_SCHEME})

SHARD_BASE_FIELDS: list[pa.Field] = [
    DOC_ID_FIELD,
    pa.field("url", pa.string()),
    pa.field("warc_record_id", pa.string()),
    pa.field("crawl_date", pa.string()),
    pa.field("title", pa.string()),
    pa.field("published_date", pa.string()),
    pa.field("language", pa.string()),
    pa.field("language_score", pa.float64()),
    pa.field("token_count", pa.int64()),
    pa.field("tokens", pa.list_(pa.uint32())),
    # Input documents this one stands for (itself plus its exact and near duplicates), for upsampling.
    pa.field("cluster_size", pa.int64()),
    pa.field("topic", pa.string()),  # "" unless a topic classifier ran
]

SCORE_STRUCT = pa.struct([pa.field("name", pa.string()), pa.field("value", pa.float64())])

LEDGER_SCHEMA = pa.schema(
    [
        DOC_ID_FIELD,
        pa.field("source", pa.string()),
        pa.field("offset", pa.int64()),
        pa.field("record_type", pa.string()),
        pa.field("url", pa.string()),
        pa.field("warc_record_id", pa.string()),
        pa.field("crawl_date", pa.string()),
        pa.field("http_status", pa.int32()),
        pa.field("content_type", pa.string()),
        pa.field("stage", pa.string()),  # the stage that dropped it, or "kept"
        pa.field("reason", pa.string()),  # "" when kept, unless a finding flagged it ("contaminated")
        pa.field("kept", pa.bool_()),
        pa.field("score", pa.float64()),  # the signal that crossed the threshold (null when kept unflagged)
        pa.field("detail", pa.string()),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float64()),
        pa.field("token_count", pa.int64()),
        # Every signal any stage computed for this document, kept and dropped alike, so thresholds can be
        # re-tuned from the ledger alone. A list of (name, value) rather than a map: readable by pyarrow,
        # DuckDB and Hugging Face datasets alike.
        pa.field("scores", pa.list_(SCORE_STRUCT)),
        pa.field("modified_by", pa.list_(pa.string())),
        pa.field("text", pa.string()),  # only for a seeded sample of dropped documents
        pa.field("cluster_id", pa.string()),  # the kept document of its duplicate cluster, if any
        pa.field("topic", pa.string()),
    ]
)


# out/dedup_index/part-<n>.parquet: one row per kept document, what a later run needs to deduplicate
# against this one once it is released ([dedup] against): the exact key, and with near dedup the MinHash band
# keys (the LSH join) and the signature (the candidates' check). Cut across input files every
# output.ledger_rows_per_part rows, in input order (input file, then doc_id), like the shards.
DEDUP_INDEX_SCHEMA = pa.schema(
    [
        DOC_ID_FIELD,
        pa.field("exact_key", pa.string()),  # dedup.exact.exact_key of the text
        pa.field("band_keys", pa.list_(pa.uint64())),  # dedup.minhash.band_keys (null without near dedup)
        pa.field("signature", pa.binary()),  # MinHash values as little-endian uint64 (null without near dedup)
    ]
)


def dedup_index_table(rows: list[tuple[str, str, list[int] | None, bytes | None]]) -> pa.Table:
    """(doc_id, exact_key, band_keys, signature) rows -> a DEDUP_INDEX_SCHEMA table."""
    return pa.Table.from_pydict(
        {name: [r[i] for r in rows] for i, name in enumerate(DEDUP_INDEX_SCHEMA.names)}, schema=DEDUP_INDEX_SCHEMA)


def shard_schema(score_columns: list[str]) -> pa.Schema:
    """Shard schema: the base fields plus one float64 column per recorded signal, in the given order."""
    return pa.schema(SHARD_BASE_FIELDS + [pa.field(name, pa.float64()) for name in score_columns])


def _nan_to_none(value: float | None) -> float | None:
    return None if value is None or value != value else value


def ledger_table(rows: list[LedgerRow]) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in LEDGER_SCHEMA.names}
    for r in rows:
        columns["doc_id"].append(r.doc_id)
        columns["source"].append(r.source)
        columns["offset"].append(r.offset)
        columns["record_type"].append(r.record_type)
        columns["url"].append(r.url)
        columns["warc_record_id"].append(r.warc_record_id)
        columns["crawl_date"].append(r.crawl_date)
        columns["http_status"].append(r.http_status)
        columns["content_type"].append(r.content_type)
        columns["stage"].append(r.stage)
        columns["reason"].append(r.reason)
        columns["kept"].append(r.kept)
        columns["score"].append(_nan_to_none(r.score))
        columns["detail"].append(r.detail)
        columns["language"].append(r.language)
        columns["language_score"].append(r.language_score)
        columns["token_count"].append(r.token_count)
        columns["scores"].append([{"name": k, "value": v} for k, v in sorted(r.scores.items())])
        columns["modified_by"].append(r.modified_by)
        columns["text"].append(r.text)
        columns["cluster_id"].append(r.cluster_id)
        columns["topic"].append(r.topic)
    return pa.Table.from_pydict(columns, schema=LEDGER_SCHEMA)


def shard_table(docs: list[Document], score_columns: list[str]) -> pa.Table:
    """Shard rows for kept documents. Token ids travel as packed uint32 bytes and are sliced, not boxed."""
    schema = shard_schema(score_columns)
    token_arrays = [np.frombuffer(d.tokens, dtype="<u4") for d in docs]
    offsets = np.zeros(len(docs) + 1, dtype=np.int32)
    np.cumsum([len(t) for t in token_arrays], out=offsets[1:])
    flat = np.concatenate(token_arrays) if token_arrays else np.zeros(0, dtype="<u4")
    tokens = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.uint32()))
    columns: dict[str, pa.Array | list] = {
        "doc_id": [d.doc_id for d in docs],
        "url": [d.url for d in docs],
        "warc_record_id": [d.warc_record_id for d in docs],
        "crawl_date": [d.crawl_date for d in docs],
        "title": [d.title for d in docs],
        "published_date": [d.published_date for d in docs],
        "language": [d.language for d in docs],
        "language_score": [d.language_score for d in docs],
        "token_count": [d.token_count for d in docs],
        "tokens": tokens,
        "cluster_size": [d.cluster_size for d in docs],
        "topic": [d.topic for d in docs],
    }
    for name in score_columns:
        columns[name] = [_nan_to_none(d.scores.get(name)) for d in docs]
    return pa.Table.from_pydict(columns, schema=schema)


# out/scored/part-<n>.parquet (with --keep-scored; cut across input files every output.ledger_rows_per_part rows,
# in input order: input file, then doc_id): every document that reached the filters, with the text as extracted
# (before any modifier) and every signal this run's filters computed. `tokenmill select` runs another recipe's
# filters, dedup and tokenizer on it without re-reading the crawl or re-extracting.
SCORED_SCHEMA = pa.schema(
    [
        DOC_ID_FIELD,
        pa.field("source", pa.string()),
        pa.field("offset", pa.int64()),
        pa.field("record_type", pa.string()),
        pa.field("http_status", pa.int32()),
        pa.field("content_type", pa.string()),
        pa.field("url", pa.string()),
        pa.field("warc_record_id", pa.string()),
        pa.field("crawl_date", pa.string()),
        pa.field("title", pa.string()),
        pa.field("published_date", pa.string()),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float64()),
        pa.field("scores", pa.list_(SCORE_STRUCT)),
        pa.field("text", pa.string()),
    ]
)


def scored_table(docs: list[Document]) -> pa.Table:
    rows = [
        {
            "doc_id": d.doc_id, "source": d.source, "offset": d.meta.offset, "record_type": d.meta.record_type,
            "http_status": d.meta.http_status, "content_type": d.meta.content_type, "url": d.url,
            "warc_record_id": d.warc_record_id, "crawl_date": d.crawl_date, "title": d.title,
            "published_date": d.published_date, "language": d.language, "language_score": d.language_score,
            "scores": [{"name": k, "value": v} for k, v in sorted(d.scores.items())], "text": d.text,
        }
        for d in docs
    ]
    return pa.Table.from_pylist(rows, schema=SCORED_SCHEMA)


def document_from_scored(row: dict) -> Document:
    """A scored row back into the Document the filters saw (signals are recomputed by the new recipe)."""
    return Document(
        doc_id=row["doc_id"], source=row["source"], url=row["url"], warc_record_id=row["warc_record_id"],
        crawl_date=row["crawl_date"],
        meta=RecordMeta(row["offset"], row["record_type"], row["http_status"], row["content_type"]),
        text=row["text"], title=row["title"], published_date=row["published_date"], language=row["language"],
        language_score=row["language_score"],
    )


def ledger_row_from_dict(row: dict) -> LedgerRow:
    """A ledger Parquet row back into a LedgerRow (for carrying early-stage rows into a `select` output)."""
    values = dict(row)
    values["score"] = float("nan") if values["score"] is None else values["score"]
    values["scores"] = {s["name"]: s["value"] for s in values["scores"] or []}
    values["modified_by"] = list(values["modified_by"] or [])
    return LedgerRow(**values)
