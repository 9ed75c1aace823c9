"""Which runners' workers cannot open this machine's files, and the paths of a run that they would have to.

A run on Dataflow or a Flink or Spark cluster given `--input crawl/*.warc.gz --output out` used to match the
crawl here, write `_started.json` here and submit: the workers then failed on files that exist only on the
driver's disk, or wrote their shards to their own disks. The run is refused before anything is written instead,
naming the flag or recipe key and the path, unless `--shared-filesystem` says the folder is mounted on every
worker. Only paths a worker opens are refused; what the driver alone reads (the recipe file, --input-list files,
the benchmark files the driver builds the decontamination index from) may stay local.
"""

from __future__ import annotations

import os
import re

from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    PipelineOptions,
    PortableOptions,
    SparkRunnerOptions,
    StandardOptions,
)

from storage.files import is_local

# apache_beam.runners.portability.flink_runner.MAGIC_HOST_NAMES: the --flink_master values that make Beam's
# Flink job server start an embedded Flink on this machine ("[auto]" is the default).
LOCAL_FLINK_MASTERS = ("[local]", "[auto]")

# apache_beam.runners.portability.spark_runner.LOCAL_MASTER_PATTERN: a --spark_master_url that runs Spark inside
# the job server on this machine ("local[4]" is the default).
LOCAL_SPARK_MASTER = re.compile(r"^local(\[.+\])?$")

def runner_kind(options: PipelineOptions) -> str:
    """--runner as Beam resolves a name (apache_beam.runners.runner.create_runner: the class name in any case,
    with or without its module path or its 'Runner' suffix), lower case without the suffix: "dataflow",
    "flink", "spark", "portable", "fnapi", ...; "" when none is given."""
    name = str(options.view_as(StandardOptions).runner or "").rsplit(".", 1)[-1].lower()
    return name.removesuffix("runner")


def remote_workers(beam_args: list[str]) -> str | None:
    """Why the workers of a run with `beam_args` cannot open this machine's files, in words ("DataflowRunner",
    "FlinkRunner with --flink_master=host:8081"), or None when they can.

    Beam's options decide it (apache_beam.options.pipeline_options):
    - --runner (StandardOptions): DataflowRunner's workers are Google's machines, always. FlinkRunner,
      SparkRunner and PortableRunner submit to a job service; the Python SDK harness that runs tokenmill's
      steps (and opens their files) is the run's environment.
    - --environment_type (PortableOptions): LOOPBACK runs the SDK harness in this process, whatever the engine
      and wherever it is; DOCKER in containers, which see only their image's files even on this machine (Beam
      mounts nothing of the host but gcloud's credentials). Unset, Beam picks LOOPBACK for a Flink or Spark
      master on this machine (FlinkRunner / SparkRunner.default_environment) and DOCKER otherwise
      (Environment.from_options). PROCESS and EXTERNAL run where the engine starts them.
    - --flink_master (FlinkRunnerOptions): "[local]" or "[auto]" (the default) is an embedded Flink in the job
      server this process starts; anything else is a cluster.
    - --spark_master_url (SparkRunnerOptions): local[...] (the default local[4]) runs Spark in the job server;
      anything else, or --spark_submit_uber_jar (which submits to --spark_rest_url), is a cluster.
    - --job_endpoint (PortableOptions): a job service someone started, on a machine and engine this process
      cannot see; "embed" is Beam's Python job service inside this process. A Flink or Spark runner given one
      submits there, and its own master option is not what runs the job.
    Any other runner (Beam's local runners, Prism) runs here: None."""
    options = PipelineOptions(beam_args)
    runner = runner_kind(options)
    if runner == "dataflow":
        return "DataflowRunner"
    if runner not in ("flink", "spark", "portable"):
        return None
    portable = options.view_as(PortableOptions)
    endpoint = portable.job_endpoint or ""
    flink_master = (options.view_as(FlinkRunnerOptions).flink_master or "").strip()
    spark = options.view_as(SparkRunnerOptions)
    local_master = (runner == "flink" and flink_master in LOCAL_FLINK_MASTERS) or (
        runner == "spark" and bool(LOCAL_SPARK_MASTER.match(spark.spark_master_url or "")))
    engine = ""  # what runs the job when it is not this machine, in words
    if endpoint and endpoint != "embed":
        engine = f"--job_endpoint={endpoint}"
    elif runner == "flink" and not local_master:
        engine = f"--flink_master={flink_master}"
    elif runner == "spark" and spark.spark_submit_uber_jar:
        engine = f"--spark_rest_url={spark.spark_rest_url}"
    elif runner == "spark" and not local_master:
        engine = f"--spark_master_url={spark.spark_master_url}"
    environment = (portable.environment_type or "").upper() or ("LOOPBACK" if local_master else "DOCKER")
    if environment == "LOOPBACK":
        return None
    title = {"flink": "FlinkRunner", "spark": "SparkRunner", "portable": "PortableRunner"}[runner]
    if engine:
        return f"{title} with {engine}"
    if environment == "DOCKER":
        return f"{title} with --environment_type=DOCKER (containers)"
    return None


def local_path_problem(what: str, path: str, remote: str | None, shared: bool) -> str | None:
    """The one line refusing `path` (given as `what`: a flag or a recipe key) to workers that are `remote`
    (remote_workers' answer), or None when they can open it: a path with a scheme (gs://, s3://, hdfs://,
    azfs://: Beam's FileSystems name the same object from every machine), workers on this machine, or
    `shared` (--shared-filesystem: the folder is mounted on every worker) with an absolute path, which names
    the same file there (a relative one would be relative to each worker's own working folder)."""
    if remote is None or not is_local(path):
        return None
    if shared:
        if os.path.isabs(path):
            return None
        return (f"{what} '{path}' is relative, and the workers of {remote} do not start in this folder: give it as "
                f"an absolute path on the shared filesystem ({os.path.abspath(path)})")
    return (f"{what} '{path}' is on this machine's disk, and the workers of {remote} cannot open it: give a path "
            "they can (gs://, s3://, hdfs://, ...), or --shared-filesystem if it is mounted at the same place on "
            "every worker")
