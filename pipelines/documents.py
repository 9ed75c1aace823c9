"""Per-document stages as DoFns: read WARC files, then extract -> language ID -> filters (tokenization is in
pipelines/staging.py).

The per-document stages are fused into one DoFn over batches of records: no serialization between them,
one model load per worker (setup), and trafilatura's child process extracts one page while the worker
prepares the next and runs the later stages on the one before.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import deque
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from classifiers.language import LanguageIdentifier
from console.progress import ProgressFile
from filters.language import precheck_reason, runs_precheck
from filters.registry import apply_filters, build_filters, prepare_filters
from ingest.decode import decode_body
from ingest.extract import Extracted, ExtractorPool, quick_text
from ingest.warc import ReadError, SkippedRecord, WarcInfo, read_warc, snapshot_of_file, source_name, triage
from outputs.run_files import inputs_root
from outputs.timing import MARK_RECORDS_END, MARK_RECORDS_START
from pipelines.isolation import ENVIRONMENT_ERRORS, internal_error
from pipelines.metrics import NAMESPACE, SetupTime, StageCounters, mark
from pipelines.worker import apply_worker_settings
from schemas.recipe import ReadConfig, Recipe
from schemas.records import (
    STAGE_EXTRACT,
    STAGE_FILTERS,
    STAGE_LANGUAGE_PRECHECK,
    STAGE_READ,
    STAGE_URL,
    Decision,
    Document,
    LedgerRow,
    Record,
    ledger_row_for_document,
    ledger_row_for_drop,
    ledger_row_for_record,
)
from storage.files import open_stream
from storage.retry import StoreError

LEDGER = "ledger"
SKIPPED = "skipped"
FILE_ERRORS = "file_errors"
# (file's name in the run, snapshot) once per input file: what dedup.near.scope = "snapshot" groups by.
SNAPSHOTS = "snapshots"
SCORED = "scored"
# What each extracting process runs (ingest.speedups.status() as sorted JSON), once per bundle.
EXTRACTION = "extraction"


def named_inputs(paths: list[str]) -> list[tuple[str, str]]:
    """(name in the run, path) of each input file, in the input list's order: its path below the inputs'
    common folder (ingest.warc.source_name), which its records' source and ids, its part index, its snapshot
    entry and the first_seen survivor rule all use."""
    root = inputs_root(paths)
    return [(source_name(path, root), path) for path in paths]


class ReadWarcFiles(beam.DoFn):
    """One input file, as (its name in the run, its path) -> batches of content records; skipped record types,
    file errors and the file's snapshot (its first warcinfo record's isPartOf, else the CC-MAIN-YYYY-WW in its
    path) on side outputs. The name (ingest.warc.source_name) is the records' source and enters their ids."""

    def __init__(self, batch_size: int = 32, progress_dir: str | None = None,
                 max_body_bytes: int = ReadConfig.max_body_bytes) -> None:
        self.batch_size = batch_size
        self.progress_dir = progress_dir  # console/progress.py: only when a local run's driver draws the line
        self.max_body_bytes = max_body_bytes  # the recipe's read.max_body_bytes: read_warc decodes no more of a body

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.file_errors = beam.metrics.Metrics.counter(NAMESPACE, "read/file_errors")
        self.read_time = beam.metrics.Metrics.counter(NAMESPACE, f"{STAGE_READ}/time_us")
        self.progress = ProgressFile(self.progress_dir, "read") if self.progress_dir else None

    def start_bundle(self) -> None:
        mark(MARK_RECORDS_START)

    def process(self, file: tuple[str, str]) -> Iterator:
        name, path = file
        if self.progress is None:
            yield from self._read(name, path)
            return
        size = sum(m.size_in_bytes for m in FileSystems.match([path])[0].metadata_list)
        shown = 0  # bytes of this file counted so far: up to the last record's offset, the whole file at the end
        for item in self._read(name, path):
            if isinstance(item, list):
                self.progress.add(records=len(item), bytes=item[-1].offset - shown)
                shown = item[-1].offset
            yield item
        self.progress.add(bytes=size - shown)
        self.progress.flush()

    def _read(self, name: str, path: str) -> Iterator:
        info: list[WarcInfo] = []
        yield from self._records(name, path, info)
        yield beam.pvalue.TaggedOutput(SNAPSHOTS, (name, snapshot_of_file(info[0] if info else None, path)))

    def _records(self, name: str, path: str, info: list[WarcInfo]) -> Iterator:
        batch: list[Record] = []
        try:
            # Raw bytes: warcio decompresses gzip member by member, so damage in one member stays there
            # (Beam's own gzip decoding would stop the whole file at the first bad member). A store failing
            # part way is resumed at the byte reached, and after the retries StoreError fails the bundle for
            # the runner to retry: never a truncated file (storage/retry.py).
            stream = open_stream(path)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - a missing or unreadable file is reported, the others go on
            self.file_errors.inc()
            yield beam.pvalue.TaggedOutput(FILE_ERRORS, (path, 0, f"cannot open: {exc}"))
            return
        with stream:
            for item in self._timed(read_warc(stream, name, self.max_body_bytes)):
                if isinstance(item, Record):
                    batch.append(item)
                    if len(batch) >= self.batch_size:
                        yield batch
                        batch = []
                elif isinstance(item, WarcInfo):
                    info.append(item)
                elif isinstance(item, SkippedRecord):
                    yield beam.pvalue.TaggedOutput(SKIPPED, item.record_type)
                elif isinstance(item, ReadError):
                    self.file_errors.inc()
                    yield beam.pvalue.TaggedOutput(FILE_ERRORS, (path, item.offset, item.error))
        if batch:
            yield batch

    def _timed(self, items: Iterator) -> Iterator:
        """`items`, the time spent making each one (reading and framing the file) counted as the read stage's:
        not the time its consumer spends, which a fused runner spends inside the yield."""
        start, micros = time.perf_counter(), 0
        for item in items:
            micros += int((time.perf_counter() - start) * 1e6)
            yield item
            start = time.perf_counter()
        self.read_time.inc(micros + int((time.perf_counter() - start) * 1e6))


class ExtractDocuments(beam.DoFn):
    """Batch of records -> labeled Documents (main output) and ledger rows for every drop (LEDGER output).

    Cheap checks first: triage (status, type, size) and URL-only filters run before any decoding, the
    language precheck (a language guess on tag-stripped HTML, filters.language.precheck_margin) before any
    trafilatura call. Language ID of the extracted text runs per document, as soon as its text is back.
    """

    def __init__(self, recipe: Recipe, precheck: bool = True, extract_children: int = 1) -> None:
        self.recipe = recipe
        self.precheck = precheck and runs_precheck(recipe)
        self.extract_children = extract_children  # ingest.extract.ExtractorPool says when more than one

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.setup_time = SetupTime(STAGE_EXTRACT)
        with self.setup_time.timed():
            # The children start in the background; the first extraction (or finish_bundle) waits for them.
            self.extractor = ExtractorPool(self.recipe.extract, self.extract_children, wait=False)
            self.lid = LanguageIdentifier(self.recipe.language.model_path, self.recipe.language.max_chars)
            self.url_filters = [f for f in build_filters(self.recipe) if not f.needs_text]
        self.read_c = StageCounters(STAGE_READ)
        self.extract_c = StageCounters(STAGE_EXTRACT)
        self.url_c = StageCounters(STAGE_URL)
        self.precheck_c = StageCounters(STAGE_LANGUAGE_PRECHECK)
        self.lid_c = StageCounters("language_id")

    def start_bundle(self) -> None:
        self.reported = False
        self.setup_time.report()

    def finish_bundle(self) -> None:
        # A bundle whose pages were all dropped before extraction still proves trafilatura can start.
        self.extractor.ensure_ready()
        mark(MARK_RECORDS_END)

    def _report_setup(self) -> Iterator:
        """Once per bundle: what the extraction process runs (trafilatura's version, speed patches on or off),
        for stats.json and the console summary."""
        if not self.reported:
            self.reported = True
            self.extractor.ensure_ready()
            yield beam.pvalue.TaggedOutput(EXTRACTION, json.dumps(self.extractor.speedups, sort_keys=True))

    def teardown(self) -> None:
        extractor = getattr(self, "extractor", None)
        if extractor is not None:
            extractor.close()

    def _url_decision(self, record: Record) -> Decision | None:
        """URL-only filters, before extraction: a blocked page never costs a trafilatura call."""
        stub = Document.of_record(record, text="")
        return apply_filters(self.url_filters, stub, STAGE_URL)

    def _precheck_decision(self, page: str) -> Decision | None:
        """The cheap-first cascade: a page whose quick text gives every kept language less than the margin
        is certainly dropped by the language filter later, so trafilatura never runs on it."""
        lang = self.recipe.filters.language
        ((best, top),) = self.lid.best_of([quick_text(page)], lang.keep, lang.precheck_margin)
        reason = precheck_reason(best, lang.keep, lang.precheck_margin)
        if reason is None:
            return None
        return Decision(STAGE_LANGUAGE_PRECHECK, reason[0], reason[1], detail=f"tag-stripped text reads as {top}")

    def _finish(self, record: Record, result: Extracted | Decision) -> Iterator:
        """One extraction's outcome -> the labeled Document, or the ledger row that drops the record."""
        try:
            if not isinstance(result, Decision) and len(result.text) < self.recipe.extract.min_text_chars:
                result = Decision(STAGE_EXTRACT, "empty_text", float(len(result.text)))
            if not isinstance(result, Decision):
                doc = Document.of_record(record, result.text, result.title, result.published_date)
                with self.lid_c.timed():
                    ((doc.language, doc.language_score),) = self.lid.predict([doc.text])
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - this record's failure is its ledger row (pipelines/isolation.py)
            result = internal_error(STAGE_EXTRACT, "language_id", exc, record.doc_id)
        if isinstance(result, Decision):
            self.extract_c.dropped(result.reason)
            yield beam.pvalue.TaggedOutput(LEDGER, ledger_row_for_record(record, result))
            return
        self.extract_c.kept.inc()
        yield doc

    def _prepare(self, record: Record) -> Decision | Extracted | str:
        """Everything before extraction: the Decision that drops the record, the text of a WET conversion
        record, or the decoded page to extract. `self._at` holds the running step's stage counters and name, for a
        step that raises."""
        self._at = (self.read_c, "triage")
        self.read_c.inp.inc()
        decision = triage(record, self.recipe.read)
        if decision is not None:
            self.read_c.dropped(decision.reason)
            return decision
        self.read_c.kept.inc()
        if self.url_filters:
            self._at = (self.url_c, "url_filters")
            self.url_c.inp.inc()
            decision = self._url_decision(record)
            if decision is not None:
                self.url_c.dropped(decision.reason)
                return decision
        self._at = (self.extract_c, "decode")
        with self.extract_c.timed():  # decoding is counted with extraction, as before the precheck existed
            page, _codec = decode_body(record.body, record.content_type)
        if record.record_type == "conversion":  # WET: the text is there already
            self.extract_c.inp.inc()
            return Extracted(text=page.strip(), title="", published_date="")
        if self.precheck:
            self._at = (self.precheck_c, "language_precheck")
            self.precheck_c.inp.inc()
            with self.precheck_c.timed():
                decision = self._precheck_decision(page)
            if decision is not None:
                self.precheck_c.dropped(decision.reason)
                return decision
            self.precheck_c.kept.inc()
        self.extract_c.inp.inc()
        return page

    def _failed(self, record: Record, exc: Exception) -> Decision:
        """The internal_error Decision of a record whose step before extraction raised, counted in its stage."""
        counters, step = self._at
        decision = internal_error(counters.stage, step, exc, record.doc_id)
        counters.dropped(decision.reason)
        return decision

    def process(self, batch: list[Record]) -> Iterator:
        # Pipelined with the extraction children: while they extract the pages in flight (one a child), this
        # worker prepares the next records and runs the later stages (yielding a Document runs the fused
        # filters, classifiers and staging right away) on the page before. Only the last straggling worker of a
        # run has a core to spare for that; everywhere else both cores are busy either way.
        self.extractor.drop_in_flight()  # none, unless a bundle before this one was abandoned in mid-batch
        in_flight: deque[Record] = deque()
        for record in batch:
            try:
                prepared = self._prepare(record)
            except ENVIRONMENT_ERRORS:
                raise
            except Exception as exc:  # noqa: BLE001 - this record's failure is its ledger row
                prepared = self._failed(record, exc)
            if isinstance(prepared, Decision):
                yield beam.pvalue.TaggedOutput(LEDGER, ledger_row_for_record(record, prepared))
                continue
            if isinstance(prepared, Extracted):
                yield from self._finish(record, prepared)
                continue
            done = None
            if len(in_flight) == self.extractor.depth:
                oldest = in_flight.popleft()
                done = (oldest, self._collect(oldest))
            self.extractor.submit(prepared, record.url)
            in_flight.append(record)
            if done is not None:
                yield from self._finish(*done)
        while in_flight:
            oldest = in_flight.popleft()
            yield from self._finish(oldest, self._collect(oldest))
        yield from self._report_setup()

    def _collect(self, record: Record) -> Extracted | Decision:
        try:
            result = self.extractor.collect()
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - this record's failure is its ledger row
            return internal_error(STAGE_EXTRACT, "extract", exc, record.doc_id)
        self.extract_c.micros.inc(int(self.extractor.seconds * 1e6))  # time inside trafilatura, not waiting
        return result


class FilterDocuments(beam.DoFn):
    """Document -> kept Document (main) or a ledger row (LEDGER); with keep_scored, also the document as
    extracted, with every signal, for `tokenmill select` (SCORED)."""

    def __init__(self, recipe: Recipe, keep_scored: bool = False, progress_dir: str | None = None) -> None:
        self.recipe = recipe
        self.keep_scored = keep_scored
        self.progress_dir = progress_dir

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.setup_time = SetupTime(STAGE_FILTERS)
        with self.setup_time.timed():
            self.filters = prepare_filters([f for f in build_filters(self.recipe) if f.needs_text])
        self.counters = StageCounters(STAGE_FILTERS)
        self.progress = ProgressFile(self.progress_dir, "kept") if self.progress_dir else None

    def start_bundle(self) -> None:
        self.setup_time.report()
        mark(MARK_RECORDS_START)  # a select run's first step: it reads no WARC

    def finish_bundle(self) -> None:
        if self.progress is not None:
            self.progress.flush()
        mark(MARK_RECORDS_END)

    def process(self, received: Document) -> Iterator:
        self.counters.inp.inc()
        # The filters add signals and modifiers change the text: on a copy, as Beam forbids changing an input
        # (a runner that fuses or replays elements would see the changed value).
        doc = dataclasses.replace(received, scores=dict(received.scores), modified_by=list(received.modified_by))
        try:
            with self.counters.timed():
                decision = apply_filters(self.filters, doc)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - this document's failure is its ledger row
            decision = internal_error(STAGE_FILTERS, "filters", exc, doc.doc_id)
            doc = received  # its row shows the document as it came, not half through the modifiers
        if self.keep_scored:  # with every signal measured; select runs the filters again on the extracted text
            yield beam.pvalue.TaggedOutput(
                SCORED, dataclasses.replace(doc, text=received.text, scores=dict(doc.scores), modified_by=[])
            )
        if decision is not None:
            self.counters.dropped(decision.reason)
            out = self.recipe.output
            row = ledger_row_for_drop(doc, decision, out.seed, out.dropped_text_sample_rate)
            yield beam.pvalue.TaggedOutput(LEDGER, row)
            return
        self.counters.kept.inc()
        if self.progress is not None:
            self.progress.add(kept=1)
        yield doc


def kept_ledger_row(doc: Document) -> LedgerRow:
    """The ledger row of a document that reached a shard."""
    return ledger_row_for_document(doc, None, None)
