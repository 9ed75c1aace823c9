"""The built pipeline run as a job: on the chosen runner, recorded in the output's STARTED while a job service or
Dataflow has it, cancelled on Ctrl-C, its failure written to FAILED in one line, its metrics turned into
stats.json's `stage_seconds` and `timing`; a --dry_run builds Dataflow's request offline instead. Moved from
run_pipeline.py on 2026-12-07 (issue 35)."""

from __future__ import annotations

import re
import sys
import time
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from driver.errors import JobLeftRunning, RunFailed
from driver.inputs import INPUTS_FILE
from driver.runner import is_dry_run, local_runner, make_pipeline, pin_worker_code, runner_name, tune_malloc
from jobs.record import KeepInterrupts, cancel, job_record, pin_job_port
from jobs.remote import runner_kind
from outputs.run_files import FAILED, STARTED, read_json, write_json
from outputs.staging import remove_staging
from outputs.timing import wall_timing
from pipelines.dataflow import GRAPH_LIMIT_BYTES, REQUEST_LIMIT_BYTES
from pipelines.metrics import NAMESPACE
from storage.files import write_bytes

# Failures raised inside the pipeline whose message is the one line to print; the runner wraps them.
# (pipelines.near_dedup.NotConverged; release.against.IndexFileError, whose release path may hold a "[").
_STATED_FAILURES = re.compile(
    r"(near dedup did not converge in \d+ rounds[^\n\[]*?"
    r"|dedup\.against: [^\n]*? (?:fails its sha256 checksum|is missing) \(tokenmill verify [^\n]*?\))"
    r"\s*(?:\[while running|\n|$)")


def run_metrics(result: beam.runners.runner.PipelineResult
                ) -> tuple[dict[str, float], dict[str, float], dict[str, tuple[float, float]]]:
    """From the workers' metrics: worker seconds per stage (`<stage>/time_us`, the time inside the stage's own
    steps summed over every worker process: wall time, except extraction's, which is trafilatura's CPU time in
    its child plus decoding), worker seconds per step's setup (`setup/<stage>/time_us`: models, tokenizer,
    the extraction child) and the phases' marks ({mark: (first, last)} in epoch seconds). Empty where a
    runner reports no metrics to the driver."""
    from outputs.timing import distribution_marks
    from pipelines.metrics import MARK_PREFIX

    try:
        found = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(NAMESPACE))
    except Exception:  # noqa: BLE001 - some runners do not report metrics to the driver
        return {}, {}, {}
    seconds: dict[str, float] = {}
    setup: dict[str, float] = {}
    for c in found["counters"]:
        name = c.key.metric.name
        if name.endswith("/time_us"):
            value = (c.committed if c.committed is not None else c.attempted) / 1e6
            into, stage = (setup, name.removeprefix("setup/")) if name.startswith("setup/") else (seconds, name)
            stage = stage.removesuffix("/time_us")
            into[stage] = into.get(stage, 0) + value
    marks = []
    for d in found["distributions"]:
        name = d.key.metric.name
        value = d.committed if d.committed is not None else d.attempted
        if name.startswith(MARK_PREFIX) and value is not None and value.count:
            marks.append((name.removeprefix(MARK_PREFIX), value.min, value.max))
    return dict(sorted(seconds.items())), dict(sorted(setup.items())), distribution_marks(marks)


def _interrupt_in(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is in `exc`'s chain (its causes and the exceptions it was raised while
    handling): Beam's DoFnRunner wraps what a step raises (common.DoFnRunner._reraise_augmented, Beam 2.62)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        stack += [e.__cause__, e.__context__]
    return False


def execute(beam_args: list[str], output: str, build, progress=None, *, started: float, judge=None,
            input_bytes: int | None = None) -> dict[str, Any]:
    """Build with `build(pipeline)`, run on the chosen runner (drawing `progress`, a console.progress.ProgressLine,
    meanwhile), add timings to stats.json: `wall_seconds` from the process's start, `stage_seconds` (worker
    seconds per stage) and `timing` (the wall time's phases, outputs/timing.py). `judge(stats)` gives the run's
    (lines, fails) problems (driver/problems.py: `problems`): a run that fails, or raises, gets FAILED before
    STARTED goes, so at no moment is it a finished run; one that raises loses the manifest.json its final step
    may have written. `input_bytes` (the inputs' total size, None if not known) picks the local runner's mode
    (driver/runner.py: `local_runner`).

    A run submitted as a job (a job service's, Dataflow's: `p.run()` returns before it ends) is recorded in
    STARTED (`job`: runner, id, endpoint; jobs/record.py) before the driver waits, so that a rerun can ask whether
    it still runs. Ctrl-C while waiting cancels it; where the runner cannot, JobLeftRunning says so."""
    import contextlib

    beam_args = pin_job_port(local_runner(beam_args, input_bytes))
    tune_malloc()
    pin_worker_code()
    p = make_pipeline(beam_args)
    build(p)
    if is_dry_run(beam_args):
        return {DRY_RUN: dry_run(p, output)}
    job = None
    try:
        with progress or contextlib.nullcontext():
            submitted = time.time()
            with KeepInterrupts():
                result = p.run()
            try:
                job = record_job(output, result, beam_args)
                result.wait_until_finish()
            except KeyboardInterrupt:
                raise stop_job(result, job) from None
    except Exception as exc:
        if _interrupt_in(exc):
            # Workers in this process (in_memory): Beam re-raises a Ctrl-C met in a step as a RuntimeError. It
            # is the interrupt it was, not a failed run: the same command runs it again.
            raise KeyboardInterrupt from exc
        remove_staging(output)  # nothing was written from it; a rerun starts afresh
        # The final step writes manifest.json, then stats.json: a job that failed after the first (in that step, or
        # as the runner ended it) must not leave what reads as a finished run.
        with contextlib.suppress(Exception):
            if FileSystems.exists(f"{output}/manifest.json"):
                FileSystems.delete([f"{output}/manifest.json"])
        stated = _STATED_FAILURES.search(str(exc))
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        with contextlib.suppress(Exception):  # the run's own error is the one to report
            write_json(f"{output}/{FAILED}", {"errors": [stated.group(1) if stated else first]})
        if stated:
            raise RunFailed(stated.group(1)) from exc
        if job is not None:
            # A job on a cluster failed there: the driver's traceback is Beam's polling loop and says nothing;
            # the runner's first line says what failed (on Flink 1.19: "Insufficient number of network
            # buffers", found 2026-12-07), the engine's log the rest.
            raise RunFailed(f"job {job['id']} failed on {job['runner']}: {first} (the engine's log has the rest; "
                            f"--verbose shows the runner's)") from exc
        raise

    stats = read_json(f"{output}/stats.json")
    stage, setup, marks = run_metrics(result)
    stats["stage_seconds"] = {k: round(v, 3) for k, v in stage.items()}
    timing = wall_timing(started=started, submitted=submitted, ended=time.time(), marks=marks)
    timing["setup_seconds"] = {k: round(v, 3) for k, v in setup.items()}
    stats["timing"] = timing
    stats["wall_seconds"] = timing["wall_seconds"]
    write_json(f"{output}/stats.json", stats)
    errors = [line for lines, fails in (judge(stats) if judge else []) if fails for line in lines]
    if errors:
        write_json(f"{output}/{FAILED}", {"errors": errors})
    # Ended: the manifest says what the run did and which files it read; FAILED, if there, that it failed.
    FileSystems.delete([f"{output}/{STARTED}", f"{output}/{INPUTS_FILE}"])
    return stats


def stop_job(result: Any, job: dict[str, Any] | None) -> KeyboardInterrupt:
    """What a Ctrl-C while the driver waited for `result` ends with, once the job is cancelled: KeyboardInterrupt
    (the usual line), or JobLeftRunning naming the job when its runner could not cancel it. A run that is no job
    (`job` None) has ended by the time it could be waited for."""
    if job is None or (why := cancel(result)) is None:
        return KeyboardInterrupt()
    where = f"at {job['endpoint']}" if job.get("endpoint") else f"on {job['runner']}"
    return JobLeftRunning(f"interrupted, but job {job['id']} {where} could not be cancelled ({why}) and keeps "
                          "running: stop it there, then the same command runs it again from the start")


def record_job(output: str, result: Any, beam_args: list[str]) -> dict[str, Any] | None:
    """Add the job `result` is (jobs.record.job_record) to the output's STARTED, and return it; None for a run
    that is no job (Beam's local runners, whose p.run() returns when the run has ended). A job service's run
    whose id cannot be read (Beam renamed the private name it is kept in) gets a warning: a rerun could not
    tell whether it still runs."""
    options = PipelineOptions(beam_args)
    name = runner_name(options)
    job = job_record(result, beam_args, name)
    if job is None:
        if runner_kind(options) in ("dataflow", "flink", "spark", "portable"):
            print(f"tokenmill: warning: {name} gave no job id (jobs/record.py: job_id); {output}/{STARTED} records "
                  "none, so a rerun cannot ask whether this job still runs", file=sys.stderr)
        return None
    write_json(f"{output}/{STARTED}", {**read_json(f"{output}/{STARTED}"), "job": job})
    return job


# The key of what `run` and `select` return for a --dry_run, in place of stats.json's content.
DRY_RUN = "dry_run"


def dry_run(p: beam.Pipeline, output: str) -> dict[str, Any]:
    """Run the built pipeline on the DataflowRunner with --dry_run (nothing is submitted) and build the request
    it would have sent, offline (pipelines/dataflow.py: `job_request`; Beam 2.62 writes no --dataflow_job_file
    in a dry run, so it is written here). Returns the output folder (untouched), the job file (or None) and
    the `DataflowRequest`, for `dry_run_summary` and for callers that check the request."""
    from apache_beam.options.pipeline_options import DebugOptions

    from pipelines.dataflow import job_request

    request = job_request(p.run())
    job_file = p.options.view_as(DebugOptions).dataflow_job_file
    if job_file:
        write_bytes(job_file, request.body)
    return {"output": output, "job_file": job_file, "request": request}


def dry_run_summary(dry: dict[str, Any]) -> str:
    """The console line of a dry run: the sizes against Dataflow's limits, the staged files, the threads."""
    request = dry["request"]
    threads = request.threads()
    said = f"{threads} harness threads per worker" if threads else "harness threads: Dataflow's choice"
    written = f"; the request is in {dry['job_file']}" if dry["job_file"] else ""
    return (f"dry run: nothing submitted, nothing written to {dry['output']}. Dataflow job request "
            f"{len(request.body):,} bytes (limit {REQUEST_LIMIT_BYTES // 1_000_000} MB), pipeline "
            f"{len(request.pipeline):,} bytes (job graph limit {GRAPH_LIMIT_BYTES // 1_000_000} MB); staged: "
            f"{', '.join(request.staged_names())}; {said}{written}")
