"""The runner's settings, decided before the pipeline is built: Beam's local runner pinned (`local_runner`) and
given the run's options as its workers' provision info (`worker_options`, `make_pipeline`), FlinkRunner in
streaming mode, SparkRunner's SDK environment kept between stages, Dataflow's worker harness threads, glibc's
malloc parameters for this process and those it starts, and this checkout first on the workers' PYTHONPATH.
Each says why where it is defined. Moved from run_pipeline.py on 2026-12-07 (issue 35)."""

from __future__ import annotations

import functools
import os
import shlex
import sys
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from driver.errors import UsageError
from jobs.remote import runner_kind
from pipelines.dataflow import harness_threads, is_dataflow
from pipelines.worker import _MALLOPT, ARROW_POOL, set_mallopt

DEFAULT_RUNNER_ARGS = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"]
# A local run given no runner flags whose inputs total at most IN_PROCESS_BYTES runs its one worker in the
# driver's process (in_memory), not in SDK worker processes on every core. Why: starting the workers (each
# imports Beam and tokenmill and loads lid.176 and the tokenizer) and stopping them cost ~3 s, more than a
# small crawl's records take; in process the extraction child still runs beside the worker, on the other core.
# `tokenmill run --config fineweb`, 2026-12-07: the 24-record demo 7.6 s in workers, 5.2 s in process; the
# project's 300-page bench crawl (584 KB) 8.2 / 6.5 s; a 300-page make_bench_warc crawl (7.3 MB, Common Crawl
# pages) 9.6-10.0 / 8.1-8.6 s; the 2,500-page one (57 MB) 24.9 / 30.6 s, where the second worker's share of
# the records outweighs its start. Only the local runner's execution changes; the outputs are the same bytes in
# either mode (tests/test_pipeline.py, tests/test_near_dedup.py), and any --direct_* flag is taken as given.
IN_PROCESS_BYTES = 8 * 2**20
IN_PROCESS_RUNNER_ARGS = ["--runner=FnApiRunner", "--direct_running_mode=in_memory"]
# Extraction children of the one worker of a run that local_runner puts in one process: two, so that one
# extracts the next page while the worker is still on the one before (ingest.extract.ExtractorPool says why).
# The 300-page make_bench_warc crawl, fineweb, three runs each way alternating, 2026-12-07: the records phase
# 3.00-3.15 s with one child, 2.63-2.79 s with two, the same output bytes. Runs in worker processes keep one
# child a worker: there every core has a worker already.
IN_PROCESS_EXTRACT_CHILDREN = 2


def runner_name(options: PipelineOptions) -> str:
    """The runner's class name as --runner gave it, without a module path ("" when none is given)."""
    from apache_beam.options.pipeline_options import StandardOptions

    return str(options.view_as(StandardOptions).runner or "").rsplit(".", 1)[-1]


def check_runner(beam_args: list[str]) -> None:
    """UsageError for a runner that cannot start as asked: Beam's PortableRunner without a job service; a
    --dry_run (`is_dry_run`) on a runner other than Dataflow's, or without a gs:// --temp_location or
    --staging_location."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PortableOptions
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator

    options = PipelineOptions(beam_args)
    if runner_name(options) == "PortableRunner" and not options.view_as(PortableOptions).job_endpoint:
        raise UsageError("--runner=PortableRunner needs --job_endpoint=HOST:PORT (a running Beam job service); "
                         "or name the engine: --runner=FlinkRunner or --runner=SparkRunner")
    if not is_dry_run(beam_args):
        return
    if not is_dataflow(runner_name(options)):
        # Only the DataflowRunner reads --dry_run; any other would run the job, on an output left unprepared.
        raise UsageError("--dry_run builds a Dataflow job request without submitting it: give "
                         "--runner=DataflowRunner, or leave --dry_run out to run")
    # With neither a valid gs:// path, Beam's option check asks Cloud Storage for a default bucket, even in a
    # dry run (offline, it waits two minutes for the name lookups to fail).
    cloud, validator = options.view_as(GoogleCloudOptions), PipelineOptionsValidator(options, None)
    if all(validator.validate_gcs_path(cloud, name) for name in ("temp_location", "staging_location")):
        raise UsageError("a --dry_run needs --temp_location=gs://BUCKET/DIR (where the job would be staged): "
                         "without it Beam asks Cloud Storage for a default bucket, and a dry run stays offline")


def is_dry_run(beam_args: list[str]) -> bool:
    """Whether Beam's --dry_run is given: the DataflowRunner then builds the job and submits nothing, and the
    driver writes nothing (the output folder is not prepared; `driver.job.dry_run` says what the job would be). Beam
    takes any non-empty value as true (--dry_run=False too), and so does this."""
    from apache_beam.options.pipeline_options import TestOptions

    return bool(PipelineOptions(beam_args).view_as(TestOptions).dry_run)


# What a FlinkRunner run without --streaming is told (flink_streaming): docs/scaling.md has the figures.
FLINK_STREAMING_NOTE = ("note: FlinkRunner runs tokenmill in streaming mode (--streaming added): Flink's batch "
                        "(DataSet) optimizer does not finish planning its pipeline; the output is the same")


def flink_streaming(beam_args: list[str]) -> tuple[list[str], str | None]:
    """(`beam_args` with --streaming for a FlinkRunner run that has none, the note saying so).

    Why: Beam 2.62's portable Flink runner translates a batch pipeline into Flink's DataSet API, whose optimizer
    (org.apache.flink.optimizer.Optimizer.compile) enumerates the plans of branches that join again. tokenmill's
    pipeline branches at every stage (kept, dropped, ledger rows) and joins those branches in dedup, near dedup's
    rounds and the final step: on the 300-page fineweb run the job server was still in compile() after 13 minutes of
    CPU, and the command timed out at 15 minutes without a job on the cluster (Flink 1.19.3, 2026-12-07), while the
    demo's default recipe planned in seconds. In streaming mode the runner builds a DataStream job, which Flink does
    not optimize; the bounded input ends, and every window, side input and GroupByKey closes at the end of the input
    as in batch. The output is byte-identical to the local runner's (tests/test_engines.py). Flink's
    useDataStreamForBatch option would say the same, but the portable runner of Beam 2.62 does not read it."""
    from apache_beam.options.pipeline_options import StandardOptions

    options = PipelineOptions(beam_args)
    if runner_kind(options) != "flink" or options.view_as(StandardOptions).streaming:
        return beam_args, None
    return [*beam_args, "--streaming"], FLINK_STREAMING_NOTE


# How long a Spark executor keeps its SDK workers once a stage's tasks are done (--environment_cache_millis):
# long enough to reach the job's next stage, short enough not to hold idle workers on a shared cluster.
SPARK_ENVIRONMENT_CACHE_MS = 60_000


def spark_environment_cache(beam_args: list[str]) -> list[str]:
    """`beam_args` with --environment_cache_millis for a SparkRunner run that does not set it.

    Why: Beam's portable Spark runner runs every stage as Spark tasks that each take the job's SDK environment
    from a reference-counted cache in the executor and give it back when done. With Beam's default of 0 the
    environment is released the moment the count drops to zero, between one stage and the next, so each stage
    starts new SDK workers, which import tokenmill again and load lid.176, the classifiers and the tokenizer
    again (beam-runners-java-fn-execution 2.62.0: ReferenceCountingExecutableStageContextFactory.scheduleRelease;
    the Spark runner's release is asynchronous, after the TTL). A TTL keeps the workers of one job through its
    stages. It changes no output; the figures are in docs/scaling.md. Flink keeps its operators, and with them
    their environment, for the whole job."""
    if runner_kind(PipelineOptions(beam_args)) != "spark" or any(
            a.split("=")[0] == "--environment_cache_millis" for a in beam_args):
        return beam_args
    return [*beam_args, f"--environment_cache_millis={SPARK_ENVIRONMENT_CACHE_MS}"]


def dataflow_threads(beam_args: list[str]) -> tuple[list[str], str | None]:
    """(`beam_args` with the worker harness threads a Dataflow run needs (pipelines/dataflow.py:
    `harness_threads`: the machine type's vCPUs unless the user set the flag), the note of a machine type that
    does not say them). Other runners' arguments are returned as they are."""
    from apache_beam.options.pipeline_options import DebugOptions, WorkerOptions

    options = PipelineOptions(beam_args)
    if not is_dataflow(runner_name(options)):
        return beam_args, None
    added, note = harness_threads(options.view_as(WorkerOptions).machine_type,
                                  options.view_as(DebugOptions).number_of_worker_harness_threads)
    return [*beam_args, *added], note


def tune_malloc() -> None:
    """Cap glibc's malloc arenas and fix its mmap and trim thresholds (pipelines/worker.py says why): for this
    process now (mallopt) and for the processes it starts (environment, read by glibc at their start); and
    have their pyarrow allocate from glibc. A no-op where libc is not glibc; a value the user set in the
    environment wins. Workers a remote runner starts do not see this environment: they apply the same
    settings to themselves in their first DoFn's setup (pipelines.worker.apply_worker_settings)."""
    for name, default, _param in _MALLOPT:
        os.environ.setdefault(name, default)
    os.environ.setdefault(*ARROW_POOL)
    set_mallopt()


# The checkout (or installed copy) this driver runs from: the folder holding run_pipeline.py and driver/.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pin_worker_code() -> None:
    """Make the processes this run starts import this checkout's tokenmill, the same code as this driver.

    Why: the FnApiRunner's SDK workers are new interpreters (`python -m ...sdk_worker_main`); they find
    tokenmill's packages on sys.path, not next to the driver's script. With tokenmill installed from another
    checkout (an editable install elsewhere, a git worktree of an older commit for a benchmark), the driver
    ran this code and the workers the other: a silent mix that once made an A/B benchmark compare a commit
    with itself. This checkout goes first on PYTHONPATH, which the workers inherit (the extraction children
    get their worker's sys.path from multiprocessing). Only for a source checkout (pyproject.toml beside
    run_pipeline.py, in CHECKOUT): an installed copy is the one the workers find anyway."""
    if not os.path.isfile(os.path.join(CHECKOUT, "pyproject.toml")):
        return
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != CHECKOUT]
    os.environ["PYTHONPATH"] = os.pathsep.join([CHECKOUT, *rest])


def runs_in_process(beam_args: list[str], input_bytes: int | None) -> bool:
    """Whether `local_runner` itself chooses to run these flags' job with its one worker in the driver's
    process: no runner flag, no --direct_* flag, and inputs known to total at most IN_PROCESS_BYTES. A job
    the user's own flags put there (--runner=DirectRunner, --direct_running_mode=in_memory) runs as asked, and
    `extract_children` gives it one child: flags taken as given, not tuned."""
    if any(a == "--runner" or a.startswith("--runner=") or a.startswith("--direct_") for a in beam_args):
        return False
    return input_bytes is not None and input_bytes <= IN_PROCESS_BYTES


def extract_children(beam_args: list[str], input_bytes: int | None) -> int:
    """Extraction processes per worker for a run of these flags (IN_PROCESS_EXTRACT_CHILDREN says why)."""
    return IN_PROCESS_EXTRACT_CHILDREN if runs_in_process(beam_args, input_bytes) else 1


def local_runner(beam_args: list[str], input_bytes: int | None = None) -> list[str]:
    """Beam flags with the local runner pinned: no --runner means DEFAULT_RUNNER_ARGS (IN_PROCESS_RUNNER_ARGS
    for inputs of at most IN_PROCESS_BYTES and no --direct_* flag; `input_bytes` None: not known), and
    DirectRunner means FnApiRunner. Since Beam 2.68 the DirectRunner first tries Prism, which it downloads from
    GitHub at run time (offline, it falls back after the failed download); the FnApiRunner is the local batch
    runner the DirectRunner chose before, and the one Beam's release notes say to pin. It honours the
    --direct_* flags. Ask for Prism by name (--runner=PrismRunner) if you want it."""
    runner = [i for i, a in enumerate(beam_args) if a == "--runner" or a.startswith("--runner=")]
    if not runner:
        return (IN_PROCESS_RUNNER_ARGS if runs_in_process(beam_args, input_bytes) else DEFAULT_RUNNER_ARGS) + beam_args
    args = list(beam_args)
    for i in runner:
        if args[i] == "--runner" and i + 1 < len(args) and args[i + 1] == "DirectRunner":
            args[i + 1] = "FnApiRunner"
        elif args[i] == "--runner=DirectRunner":
            args[i] = "--runner=FnApiRunner"
    return args


def worker_options(options: PipelineOptions) -> Any:
    """The run's options as the provision info Beam's local SDK workers read them from.

    Why: the FnApiRunner starts its multi_processing workers with PIPELINE_OPTIONS taken from its provision
    info, which is empty unless the runner is given one. The workers then built Beam's FileSystems without the
    run's --s3_* endpoint and credentials (or GCP project) and failed on the first s3:// read with 'Unable to
    locate credentials', while the driver, which had them, matched the inputs fine. Remote runners ship the
    options themselves. Integers travel as strings, as Beam's portable runner sends them (a protobuf Struct
    would make them floats)."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner.fn_runner import ExtendedProvisionInfo
    from google.protobuf import json_format, struct_pb2

    values = {k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v
              for k, v in options.get_all_options(drop_default=True).items() if v is not None}
    struct = json_format.ParseDict({"options": values}, struct_pb2.Struct())
    return ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(
        retrieval_token="unused-retrieval-token", pipeline_options=struct))


# The command the FnApiRunner starts its multi_processing SDK workers with (Beam 2.62, fn_runner.py), and the
# one LocalRunner starts them with instead: the same worker, ended without the interpreter's teardown.
BEAM_WORKER_COMMAND = f"{sys.executable} -m apache_beam.runners.worker.sdk_worker_main"
LOCAL_WORKER_COMMAND = f"{shlex.quote(sys.executable)} -m harness.local_worker"


@functools.cache
def local_runner_class() -> type:
    """LocalRunner, defined on first use (Beam's runner module, ~0.1 s, is imported then)."""
    from apache_beam.portability import python_urns
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    class LocalRunner(FnApiRunner):
        """Beam's FnApiRunner whose multi_processing SDK workers run harness/local_worker.py (it says why): the
        job's environment that names Beam's worker command is given tokenmill's before the runner starts the
        workers. Any other environment, and a Beam whose command differs, run as they are."""

        def run_via_runner_api(self, pipeline_proto, options):
            for env in pipeline_proto.components.environments.values():
                if env.urn == python_urns.SUBPROCESS_SDK and env.payload == BEAM_WORKER_COMMAND.encode():
                    env.payload = LOCAL_WORKER_COMMAND.encode()
            return super().run_via_runner_api(pipeline_proto, options)

    return LocalRunner


def make_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """A Pipeline on the runner `beam_args` name (after `local_runner`); Beam's local runner is built here so
    its SDK workers get the run's options (`worker_options`) and end quickly (`local_runner_class`)."""
    options = PipelineOptions(beam_args)
    if runner_name(options) == "FnApiRunner":
        return beam.Pipeline(runner=local_runner_class()(provision_info=worker_options(options)), options=options)
    return beam.Pipeline(options=options)


def is_local(beam_args: list[str]) -> bool:
    """Whether the run uses Beam's local runner (the one whose workers share this machine)."""
    return runner_name(PipelineOptions(local_runner(beam_args))) in (
        "FnApiRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")
