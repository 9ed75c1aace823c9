"""Dataflow, checked offline: the request `tokenmill run --runner=DataflowRunner --dry_run=True` builds for a
crawl listed in a 100,000-line --input-list, with no credentials and no network.

What Dataflow would get is a CreateJob request (the Job JSON that --dataflow_job_file holds) and, staged before
it, the files it names: tokenmill's wheel, Beam's lists, and pipeline.pb, the job's steps. The request must stay
well under Dataflow's limits (https://cloud.google.com/dataflow/docs/request-quotas: 20 MB of JSON, a 10 MB
job graph) and must not grow with the crawl; nothing in it may be a path on this machine except the two
submission flags the user typed (Beam copies every option into the request as given); the wheel must be among
the staged files; and the workers must run the harness threads the extraction design is sized for
(pipelines/dataflow.py). Beam 2.62's dry run writes no job file: tokenmill builds the request offline with
Beam's own code (pipelines/dataflow.py: job_request).
"""

from __future__ import annotations

import base64
import bz2
import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import run_pipeline
from pipelines.dataflow import GRAPH_LIMIT_BYTES, REQUEST_LIMIT_BYTES, harness_threads, machine_vcpus
from tests.conftest import REPO

BUCKET = "gs://tokenmill-example"
DATAFLOW = ["--runner=DataflowRunner", "--project=tokenmill-example", "--region=us-central1",
            f"--temp_location={BUCKET}/tmp", "--job_name=tokenmill-dry-run", "--dry_run=True"]


def cc_paths(n: int) -> list[str]:
    """n paths shaped like one Common Crawl snapshot's WARC files (~140 characters each), on gs://."""
    return [f"{BUCKET}/crawl-data/CC-MAIN-2024-10/segments/1707947{i // 100:05d}.{i % 100:02d}/warc/"
            f"CC-MAIN-20240220211055-20240221001055-{i:05d}.warc.gz" for i in range(n)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """tokenmill's wheel, built from this checkout as README's "Running on a cluster" says."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True, timeout=300)
    (built,) = dist.glob("tokenmill-*.whl")
    return built


@pytest.fixture
def offline(monkeypatch, tmp_path) -> list[str]:
    """No Google credentials to find (no key file, an empty gcloud folder) and no connection beyond loopback:
    each attempt is refused and listed, so a dry run that swallowed the refusal still fails the test."""
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud-config"))
    attempts: list[str] = []
    loopback = ("127.0.0.1", "::1", "localhost")
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(sock: socket.socket, address) -> None:
        if sock.family == socket.AF_UNIX or (isinstance(address, tuple) and address[0] in loopback):
            return connect(sock, address)
        attempts.append(f"connect {address}")
        raise OSError(f"offline test: no connection to {address}")

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host in loopback or host is None:
            return getaddrinfo(host, *args, **kwargs)
        attempts.append(f"getaddrinfo {host}")
        raise OSError(f"offline test: no name lookup of {host}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    return attempts


def dry_run(folder: Path, files: int, wheel: Path, *flags: str) -> tuple[dict, Path]:
    """`tokenmill run` as a user types it, --input-list naming `files` gs:// WARC files that do not exist."""
    folder.mkdir()
    listed = folder / "warc.paths"
    listed.write_text("\n".join(cc_paths(files)) + "\n")
    job_file = folder / "job.json"
    stats = run_pipeline.run(["--input-list", str(listed), "--output", f"{BUCKET}/out", "--config", "fineweb",
                              *DATAFLOW, "--machine_type=n1-standard-4", f"--extra_package={wheel}",
                              f"--dataflow_job_file={job_file}", "--quiet", *flags])
    return stats[run_pipeline.DRY_RUN], job_file


def run_neutral(body: bytes, folder: Path) -> str:
    """A request without what differs between two submissions of the same job: its client request id, the
    staging folder Beam names after the job and the time, and the folder the job file went to."""
    text = body.decode().replace(str(folder), "FOLDER")
    return re.sub(r"tokenmill-dry-run\.\d+\.\d+", "STAGING", re.sub(r'"clientRequestId": "[\d-]+"', "", text))


def local_paths(text: str, roots: list[str]) -> set[str]:
    """Every path under one of `roots` in `text`, to the end of its run of path characters. A root counts where
    it starts the run or follows one character that is no slash: the length byte before a string in a pickle
    may be a letter, while a URL's path (gs://bucket/tmp/..., storage.googleapis.com/bucket/tmp/...) has a
    slash before it."""
    found = set()
    for run in re.findall(r"[\w.+@%=,:/-]+", text):
        for root in (r.rstrip("/") for r in roots):
            at = run.find(root)
            while at >= 0:
                end = at + len(root)
                if "/" not in run[:at] and (end == len(run) or run[end] == "/"):
                    found.add(run[at:])
                at = run.find(root, at + 1)
    return found


def unpickled(payload: bytes) -> bytes:
    """A pickled function or coder as Beam stores it in the pipeline (base64 of bz2 or zlib), decoded; b"" for
    a payload that is not one."""
    import zlib

    try:
        data = base64.b64decode(payload, validate=True)
    except ValueError:
        return b""
    for decompress in (bz2.decompress, zlib.decompress):
        try:
            return decompress(data)
        except (OSError, ValueError, zlib.error):
            continue
    return b""


def pipeline_texts(pipeline: bytes) -> list[bytes]:
    """The staged pipeline's bytes and every pickled DoFn, CombineFn, coder and window function in it, decoded."""
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import beam_runner_api_pb2

    proto = beam_runner_api_pb2.Pipeline.FromString(pipeline)
    out = [pipeline]
    for transform in proto.components.transforms.values():
        if transform.spec.urn == common_urns.primitives.PAR_DO.urn:
            out.append(unpickled(beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload).do_fn.payload))
        elif transform.spec.urn in (common_urns.composites.COMBINE_PER_KEY.urn,
                                    common_urns.composites.COMBINE_GLOBALLY.urn):
            payload = beam_runner_api_pb2.CombinePayload.FromString(transform.spec.payload)
            out.append(unpickled(payload.combine_fn.payload))
    out += [unpickled(c.spec.payload) for c in proto.components.coders.values()]
    out += [unpickled(w.window_fn.payload) for w in proto.components.windowing_strategies.values()]
    return [t for t in out if t]


def test_the_request_for_100000_listed_files_offline(tmp_path, wheel, offline):
    big, job_file = dry_run(tmp_path / "100k", 100_000, wheel)
    small, _ = dry_run(tmp_path / "10", 10, wheel)
    assert offline == [], "the dry run tried the network"
    request = big["request"]
    assert job_file.read_bytes() == request.body  # Beam 2.62's dry run writes no job file; tokenmill does
    job = request.job()

    # (a) Well under Dataflow's limits, and nothing in it grows with the crawl: 10 files or 100,000, the
    # request is the same but for the ids and staging folder of each submission, and the pipeline the same size.
    assert len(request.body) < REQUEST_LIMIT_BYTES / 100 and len(request.pipeline) < GRAPH_LIMIT_BYTES / 10, (
        len(request.body), len(request.pipeline))
    assert run_neutral(request.body, tmp_path / "100k") == run_neutral(small["request"].body, tmp_path / "10")
    assert len(request.pipeline) == len(small["request"].pipeline)
    assert "steps" not in job and job["environment"]["sdkPipelineOptions"]["options"]["pipelineUrl"].startswith(
        f"{BUCKET}/tmp/tokenmill-dry-run.")  # the steps travel as the staged pipeline.pb (Runner v2)

    # (b) No path on this machine in the request but the two submission flags typed above, which Beam copies
    # into its options and display data; workers open neither (the wheel is staged, the job file is ours).
    roots = [str(REPO), sys.prefix, str(tmp_path), "/tmp", "/home", "/root", str(Path.home())]
    assert local_paths(request.body.decode(), roots) == {str(wheel), str(job_file)}
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["extra_packages"] == [str(wheel)] and options["dataflow_job_file"] == str(job_file)
    # In the staged pipeline, the only local paths are source files: the file names that Python code pickled
    # by value carries (lambdas of tokenmill's pipelines/ and of Beam), which no worker opens. A data path (a
    # list, a model, the input list, the output) would be named here.
    in_pipeline = set().union(*(local_paths(t.decode("latin-1"), roots) for t in pipeline_texts(request.pipeline)))
    assert in_pipeline and all(p.endswith(".py") for p in in_pipeline), sorted(in_pipeline)

    # (c) tokenmill's wheel is staged: named in the worker pool's packages, uploaded whole beside the pipeline.
    (pool,) = job["environment"]["workerPools"]
    packages = {p["name"]: p["location"] for p in pool["packages"]}
    assert packages[wheel.name].startswith("storage.googleapis.com/tokenmill-example/tmp/tokenmill-dry-run.")
    staged = {path.rsplit("/", 1)[-1]: size for path, size in request.staged.items()}
    assert staged[wheel.name] == wheel.stat().st_size and "extra_packages.txt" in staged
    assert {"run_pipeline.py", "pipelines/dataflow.py", "ingest/extract.py"} <= set(zipfile.ZipFile(wheel).namelist())

    # (d) One harness thread per vCPU of the n1-standard-4 asked for, so one extraction child per SDK process.
    assert pool["numThreadsPerWorker"] == 4 and pool["machineType"] == "n1-standard-4"
    assert options["number_of_worker_harness_threads"] == 4
    assert pool["sdkHarnessContainerImages"][0]["useSingleCorePerContainer"]  # one SDK process per vCPU


def test_the_users_thread_count_is_kept_and_the_console_line_says_what_was_built(tmp_path, wheel, offline, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "warc.paths").write_text("\n".join(cc_paths(3)) + "\n")
    argv = ["--input-list", str(folder / "warc.paths"), "--output", f"{BUCKET}/out", *DATAFLOW,
            "--machine_type=n2-custom-8-32768", "--number_of_worker_harness_threads=2", f"--extra_package={wheel}"]
    assert run_pipeline.main(argv) == 0
    assert offline == []
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"tokenmill: dry run: nothing submitted, nothing written to {BUCKET}/out. Dataflow job "
                          "request ") and out.count("\n") == 1
    assert f"staged: extra_packages.txt, pipeline.pb, submission_environment_dependencies.txt, {wheel.name}; " \
           "2 harness threads per worker" in out and "the request is in" not in out


@pytest.mark.parametrize("flags, says", [
    (["--dry_run=True"], "--dry_run builds a Dataflow job request without submitting it: give --runner=DataflowRunner"),
    ([f for f in DATAFLOW if not f.startswith("--temp_location")],
     "a --dry_run needs --temp_location=gs://BUCKET/DIR (where the job would be staged)"),
    ([*DATAFLOW[:3], "--temp_location=/tmp/staging", *DATAFLOW[4:]], "a --dry_run needs --temp_location=gs://"),
])
def test_a_dry_run_that_would_run_or_go_online_is_refused_in_one_line(tmp_path, offline, capsys, flags, says):
    """Only the DataflowRunner reads --dry_run (the local runner would run the job, on an output the driver left
    unprepared); without a gs:// staging place Beam looks for a default bucket online."""
    (tmp_path / "warc.paths").write_text(cc_paths(1)[0] + "\n")
    assert run_pipeline.main(["--input-list", str(tmp_path / "warc.paths"), "--output", str(tmp_path / "out"),
                              *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tokenmill: {says}") and err.count("\n") == 1, err
    assert offline == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("machine, vcpus", [
    ("n1-standard-4", 4), ("n2-highmem-16", 16), ("c3-standard-22-lssd", 22), ("e2-standard-2", 2),
    ("custom-6-23040", 6), ("n2-custom-8-32768-ext", 8), ("zones/us-central1-a/machineTypes/n1-highcpu-96", 96),
    ("e2-medium", None), ("a2-highgpu-1g", None), ("f1-micro", None), ("not a machine", None),
])
def test_machine_vcpus(machine, vcpus):
    assert machine_vcpus(machine) == vcpus


def test_harness_threads_follow_the_machine_unless_the_user_set_them():
    assert harness_threads("n1-standard-4", None) == (["--number_of_worker_harness_threads=4"], None)
    assert harness_threads("n1-standard-4", 3) == ([], None)
    assert harness_threads("e2-medium", 2) == ([], None)
    added, note = harness_threads(None, None)
    assert added == [] and note.startswith("note: no --machine_type, so Dataflow chooses the worker threads")
    added, note = harness_threads("a2-highgpu-1g", None)
    assert added == [] and "--machine_type a2-highgpu-1g does not say its vCPUs" in note


def test_other_runners_get_no_harness_thread_flag():
    assert run_pipeline.dataflow_threads(["--runner=FlinkRunner", "--machine_type=n1-standard-4"]) == ([
        "--runner=FlinkRunner", "--machine_type=n1-standard-4"], None)
    assert run_pipeline.dataflow_threads(["--runner=dataflow", "--machine_type=n1-standard-4"])[0][-1] == (
        "--number_of_worker_harness_threads=4")
