"""A run submitted as a job (jobs/record.py): recorded in _started.json once submitted, cancelled by Ctrl-C, a rerun
refused while it still runs, and no manifest.json left by a job that failed after its final step wrote one.

The jobs are real: Beam's own Python job service (as in tests/test_portable.py) runs them, reached by the
PortableRunner with --job_endpoint, and the command runs as a user runs it (`python -m tokenmill_cli run`, its
own process). LOOPBACK puts the SDK harness in the command's process, so the workers read this machine's files
and a SIGINT to that process is the Ctrl-C a terminal sends. What is not tested here: a Flink or Spark job
server's cancel (Beam's Python job service marks the job CANCELLED and then FAILED once its workers have gone,
without stopping the work itself: local_job_service.BeamJob.cancel), and Dataflow, whose job state a rerun does
not ask (no job service; the gcp extra is not installed here)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import run_pipeline
from console.endings import INTERRUPTED, RESUME
from jobs.record import (
    KeepInterrupts,
    job_endpoint,
    job_record,
    job_state,
    pin_job_port,
    still_running,
)
from schemas.recipe import load_recipe
from tests.test_pipeline import IN_MEMORY, run

TOKENMILL = [sys.executable, "-m", "tokenmill_cli"]


def _argv(crawl: Path, out: Path, endpoint: str) -> list[str]:
    return ["run", "--input", *(str(p) for p in sorted(crawl.glob("*.warc.gz"))), "--output", str(out),
            "--runner=PortableRunner", f"--job_endpoint={endpoint}", "--environment_type=LOOPBACK"]


def _start_run(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*TOKENMILL, *argv], cwd=run_pipeline.CHECKOUT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _recorded_job(out: Path, proc: subprocess.Popen, deadline: float = 300.0) -> dict:
    """The job _started.json records, once the command has submitted it."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            job = json.loads((out / "_started.json").read_text()).get("job")
        except (OSError, ValueError):  # not there yet, or being replaced
            job = None
        if job:
            return job
        if proc.poll() is not None:
            raise AssertionError(f"the command ended ({proc.returncode}) before recording a job: {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError("no job recorded")


def _states(endpoint: str, job_id: str) -> list[str]:
    """Every state the job service gave the job, up to its first terminal one (GetStateStream replays them)."""
    import grpc
    from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc

    with grpc.insecure_channel(endpoint) as channel:
        stream = beam_job_api_pb2_grpc.JobServiceStub(channel).GetStateStream(
            beam_job_api_pb2.GetJobStateRequest(job_id=job_id), timeout=60)
        return [beam_job_api_pb2.JobState.Enum.Name(event.state) for event in stream]


def test_ctrl_c_cancels_the_recorded_job_and_the_same_command_runs_it_again(job_service, bench_crawl_300, tmp_path):
    out = tmp_path / "out"
    argv = _argv(bench_crawl_300, out, job_service)
    proc = _start_run(argv)
    try:
        job = _recorded_job(out, proc)
        assert job["runner"] == "PortableRunner" and job["endpoint"] == job_service
        assert job["id"].startswith("job-")  # Beam's job service's own id, asked of it:
        assert job_state(job_service, job["id"]) in ("STARTING", "RUNNING")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, err) == (INTERRUPTED, f"tokenmill: {RESUME}\n")
    assert _states(job_service, job["id"])[-1] == "CANCELLED"  # the driver's cancel reached the job service
    assert not (out / "manifest.json").exists()
    again = subprocess.run([*TOKENMILL, *argv], cwd=run_pipeline.CHECKOUT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert again.stderr == f"tokenmill: note: running the interrupted run in {out} again from the start\n"
    assert not (out / "_started.json").exists() and (out / "manifest.json").exists()


def test_a_rerun_while_the_recorded_job_runs_is_refused_with_its_id(job_service, bench_crawl_300, tmp_path):
    """The first command is stopped (SIGSTOP) once its job is submitted: with LOOPBACK its workers stop with it,
    so the job stays RUNNING for as long as the second command takes. It then goes on and finishes, untouched."""
    out = tmp_path / "out"
    argv = _argv(bench_crawl_300, out, job_service)
    first = _start_run(argv)
    try:
        job = _recorded_job(out, first)
        os.kill(first.pid, signal.SIGSTOP)
        try:
            second = subprocess.run([*TOKENMILL, *argv], cwd=run_pipeline.CHECKOUT, capture_output=True, text=True)
            started = json.loads((out / "_started.json").read_text())
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert second.returncode == 2 and second.stdout == ""
        assert second.stderr == (f"tokenmill: output directory {out} is being written by job {job['id']} "
                                 f"(PortableRunner at {job_service}), which is RUNNING: wait for it to end or cancel "
                                 "it there, then run again\n")
        assert started["job"] == job  # the folder was left alone
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, stderr
    assert stdout.startswith("tokenmill: 312 records")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_a_job_whose_service_is_gone_or_has_ended_does_not_hold_the_folder(job_service, demo_crawl, tmp_path):
    gone = {"runner": "PortableRunner", "id": "job-1", "endpoint": f"localhost:{_free_port()}"}
    start = time.monotonic()
    assert job_state(gone["endpoint"], "job-1") is None and still_running(gone) is None
    assert time.monotonic() - start < 5  # nothing listens: refused at once, not waited for
    assert still_running({**gone, "endpoint": job_service}) is None  # a service that knows no such job
    assert still_running({"runner": "DataflowRunner", "id": "2026-12-07_01", "endpoint": None}) is None
    out = tmp_path / "out"
    run_pipeline.prepare_output(str(out), recipe=load_recipe(None), inputs=sorted(demo_crawl))
    started = json.loads((out / "_started.json").read_text())
    (out / "_started.json").write_text(json.dumps({**started, "job": gone}))
    assert run_pipeline.prepare_output(str(out), recipe=load_recipe(None), inputs=sorted(demo_crawl)) == (
        f"note: running the interrupted run in {out} again from the start")


def test_a_job_that_fails_after_the_final_step_wrote_the_manifest_leaves_none(demo_crawl, tmp_path, monkeypatch,
                                                                              capsys):
    """The final step writes manifest.json, then stats.json. Here stats.json cannot be written (its temporary
    name is taken by a folder, made once the output is prepared: no hook in the pipeline), so the job fails
    after the manifest was written. It used to stay, and the folder read as a finished run; now the run leaves
    _failed.json and no manifest, and once the cause is gone the same command replaces it."""
    out = tmp_path / "out"
    prepare = run_pipeline.prepare_output

    def prepare_then_block_stats(output: str, **kw):
        note = prepare(output, **kw)
        os.makedirs(f"{output}/stats.json.tmp")
        return note

    monkeypatch.setattr(run_pipeline, "prepare_output", prepare_then_block_stats)
    with pytest.raises(Exception, match="stats.json.tmp"):
        run(demo_crawl, out, *IN_MEMORY)
    assert not (out / "manifest.json").exists()
    assert "stats.json.tmp" in json.loads((out / "_failed.json").read_text())["errors"][0]
    monkeypatch.setattr(run_pipeline, "prepare_output", prepare)
    (out / "stats.json.tmp").rmdir()
    argv = ["--input", *demo_crawl, "--output", str(out), *IN_MEMORY]
    assert run_pipeline.main(argv) == 0
    assert capsys.readouterr().err == f"tokenmill: note: replacing the run in {out}, which ended in an error\n"
    assert (out / "manifest.json").exists() and not (out / "_failed.json").exists()


def test_a_run_stopped_after_its_final_step_is_an_interrupted_run_not_a_finished_one(demo_crawl, tmp_path, capsys):
    """A driver killed after the final step wrote manifest.json, before it removed _started.json, leaves both. A
    rerun refused it as a finished run, and stats read it as one; both now call it interrupted."""
    import tokenmill_cli

    out = tmp_path / "out"
    run(demo_crawl, out, *IN_MEMORY)
    started = {"command": "run", "recipe_name": "default", "recipe_sha256": load_recipe(None).sha256(),
               "inputs": sorted(demo_crawl)}
    (out / "_started.json").write_text(json.dumps(started))
    assert tokenmill_cli.main(["stats", str(out)]) == 2
    assert capsys.readouterr().err == (f"tokenmill: {out}: holds a run that was interrupted or is still running (its "
                                       "manifest.json is written, but the run has not ended); the same command runs "
                                       "it again from the start\n")
    assert run_pipeline.main([str(out), "--output", str(tmp_path / "selected"), *IN_MEMORY],
                             command=run_pipeline.select) == 2
    assert capsys.readouterr().err == (f"tokenmill: {out} holds a run that was interrupted or is still running: run "
                                       "its own command again to finish it first\n")
    assert run_pipeline.main(["--input", *demo_crawl, "--output", str(out), *IN_MEMORY]) == 0
    assert capsys.readouterr().err == f"tokenmill: note: running the interrupted run in {out} again from the start\n"
    assert not (out / "_started.json").exists()


def test_a_job_its_runner_cannot_cancel_is_named_as_still_running(capfd):
    """Beam's PipelineResult.cancel raises NotImplementedError where a runner cannot cancel: the Ctrl-C line says
    the job runs on, with its id, and the exit is still 130."""
    from apache_beam.runners.runner import PipelineResult, PipelineState

    job = {"runner": "FlinkRunner", "id": "job-7", "endpoint": "localhost:8099"}
    stopped = run_pipeline.stop_job(PipelineResult(PipelineState.RUNNING), job)
    assert isinstance(stopped, run_pipeline.JobLeftRunning)
    line = ("interrupted, but job job-7 at localhost:8099 could not be cancelled (NotImplementedError) and keeps "
            "running: stop it there, then the same command runs it again from the start")
    assert str(stopped) == line
    assert type(run_pipeline.stop_job(PipelineResult(PipelineState.DONE), None)) is KeyboardInterrupt  # no job

    def interrupted(argv, console_fd=None):
        raise stopped

    assert run_pipeline.main([], command=interrupted) == INTERRUPTED
    assert capfd.readouterr().err == f"tokenmill: {line}\n"


def test_the_endpoint_of_a_job_server_the_runner_starts_is_pinned_so_it_can_be_recorded():
    """FlinkRunner and SparkRunner start Beam's Java job server on a port they pick and keep to themselves;
    tokenmill picks it (--job_port) so _started.json can say where to ask about the job."""
    from apache_beam.options.pipeline_options import PipelineOptions

    flink = pin_job_port(["--runner=FlinkRunner"])
    assert flink[0] == "--runner=FlinkRunner" and flink[1].startswith("--job_port=")
    assert job_endpoint(PipelineOptions(flink)) == f"localhost:{flink[1].split('=')[1]}"
    spark = pin_job_port(["--runner=SparkRunner"])
    assert pin_job_port(["--runner=SparkRunner"]) == spark  # Beam reuses Spark's job server for the same options
    for unchanged in (["--runner=SparkRunner", "--job_port=8099"], ["--runner=FlinkRunner", "--job_endpoint=h:8099"],
                      ["--runner=PortableRunner", "--job_endpoint=h:8099"], ["--runner=DataflowRunner"], [],
                      ["--runner=FlinkRunner", "--flink_master=h:8081", "--flink_submit_uber_jar"]):
        assert pin_job_port(unchanged) == unchanged
    assert job_endpoint(PipelineOptions(["--runner=SparkRunner", "--job_port=8099"])) == "localhost:8099"
    assert job_endpoint(PipelineOptions(["--runner=PortableRunner", "--job_endpoint=h:8099"])) == "h:8099"
    assert job_endpoint(PipelineOptions(["--runner=PortableRunner", "--job_endpoint=embed"])) is None
    assert job_endpoint(PipelineOptions(["--runner=DataflowRunner"])) is None


def test_a_local_run_is_no_job():
    """Beam's local runner returns from Pipeline.run when the run has ended: nothing to record or cancel."""
    import apache_beam as beam

    p = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(IN_MEMORY))
    _ = p | beam.Create([1])
    assert job_record(p.run(), IN_MEMORY, "DirectRunner") is None


def test_the_interrupt_handler_a_job_server_installs_is_put_back():
    """Beam's StopOnExitJobServer replaces the SIGINT handler as it starts (so Ctrl-C stopped the job server
    instead of raising KeyboardInterrupt); what was there before Pipeline.run is put back after it."""
    before = signal.getsignal(signal.SIGINT)
    with KeepInterrupts():
        signal.signal(signal.SIGINT, lambda *_: None)  # what job_server.StopOnExitJobServer.start does
    assert signal.getsignal(signal.SIGINT) is before
