"""The composed pipeline: one document's journey from WARC record to token shard, in order.

    input files ─ReadWarcFiles─▶ batches of Records ─ExtractDocuments─▶ labeled Documents
        ─FilterDocuments─▶ kept Documents ─Decontaminate─▶ ─ScoreClassifiers─▶ ─StageDocuments─▶ StagedRefs
        (each Document waits whole in _staging/) ─DecideClassifiers─▶ ─ExactDedup─▶ ─NearDedup─▶ survivors
    drops before staging ─StageLedgerRows─▶ _staging/ ; drops after it ─▶ LateDrops (ref + decision)
    (--keep-scored) documents as extracted, with all signals ─StageLedgerRows("scored-")─▶ _staging/
    per input file: survivors + LateDrops + staged rows (+ staged scored documents) ─WriteSourceParts─▶
        its shard, ledger, dedup index (+ scored) pieces in _staging/ ─CutParts (pipelines/recut.py)─▶ shards/,
        ledger/, dedup_index/ (+ scored/), each cut across input files in input order
    part infos + (stage, reason) counts ─Finalize─▶ manifest.json, stats.json (and _staging/ removed)

`tokenmill select` starts the same tail from scored/ instead of the crawl (build_select_pipeline).
No shuffle carries a Document: the classifier cut and the dedup shuffles move StagedRefs (~0.3 KB; ids,
staging offset, exact key, MinHash signature, classifier values), near dedup reads the text of clustered
documents back from their staging files, and each input file's pieces are written from its staging files
(pipelines/staging.py), then cut into the run's parts (pipelines/recut.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from filters.registry import score_columns
from ingest.speedups import summarize as extraction_summary
from ingest.warc import snapshot_from_path
from outputs.finalize import by_kind, write_manifest, write_stats
from outputs.parquet_parts import remove_partial_parts
from outputs.run_files import against_list_path, read_against_list, read_input_list, read_json
from outputs.staging import remove_staging, staging_dir
from outputs.timing import MARK_FINALIZING
from pipelines.against_releases import MATCHED, NearAgainstReleases, against_stats, read_index_file
from pipelines.classify import DecideClassifiers, ScoreClassifiers
from pipelines.decontaminate import Decontaminate, DecontaminationPlan, decontamination_stats
from pipelines.dedup import ExactDedup
from pipelines.documents import (
    EXTRACTION,
    FILE_ERRORS,
    LEDGER,
    SCORED,
    SKIPPED,
    SNAPSHOTS,
    ExtractDocuments,
    FilterDocuments,
    ReadWarcFiles,
    named_inputs,
)
from pipelines.metrics import mark, sum_pairs
from pipelines.near_dedup import NearDedup, near_dedup_stats
from pipelines.recut import cut_pieces
from pipelines.source_parts import (
    COUNTS,
    ERROR_EXAMPLES,
    INDEX_PARTS,
    LEDGER_PARTS,
    MIX,
    SCORED_PARTS,
    SHARD_PARTS,
    WriteSourceParts,
)
from pipelines.staging import StageDocuments, StageLedgerRows, settled
from schemas.recipe import Recipe
from schemas.records import STAGE_EXTRACT, STAGE_LANGUAGE_PRECHECK, STAGE_READ, STAGE_URL
from schemas.tables import document_from_scored, ledger_row_from_dict
from storage.paths import inside

# Ledger stages decided before the filters; `select` carries these rows over unchanged.
PRE_FILTER_STAGES = (STAGE_READ, STAGE_URL, STAGE_LANGUAGE_PRECHECK, STAGE_EXTRACT)


def _finalize(
    _: Any,
    *,
    output: str,
    recipe: Recipe,
    inputs_file: str,
    tokenizer_info: dict[str, Any],
    columns: list[str],
    read_stats: dict[str, Any] | None,
    summary: list[tuple[str, Any]],
    decontamination: DecontaminationPlan | None = None,
    against: list[dict[str, Any]] | None = None,
    keep_scored: bool = False,
) -> None:
    """The last step: manifest.json, then stats.json (outputs/finalize.py), with the sections the stages sum up
    themselves; then _staging/ goes."""
    mark(MARK_FINALIZING)
    inputs = read_input_list(inputs_file)
    kinds = by_kind(summary)
    manifest = write_manifest(
        output=output, recipe=recipe, inputs=inputs, tokenizer_info=tokenizer_info, columns=columns, kinds=kinds,
        against=against, decontamination_sources=decontamination.sources if decontamination is not None else None,
        keep_scored=keep_scored)
    sections: dict[str, Any] = {}
    setups = [json.loads(s) for s in sorted(set(kinds["extraction"]))]
    if setups:  # a select run extracts nothing
        sections["extract"] = extraction_summary(setups)
    if against:
        sections["dedup_against"] = against_stats(against, kinds["against"])
    if decontamination is not None:
        sections["decontamination"] = decontamination_stats(recipe, decontamination, kinds["decontamination"])
    if recipe.dedup.near.enabled:
        sections["near_dedup"] = near_dedup_stats(recipe.dedup.near, kinds["near_dedup"], kinds["snapshots"])
    write_stats(output=output, inputs=inputs, manifest=manifest, kinds=kinds, read_stats=read_stats,
                sections=sections)
    remove_partial_parts(output, ("shards", "ledger", "dedup_index", "scored"))  # a killed attempt's temp files
    remove_staging(output)  # every step that reads it has finished: its outputs are this step's side inputs


def _filter_to_outputs(
    p: beam.Pipeline,
    docs,
    early_ledger,
    *,
    output: str,
    recipe: Recipe,
    inputs_file: str,
    tokenizer_info: dict[str, Any],
    keep_scored: bool,
    read_stats: dict[str, Any] | None,
    skipped,
    file_errors,
    extraction,
    snapshots,
    progress_dir: str | None = None,
    decontamination: DecontaminationPlan | None = None,
    against: list[dict[str, Any]] | None = None,
    rounds: int | None = None,
) -> None:
    """The shared tail: filters -> decontamination -> classifiers -> exact and near dedup -> tokenize -> shards,
    ledger, manifest, stats (+ scored)."""
    columns = score_columns(recipe)
    filtered = docs | "Filter" >> beam.ParDo(FilterDocuments(recipe, keep_scored, progress_dir)).with_outputs(
        LEDGER, SCORED, main="kept"
    )
    # Rows decided in the per-file stage wait in _staging/ for their input file's ledger pieces. Each output is
    # staged where it is made and only the (source, file) pairs are flattened: the FnApiRunner materializes
    # every multi-input Flatten in its driver, so flattening the rows first held all of them there.
    staged = [
        early_ledger | "StageEarlyRows" >> beam.ParDo(StageLedgerRows(output)),
        filtered[LEDGER] | "StageFilterRows" >> beam.ParDo(StageLedgerRows(output)),
    ]
    scored = filtered.kept
    found = p | "NoDecontamination" >> beam.Create([])
    if decontamination is not None:
        scored, contaminated, found = scored | "Decontaminate" >> Decontaminate(recipe, decontamination)
        staged.append(contaminated | "StageDecontaminationRows" >> beam.ParDo(StageLedgerRows(output)))
    late = []
    classify = recipe.quality.enabled or recipe.topic.enabled
    if classify:
        classified = scored | "ScoreClassifiers" >> ScoreClassifiers(recipe)
        scored = classified.scored
        staged.append(classified[LEDGER] | "StageClassifierErrorRows" >> beam.ParDo(StageLedgerRows(output)))
    # From here on only StagedRefs travel: the Documents wait in _staging/ (pipelines/staging.py).
    batch = recipe.tokenizer.batch_size
    signed = (
        scored
        | "BatchForStaging" >> beam.BatchElements(min_batch_size=batch, max_batch_size=batch)
        | "StageDocuments" >> beam.ParDo(StageDocuments(recipe, output)).with_outputs(LEDGER, main="refs")
    )
    survivors = signed.refs
    staged.append(signed[LEDGER] | "StageSigningErrorRows" >> beam.ParDo(StageLedgerRows(output)))
    if classify:
        decided = survivors | "DecideClassifiers" >> DecideClassifiers(recipe)
        survivors = decided.kept
        late.append(decided[LEDGER])
    staged_early = staged | "EarlyLedgerFiles" >> beam.Flatten()
    released, matched = None, []
    if against:
        # The released documents' dedup index, read in the workers from the files the driver listed and checked.
        released = (
            p
            | "AgainstList" >> beam.Create([against_list_path(output)])
            | "AgainstFiles" >> beam.FlatMap(read_against_list)
            | "SpreadIndexFiles" >> beam.Reshuffle()
            | "ReadReleasedIndex" >> beam.FlatMap(read_index_file, near=recipe.dedup.near.enabled)
        )
    if recipe.dedup.exact.enabled:
        deduped = survivors | "ExactDedup" >> ExactDedup(recipe, released)
        survivors = deduped.survivors
        late.append(deduped[LEDGER])
        if released is not None:
            matched.append(deduped[MATCHED])
    near_story = p | "NoNearDedup" >> beam.Create([])
    if recipe.dedup.near.enabled:
        if released is not None:
            survivors, released_ledger, near_matched = survivors | "NearAgainstReleases" >> NearAgainstReleases(
                recipe, released)
            late.append(released_ledger)
            matched.append(near_matched)
        survivors, near_ledger, near_story = survivors | "NearDedup" >> NearDedup(recipe, snapshots, rounds)
        late.append(near_ledger)
    matched_counts = (
        (matched or [p | "NoReleaseMatches" >> beam.Create([])])
        | "ReleaseMatches" >> beam.Flatten()
        | "SumReleaseMatches" >> beam.CombinePerKey(sum)
    )

    # Everything about one input file meets in one place: its shard, ledger and dedup index pieces are written there
    # to _staging/, named by the file's index among the inputs (Document.source is its name in the run,
    # named_inputs), which orders the cut across files below.
    source_index = beam.pvalue.AsDict(
        p
        | "InputListForIndex" >> beam.Create([inputs_file])
        | "SourceIndex" >> beam.FlatMap(
            lambda f: ((name, i) for i, (name, _path) in enumerate(named_inputs(read_input_list(f)))))
    )
    late_drops = (late or [p | "NoLateDrops" >> beam.Create([])]) | "LateDrops" >> beam.Flatten()
    # --keep-scored: each document as extracted waits in _staging/ like the early ledger rows, and is written to
    # its input file's scored pieces by WriteSourceParts, cut into scored/ parts with the others; only (source,
    # staging file) pairs are shuffled, never the text (a GroupByKey by part carried every document whole before
    # fc95cbc, 2026-12-07).
    scored_files = (
        filtered[SCORED] | "StageScored" >> beam.ParDo(StageLedgerRows(output, "scored-")) if keep_scored
        else p | "NoScored" >> beam.Create([])
    )
    written = (
        {
            "survivors": survivors | "SurvivorsBySource" >> beam.Map(lambda r: (r.source, settled(r))),
            "late": late_drops | "LateDropsBySource" >> beam.Map(
                lambda d: (d.ref.source, d._replace(ref=settled(d.ref)))
            ),
            "early": staged_early,
            "scored": scored_files,
        }
        | "GroupBySource" >> beam.CoGroupByKey()
        | "WriteSourceParts" >> beam.ParDo(WriteSourceParts(recipe, output, columns), source_index).with_outputs(
            SHARD_PARTS, LEDGER_PARTS, SCORED_PARTS, COUNTS, MIX, INDEX_PARTS, ERROR_EXAMPLES
        )
    )
    # The per-file pieces are cut across input files into the run's parts (pipelines/recut.py, issue 35).
    cut = cut_pieces(written, recipe, output, columns)
    shard_infos, ledger_infos = cut[SHARD_PARTS], cut[LEDGER_PARTS]
    mix = written[MIX] | "MixTotals" >> beam.CombinePerKey(sum_pairs)  # (documents, tokens) per mix column value
    ledger_counts = (
        written[COUNTS]
        | "StageReasonCounts" >> beam.FlatMap(lambda counts: counts.items())
        | "SumStageReason" >> beam.CombinePerKey(sum)
    )

    # One side input for the finalize step: its inputs tagged by kind, flattened, listed. Seven separate
    # ToList side inputs cost 63 Beam transforms (~0.3 s to build) and 14 small stages at the end of the run.
    summary = (
        [
            stream | f"Tag{kind}" >> beam.Map(lambda value, kind=kind: (kind, value))
            for kind, stream in (
                ("shards", shard_infos), ("ledger_parts", ledger_infos), ("scored_parts", cut[SCORED_PARTS]),
                ("ledger_counts", ledger_counts),
                ("skipped", skipped), ("file_errors", file_errors), ("mix", mix), ("near_dedup", near_story),
                ("extraction", extraction), ("snapshots", snapshots), ("decontamination", found),
                ("dedup_index", cut[INDEX_PARTS]), ("against", matched_counts),
                ("error_examples", written[ERROR_EXAMPLES] | "ErrorExample" >> beam.CombinePerKey(min)),
            )
        ]
        | "SummaryStreams" >> beam.Flatten()
        | "Summary" >> beam.combiners.ToList()
    )
    (
        p
        | "FinalizeTrigger" >> beam.Create([None])
        | "WriteManifestAndStats"
        >> beam.Map(
            _finalize,
            output=output,
            recipe=recipe,
            inputs_file=inputs_file,
            tokenizer_info=tokenizer_info,
            columns=columns,
            read_stats=read_stats,
            summary=beam.pvalue.AsSingleton(summary),
            decontamination=decontamination,
            against=against,
            keep_scored=keep_scored,
        )
    )


def build_pipeline(
    p: beam.Pipeline,
    *,
    inputs_file: str,
    output: str,
    recipe: Recipe,
    tokenizer_info: dict[str, Any],
    keep_scored: bool = False,
    progress: bool = False,
    decontamination: DecontaminationPlan | None = None,
    against: list[dict[str, Any]] | None = None,
    rounds: int | None = None,
    extract_children: int = 1,
) -> None:
    """The full run: WARC/WET files to shards, ledger, manifest, stats. With `progress` the read and filter steps
    keep running counts in _staging/ for the driver's progress line (console/progress.py; local runs only).
    `rounds`: the near-dedup rounds the graph holds (dedup.components.rounds_to_unroll; None: max_rounds).
    `extract_children`: extraction processes per worker (ingest.extract.ExtractorPool; the outputs are the same).

    The input files are read from `inputs_file` (outputs.run_files.write_input_list, one path a line) by the
    pipeline itself: the paths built into the graph (a Create, the shard-name index, the finalize step's
    argument) made it grow with the crawl, 262 KB for 10 files and 1.19 MB for 100,000 Common Crawl paths
    (`python bench/graph_size.py` at 1303cc7); now one size for either (271 KB then; 799 KB on Beam 2.62 at
    400bdbd, whose graph is larger for every crawl). The Reshuffle spreads the files over
    the workers; without it the runner fuses every file's reading into the one worker that read the list."""
    progress_dir = staging_dir(output) if progress else None
    read = (
        p
        | "InputList" >> beam.Create([inputs_file])
        | "InputFiles" >> beam.FlatMap(lambda f: named_inputs(read_input_list(f)))
        | "SpreadFiles" >> beam.Reshuffle()
        | "ReadWarc" >> beam.ParDo(ReadWarcFiles(progress_dir=progress_dir,
                                                 max_body_bytes=recipe.read.max_body_bytes)).with_outputs(
            SKIPPED, FILE_ERRORS, SNAPSHOTS, main="records")
    )
    # --keep-scored wants every page to reach the filters (select may keep other languages): no precheck then.
    extract = ExtractDocuments(recipe, precheck=not keep_scored, extract_children=extract_children)
    extracted = read.records | "ExtractLang" >> beam.ParDo(extract).with_outputs(LEDGER, EXTRACTION, main="docs")
    _filter_to_outputs(
        p, extracted.docs, extracted[LEDGER], output=output, recipe=recipe, inputs_file=inputs_file,
        tokenizer_info=tokenizer_info, keep_scored=keep_scored, read_stats=None,
        skipped=read[SKIPPED] | "CountSkipped" >> beam.combiners.Count.PerElement(),
        file_errors=read[FILE_ERRORS],
        extraction=extracted[EXTRACTION] | "DistinctSetups" >> beam.Distinct(), snapshots=read[SNAPSHOTS],
        progress_dir=progress_dir, decontamination=decontamination, against=against, rounds=rounds,
    )


def _parquet_rows(path: str):
    with FileSystems.open(path) as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=1000):
            yield from batch.to_pylist()


def scored_files(source: str) -> list[str]:
    """The scored/ parts of a --keep-scored run: those its manifest lists (since fc95cbc, 2026-12-07; since
    3cfa022 cut across input files in input order, so each file's documents are together), else, for an earlier
    run, every part in scored/ (there a part held documents of every input file, so select staged nearly one file
    per document; rerun the crawl to avoid it)."""
    manifest = read_json(f"{source}/manifest.json")
    if "scored" in manifest:
        return [f"{source}/{inside(e['path'], f'{source}/manifest.json scored')}" for e in manifest["scored"]]
    return sorted(m.path for m in FileSystems.match([f"{source}/scored/*.parquet"])[0].metadata_list)


def _ledger_files(source: str) -> list[str]:
    return [f"{source}/{inside(e['path'], f'{source}/manifest.json ledger')}"
            for e in read_json(f"{source}/manifest.json")["ledger"]]


def _source_snapshots(source: str) -> Iterator[tuple[str, str]]:
    manifest = read_json(f"{source}/manifest.json")
    if "snapshots" in manifest:
        yield from manifest["snapshots"].items()
    else:
        for name, path in named_inputs(manifest["inputs"]):
            yield name, snapshot_from_path(path)


def build_select_pipeline(
    p: beam.Pipeline,
    *,
    source: str,
    source_stats: dict[str, Any],
    output: str,
    recipe: Recipe,
    tokenizer_info: dict[str, Any],
    inputs_file: str,
    decontamination: DecontaminationPlan | None = None,
    against: list[dict[str, Any]] | None = None,
    rounds: int | None = None,
) -> None:
    """Another recipe over a --keep-scored run: scored/ documents through the shared tail; the source's
    read/url/extract ledger rows carried over unchanged (the recipe must agree on those stages).

    The part lists are read by the pipeline from the source's manifest (not built into the job graph, which would
    grow with the run) and spread over the workers; each part is read whole by one worker, so the documents
    reach the staging steps file by file (a scored part holds consecutive input files' documents, each file's
    together) and a bundle writes one staging file per input file it reads, not one per document
    (pipelines/staging.py: OpenFiles)."""
    docs = (
        p
        | "ScoredSource" >> beam.Create([source])
        | "ScoredFiles" >> beam.FlatMap(scored_files)
        | "SpreadScoredFiles" >> beam.Reshuffle()
        | "ReadScored" >> beam.FlatMap(_parquet_rows)
        | "ToDocuments" >> beam.Map(document_from_scored)
    )
    early = (
        p
        | "LedgerSource" >> beam.Create([source])
        | "SourceLedgerFiles" >> beam.FlatMap(_ledger_files)
        | "SpreadLedgerFiles" >> beam.Reshuffle()
        | "ReadSourceLedger" >> beam.FlatMap(_parquet_rows)
        | "PreFilterRows" >> beam.Filter(lambda r: r["stage"] in PRE_FILTER_STAGES)
        | "ToLedgerRows" >> beam.Map(ledger_row_from_dict)
    )
    empty = p | "NoSkipped" >> beam.Create([])
    # The source run's snapshot of each input file (its manifest; older runs' from the input paths).
    snapshots = (
        p
        | "SourceForSnapshots" >> beam.Create([source])
        | "SourceSnapshots" >> beam.FlatMap(_source_snapshots)
    )
    _filter_to_outputs(
        p, docs, early, output=output, recipe=recipe, inputs_file=inputs_file,
        tokenizer_info=tokenizer_info, keep_scored=False, read_stats=source_stats["read"],
        skipped=empty, file_errors=p | "NoErrors" >> beam.Create([]), extraction=p | "NoExtraction" >> beam.Create([]),
        snapshots=snapshots, decontamination=decontamination, against=against, rounds=rounds,
    )
