"""A run submitted as a job: what `_started.json` records of it, its state asked of its job service, stopping it.

A local run (Beam's FnApiRunner) is no job: `p.run()` returns when it has ended. A run on a job service (Flink,
Spark, a PortableRunner's --job_endpoint) or on Dataflow goes on without the driver: `p.run()` returns once the
job is submitted. So the driver records the job's id and where to ask about it before it waits, cancels the job
when it is interrupted, and a rerun into the same folder asks whether the recorded job still runs before it
clears the folder the job is writing.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    GoogleCloudOptions,
    JobServerOptions,
    PipelineOptions,
    PortableOptions,
    SparkRunnerOptions,
)

from jobs.remote import LOCAL_FLINK_MASTERS, runner_kind

# Beam job API states (beam_job_api_pb2.JobState) after which a job writes nothing more: portable_runner's
# TERMINAL_STATES, and UPDATED (replaced by another job, which has its own id). UNSPECIFIED says nothing.
ENDED = ("DONE", "DRAINED", "FAILED", "CANCELLED", "UPDATED")

# How long a rerun waits for the recorded job service to answer before going ahead as if it were gone.
STATE_TIMEOUT_SECONDS = 5.0


def _runner_started_job_server(options: PipelineOptions) -> bool:
    """Whether the run's FlinkRunner or SparkRunner starts Beam's Java job server itself, on this machine
    (FlinkRunner / SparkRunner.default_job_server): no --job_endpoint, and no uber jar submitted straight to the
    cluster (Flink's only with a master not on this machine; Spark's always)."""
    kind = runner_kind(options)
    if kind not in ("flink", "spark") or options.view_as(PortableOptions).job_endpoint:
        return False
    if kind == "flink":
        flink = options.view_as(FlinkRunnerOptions)
        return not (flink.flink_submit_uber_jar and (flink.flink_master or "").strip() not in LOCAL_FLINK_MASTERS)
    return not options.view_as(SparkRunnerOptions).spark_submit_uber_jar


# The ports picked for SparkRunner's job servers in this process, by the run's Beam flags. SparkRunner starts one
# job server per process for the same options and reuses it (spark_runner.JOB_SERVER_CACHE, keyed by them): the
# same flags get the same port here, or each run would start another job server. FlinkRunner starts a new one
# for every run (the one before still listens until the process exits), so each gets a port of its own.
_SPARK_PORTS: dict[tuple[str, ...], int] = {}


def pin_job_port(beam_args: list[str]) -> list[str]:
    """`beam_args` with --job_port set to a free port when the runner starts its own job server and none is given,
    so that the job's endpoint is known (localhost:PORT) and can be recorded. Beam picks the port the same way
    (apache_beam.utils.subprocess_server.pick_port, called by JavaJarJobServer) but keeps it to itself."""
    options = PipelineOptions(beam_args)
    if not _runner_started_job_server(options) or options.view_as(JobServerOptions).job_port:
        return beam_args
    from apache_beam.utils.subprocess_server import pick_port

    if runner_kind(options) != "spark":
        (port,) = pick_port(None)
    else:
        if tuple(beam_args) not in _SPARK_PORTS:
            _SPARK_PORTS[tuple(beam_args)] = pick_port(None)[0]
        port = _SPARK_PORTS[tuple(beam_args)]
    return [*beam_args, f"--job_port={port}"]


def job_endpoint(options: PipelineOptions) -> str | None:
    """Where the run's job service answers (a Beam JobService, gRPC HOST:PORT), or None: a --job_endpoint given
    (not "embed", Beam's job service inside this process), or the job server a Flink or Spark runner started on
    --job_port (`pin_job_port`). None for Dataflow, whose jobs are asked of Google's API, not of a job service."""
    endpoint = options.view_as(PortableOptions).job_endpoint
    if endpoint:
        return None if endpoint == "embed" else endpoint
    port = options.view_as(JobServerOptions).job_port
    return f"localhost:{port}" if port and _runner_started_job_server(options) else None


def job_id(result: Any) -> str | None:
    """The id of the job `result` (what Pipeline.run returned) is, or None for a run that is no job (Beam's
    local runners). DataflowPipelineResult says it (job_id()); the PortableRunner's PipelineResult, which
    FlinkRunner and SparkRunner return too, keeps it in `_job_id` (Beam 2.62, runners/portability/
    portable_runner.py), a private name: read only if there, and a string."""
    public = getattr(result, "job_id", None)
    if callable(public):
        try:
            value = public()
        except Exception:  # noqa: BLE001 - a result without a job yet
            value = None
        return str(value) if value else None
    value = getattr(result, "_job_id", None)
    return value if isinstance(value, str) and value else None


def job_record(result: Any, beam_args: list[str], runner: str) -> dict[str, Any] | None:
    """{"runner", "id", "endpoint"} for `_started.json`, or None when `result` is no job. For Dataflow also the
    project and region its id belongs to."""
    identifier = job_id(result)
    if identifier is None:
        return None
    options = PipelineOptions(beam_args)
    record: dict[str, Any] = {"runner": runner, "id": identifier, "endpoint": job_endpoint(options)}
    master = (options.view_as(FlinkRunnerOptions).flink_master or "").strip()
    if runner_kind(options) == "flink" and master not in ("", *LOCAL_FLINK_MASTERS):
        record["flink_master"] = master
    if runner_kind(options) == "dataflow":
        cloud = options.view_as(GoogleCloudOptions)
        record.update(project=cloud.project, region=cloud.region)
    return record


def job_state(endpoint: str, identifier: str, timeout: float = STATE_TIMEOUT_SECONDS) -> str | None:
    """The state (a beam_job_api_pb2.JobState name: RUNNING, DONE, ...) the Beam job service at `endpoint` gives
    job `identifier`, or None when it cannot say: nothing answers there, or it knows no such job (a job server
    started again since holds none of the jobs of the one before)."""
    import grpc
    from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc

    channel = grpc.insecure_channel(endpoint)
    try:
        response = beam_job_api_pb2_grpc.JobServiceStub(channel).GetState(
            beam_job_api_pb2.GetJobStateRequest(job_id=identifier), timeout=timeout)
    except grpc.RpcError:
        return None
    finally:
        channel.close()
    return beam_job_api_pb2.JobState.Enum.Name(response.state)


# Flink job states (REST /jobs/overview) after which a job writes nothing more.
FLINK_ENDED = ("FINISHED", "FAILED", "CANCELED")


def flink_state(master: str, identifier: str, timeout: float = STATE_TIMEOUT_SECONDS) -> str | None:
    """The state Flink's REST API at `master` gives the cluster job of Beam job `identifier`, or None when it
    cannot say. Beam's Flink job server names the cluster job after the Beam job: the id is that name, an
    underscore and a UUID ("BeamApp-root-1207062240-d110c3f9_9913fe96-..."), so the name is the id up to its last
    underscore. Of several such jobs (a resubmission), any that has not ended is the answer."""
    import json
    import urllib.request

    name = identifier.rsplit("_", 1)[0]
    base = master if "://" in master else f"http://{master}"
    try:
        with urllib.request.urlopen(f"{base.rstrip('/')}/jobs/overview", timeout=timeout) as reply:
            jobs = json.load(reply).get("jobs", [])
    except (OSError, ValueError):
        return None
    states = [str(j.get("state")) for j in jobs if isinstance(j, dict) and j.get("name") == name]
    running = [s for s in states if s not in FLINK_ENDED]
    return running[0] if running else (states[0] if states else None)


def still_running(record: dict[str, Any] | None) -> str | None:
    """The state of the job `record` (from `_started.json`) names if it has not ended, else None: None too for a
    job nobody can be asked about (a local run, Dataflow) or whose service does not answer.

    A FlinkRunner job is also asked of the Flink cluster (`flink_state`): the job server that FlinkRunner
    starts lives in the driver's process group and ends with it, while the job goes on on the cluster and keeps
    writing into the output (found with a real Flink 1.19 cluster: a driver killed mid-run, then a rerun that
    would have cleared the folder under the running job)."""
    if not record or not record.get("id"):
        return None
    if record.get("endpoint"):
        state = job_state(str(record["endpoint"]), str(record["id"]))
        if state is not None and state not in (*ENDED, "UNSPECIFIED"):
            return state
    if record.get("flink_master"):
        state = flink_state(str(record["flink_master"]), str(record["id"]))
        if state is not None and state not in FLINK_ENDED:
            return state
    return None


def cancel(result: Any) -> str | None:
    """Cancel the job `result` is; None once done, else why it could not be (the runner has no cancel, or it
    failed), in one line. Beam's PipelineResult.cancel raises NotImplementedError on a runner that cannot."""
    try:
        result.cancel()
    except Exception as exc:  # noqa: BLE001 - whatever it raises, the job is left running and the user told
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return None


class KeepInterrupts:
    """Context manager around Pipeline.run: the SIGINT handler in place before it is put back after it.

    Why: the job server FlinkRunner and SparkRunner start for themselves (job_server.StopOnExitJobServer, Beam
    2.62) installs its own SIGINT handler, which stops the job server instead of raising KeyboardInterrupt:
    a Ctrl-C while the driver waits then lost the job server the job is cancelled through, and the wait ended
    in a gRPC error reported as a failed run. With the handler back, Ctrl-C cancels the job through the job
    server, which is stopped when the process exits (its atexit hook)."""

    def __enter__(self) -> KeepInterrupts:
        main = threading.current_thread() is threading.main_thread()
        self.handler = signal.getsignal(signal.SIGINT) if main else None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handler is not None and signal.getsignal(signal.SIGINT) is not self.handler:
            signal.signal(signal.SIGINT, self.handler)
