"""The composed pipeline: one document's journey from WARC record to token shard, in order.

    input files ─ReadWarcFiles─▶ batches of Records ─ProcessRecords─▶ Documents ─ExactDedup─▶ survivors
        ─TokenizeDocuments─▶ Documents with tokens ─WriteParts─▶ shards/part-NNNNN.parquet
    every drop on the way, and every kept document ─Flatten─▶ ledger ─WriteParts─▶ ledger/part-NNNNN.parquet
    part infos + ledger counts ─Finalize─▶ manifest.json, stats.json

Only one shuffle touches documents (exact dedup); the part writers shuffle rows once to their part.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from filters.registry import score_columns
from outputs.run_files import build_manifest, funnel, write_json
from pipelines.dedup import ExactDedup
from pipelines.documents import (
    FILE_ERRORS,
    LEDGER,
    SKIPPED,
    ProcessRecords,
    ReadWarcFiles,
    TokenizeDocuments,
    kept_ledger_row,
)
from pipelines.sinks import WriteParts
from schemas.recipe import Recipe
from schemas.tables import LEDGER_SCHEMA, ledger_table, shard_schema, shard_table


def _finalize(
    _: Any,
    *,
    output: str,
    recipe: Recipe,
    inputs: list[str],
    tokenizer_info: dict[str, Any],
    columns: list[str],
    shards: list,
    ledger_parts: list,
    ledger_counts: list,
    skipped: list,
    file_errors: list,
) -> None:
    manifest = build_manifest(
        output_root=output,
        shards=shards,
        ledger_parts=ledger_parts,
        score_columns=columns,
        recipe=recipe.to_dict(),
        recipe_sha256=recipe.sha256(),
        tokenizer=tokenizer_info,
        inputs=inputs,
    )
    write_json(f"{output}/manifest.json", manifest)
    stats = funnel(dict(ledger_counts))
    stats["read"] = {
        "files": len(inputs),
        "skipped_record_types": dict(sorted(skipped)),
        "file_errors": [
            {"file": f, "offset": o, "error": e} for f, o, e in sorted(file_errors)
        ],
    }
    stats["tokens"] = manifest["totals"]["tokens"]
    write_json(f"{output}/stats.json", stats)


def build_pipeline(
    p: beam.Pipeline,
    *,
    inputs: list[str],
    output: str,
    recipe: Recipe,
    tokenizer_info: dict[str, Any],
) -> None:
    out_cfg = recipe.output
    columns = score_columns(recipe)

    read = (
        p
        | "InputFiles" >> beam.Create(inputs)
        | "ReadWarc" >> beam.ParDo(ReadWarcFiles()).with_outputs(SKIPPED, FILE_ERRORS, main="records")
    )
    processed = read.records | "ExtractLangFilter" >> beam.ParDo(ProcessRecords(recipe)).with_outputs(
        LEDGER, main="docs"
    )
    ledgers = [processed[LEDGER]]
    survivors = processed.docs
    if recipe.dedup.exact.enabled:
        deduped = survivors | "ExactDedup" >> ExactDedup(recipe)
        survivors = deduped.survivors
        ledgers.append(deduped[LEDGER])

    batch = recipe.tokenizer.batch_size
    tokenized = (
        survivors
        | "BatchForTokenizer" >> beam.BatchElements(min_batch_size=batch, max_batch_size=batch)
        | "Tokenize" >> beam.ParDo(TokenizeDocuments(recipe))
    )
    ledgers.append(tokenized | "KeptLedgerRows" >> beam.Map(kept_ledger_row))
    ledger = ledgers | "AllLedgerRows" >> beam.Flatten()

    schema = shard_schema(columns)
    shard_infos = tokenized | "WriteShards" >> WriteParts(
        output_root=output,
        folder="shards",
        schema=schema,
        to_table=lambda docs: shard_table(docs, columns),
        size_of=lambda d: d.token_count,
        target_per_part=out_cfg.shard_target_tokens,
        row_group_rows=out_cfg.row_group_rows,
        zstd_level=out_cfg.zstd_level,
        seed=out_cfg.seed,
        with_tokens=True,
    )
    ledger_infos = ledger | "WriteLedger" >> WriteParts(
        output_root=output,
        folder="ledger",
        schema=LEDGER_SCHEMA,
        to_table=ledger_table,
        size_of=lambda r: 1,
        target_per_part=out_cfg.ledger_rows_per_part,
        row_group_rows=out_cfg.row_group_rows,
        zstd_level=out_cfg.zstd_level,
        seed=out_cfg.seed,
    )
    ledger_counts = (
        ledger
        | "StageReason" >> beam.Map(lambda r: (r.stage, r.reason))
        | "CountStageReason" >> beam.combiners.Count.PerElement()
    )
    skipped = read[SKIPPED] | "CountSkipped" >> beam.combiners.Count.PerElement()

    def as_list(pcoll, label: str):
        return beam.pvalue.AsSingleton(pcoll | label >> beam.combiners.ToList())

    (
        p
        | "FinalizeTrigger" >> beam.Create([None])
        | "WriteManifestAndStats"
        >> beam.Map(
            _finalize,
            output=output,
            recipe=recipe,
            inputs=inputs,
            tokenizer_info=tokenizer_info,
            columns=columns,
            shards=as_list(shard_infos, "ShardList"),
            ledger_parts=as_list(ledger_infos, "LedgerList"),
            ledger_counts=as_list(ledger_counts, "CountList"),
            skipped=as_list(skipped, "SkippedList"),
            file_errors=as_list(read[FILE_ERRORS], "ErrorList"),
        )
    )
