"""What a run on Google Cloud Dataflow needs from tokenmill: the worker threads the extraction design is sized
for, and the job request a dry run shows without submitting it. docs/scaling.md ("Dataflow: the flags, the
worker threads and the job request") has the figures.

Worker threads. Every thread that runs bundles drives one ExtractDocuments instance, and with it one
extraction child (ingest/extract.py): an SDK process of ~320-390 MiB and a child of ~120 MiB per thread
(docs/scaling.md), sized for one thread per vCPU: extraction, 72 % of the CPU, runs in the child while the
thread does the rest, so one thread keeps a core busy, and more threads add memory and contention, not
throughput. 12 per vCPU would share a core among 12 children, and a page that takes the default 5 s CPU-time limit
would need a minute of wall time, meeting the 60 s wall-clock backstop first (the one limit that depends on
the machine). One thread per vCPU is what Dataflow runs for a Python batch job: one SDK
process per vCPU, one thread per process ("Reduce the number of threads",
https://cloud.google.com/dataflow/docs/guides/troubleshoot-oom, as read 2026-12-07), with 12 threads per
process for a streaming job, and "all of these numbers are subject to change at any time". A run on Dataflow
therefore states the number itself: `--number_of_worker_harness_threads` = the vCPUs of `--machine_type`
unless the user set it, which the request carries as the worker pool's `numThreadsPerWorker`. The page's
advice for batch jobs ("set the value to a number that is less than the number of vCPUs") reads the number as
threads per worker VM, not per SDK process; that reading is not measured here (no Dataflow account).

The request offline. Beam 2.62's DataflowRunner under `--dry_run` returns right after it has built the job
(apiclient.Job) and before `create_job`, which is where it would stage the files, build the request's
environment and write `--dataflow_job_file`: a dry run writes no job file at all. `job_request` runs the
rest of Beam's own `DataflowApplicationClient.create_job_description` on that job with the two upload calls
replaced by a record of what would be uploaded (name and size) and no HTTP or storage client, so no
credentials and no network: what it returns is the body `create_job` would send and write to the job file,
and the files Beam would stage, the pipeline (`pipeline.pb`, which the request names by its gs:// URL:
since Runner v2 the steps travel as that file, not in the request) among them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

# Dataflow's documented limits (https://cloud.google.com/dataflow/docs/request-quotas, "Jobs", as read
# 2026-12-07): "JSON job requests that are 20 MB in size or smaller" (estimated with --dataflow_job_file) and
# a job graph of at most 10 MB. Taken as decimal megabytes, the smaller reading.
REQUEST_LIMIT_BYTES = 20_000_000
GRAPH_LIMIT_BYTES = 10_000_000

# The file Beam stages the Runner API pipeline as (apache_beam.runners.internal.names.STAGED_PIPELINE_FILENAME).
PIPELINE_FILE = "pipeline.pb"

# Compute Engine machine type names that say their vCPUs: predefined (n1-standard-4, n2-highmem-8,
# c3-standard-22-lssd) and custom (custom-4-16384, n2-custom-8-32768-ext). Others (e2-medium, shared-core
# types, a2-highgpu-1g, whose number counts GPUs) say nothing we can use.
_PREDEFINED = re.compile(r"[a-z][a-z0-9]*-[a-z]+-(\d+)(?:-lssd|-metal)?")
_CUSTOM = re.compile(r"(?:[a-z][a-z0-9]*-)?custom-(\d+)-\d+(?:-ext)?")


def is_dataflow(runner: str) -> bool:
    """Whether a --runner value names Beam's DataflowRunner (Beam takes 'DataflowRunner', 'dataflow', any case,
    or the class's module path)."""
    return runner.rsplit(".", 1)[-1].lower().removesuffix("runner") == "dataflow"


def machine_vcpus(machine_type: str) -> int | None:
    """The vCPUs a Compute Engine machine type name states, or None (a name without them, or not a machine
    type's name). A zone-qualified URL is read by its last part."""
    name = machine_type.strip().rsplit("/", 1)[-1].lower()
    for pattern in (_CUSTOM, _PREDEFINED):
        if m := pattern.fullmatch(name):
            return int(m.group(1)) or None
    return None


THREADS_FLAG = "--number_of_worker_harness_threads"


def harness_threads(machine_type: str | None, threads: int | None) -> tuple[list[str], str | None]:
    """(Beam flags to add, a note for the console) for a Dataflow run whose --machine_type and
    --number_of_worker_harness_threads are these: the user's thread count is kept; without it, the machine's
    vCPUs (one thread, so one extraction child, per SDK process: the module's docstring says why); a machine
    type that does not say its vCPUs, or none, leaves Dataflow's choice, with a note saying so."""
    if threads:
        return [], None
    vcpus = machine_vcpus(machine_type) if machine_type else None
    if vcpus is None:
        which = f"--machine_type {machine_type} does not say its vCPUs" if machine_type else "no --machine_type"
        return [], (f"note: {which}, so Dataflow chooses the worker threads (one per vCPU for a batch job today, "
                    f"each with its own extraction child); give --machine_type (e.g. n1-standard-4) or {THREADS_FLAG}")
    return [f"{THREADS_FLAG}={vcpus}"], None


@dataclass(frozen=True)
class DataflowRequest:
    """What a Dataflow submission would send: `body`, the CreateJob request's Job JSON (what --dataflow_job_file
    holds); `staged`, {gs:// path: bytes} of each file it would upload first; `pipeline`, the one of them that
    is the Runner API pipeline (pipeline.pb, the job's steps)."""

    body: bytes
    staged: dict[str, int]
    pipeline: bytes

    def job(self) -> dict[str, Any]:
        import json

        return json.loads(self.body)

    def staged_names(self) -> list[str]:
        return sorted(path.rsplit("/", 1)[-1] for path in self.staged)

    def threads(self) -> int | None:
        pools = self.job().get("environment", {}).get("workerPools", [])
        return pools[0].get("numThreadsPerWorker") if pools else None


# The parts of Beam 2.62's DataflowApplicationClient that job_request relies on (private ones included):
# checked at use, so a Beam that renamed them fails with their names instead of uploading or mis-building.
_CLIENT_PARTS = ("create_job_description", "_stage_resources", "_gcs_file_copy", "stage_file",
                 "_get_sdk_image_overrides")


def job_request(result: Any) -> DataflowRequest:
    """The request a dry run's DataflowRunner result (`result.job`) would have become, built offline by Beam's
    own create_job_description (module docstring). Modifies the job as submitting it would (its environment)."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import GoogleCloudOptions, StandardOptions
    from apache_beam.runners.dataflow.internal import apiclient

    job = getattr(result, "job", None)
    if job is None:
        raise RuntimeError("the DataflowRunner's dry run returned no job to build the request from")
    base = apiclient.DataflowApplicationClient
    missing = [name for name in _CLIENT_PARTS if not hasattr(base, name)]
    if missing:
        raise RuntimeError(f"this Beam's DataflowApplicationClient has no {', '.join(missing)}: the offline "
                           "request (pipelines/dataflow.py) was written for apache-beam 2.62.0")

    class Unsent(base):
        """Beam's client without its HTTP and storage clients (so without credentials); the uploads are
        recorded, not made."""

        def __init__(self, options: Any, root_staging_location: str) -> None:  # the base's, minus the clients
            self.standard_options = options.view_as(StandardOptions)
            self.google_cloud_options = options.view_as(GoogleCloudOptions)
            self._enable_caching = self.google_cloud_options.enable_artifact_caching
            self._root_staging_location = root_staging_location or self.google_cloud_options.staging_location
            self.environment_version = apiclient._FNAPI_ENVIRONMENT_MAJOR_VERSION
            self._sdk_image_overrides = self._get_sdk_image_overrides(options)
            self.staged: dict[str, int] = {}
            self.pipeline = b""

        def _gcs_file_copy(self, from_path: str, to_path: str, sha256: str) -> None:
            self.staged[to_path] = os.path.getsize(from_path)

        def stage_file(self, gcs_or_local_path: str, file_name: str, stream: Any, mime_type: str = "",
                       total_size: int | None = None) -> None:
            data = stream.read()
            self.staged[FileSystems.join(gcs_or_local_path, file_name)] = len(data)
            if file_name == PIPELINE_FILE:
                self.pipeline = data

    client = Unsent(job.options, job.root_staging_location)
    client.create_job_description(job)
    if not client.pipeline:
        raise RuntimeError(f"Beam's create_job_description staged no {PIPELINE_FILE}: the offline request "
                           "(pipelines/dataflow.py) was written for apache-beam 2.62.0")
    return DataflowRequest(body=job.json().encode("utf-8"), staged=client.staged, pipeline=client.pipeline)
