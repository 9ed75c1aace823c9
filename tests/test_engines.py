"""The product on real engines: Flink and Spark clusters on loopback, Beam's own job servers, Python workers from
tokenmill's wheel, every file in an S3 bucket (moto's server on loopback).

Each engine runs what a user runs, command for command (`tokenmill run`, `release`, `run` against the release,
`select`), with the same flags the README's "Runners" section shows, and must write what the local runner
writes, byte for byte: shards, ledger, dedup index, manifests and the release. The clusters come from
clusters/ (Flink 1.19 from PyPI's apache-flink-libraries, Spark 3.5 from pyspark, Beam's job servers assembled
from Maven Central); `python -m clusters fetch` fills their cache once, and `.ci/run` does so before the tests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clusters.procs import Service, free_port
from tests.conftest import REPO

pytestmark = pytest.mark.engines

ENGINES = ["flink", "spark"]
BUCKETS = ("crawl", "tools", "out", "releases")
# The files a run or release writes that must match across runners (stats.json holds timings; _* are run state).
COMPARED = re.compile(r"(^|/)(shards|ledger|dedup_index|scored)/.*\.parquet$|(^|/)manifest\.json$")


def _need(tool: str) -> None:
    import shutil

    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not on PATH: CI must run the engine tests")
        pytest.skip(f"{tool} is not on PATH: the engine tests need Java 17 and Maven")


# Every JVM of these tests (Flink's, Spark's, the job servers the runners start) lives for minutes on 2 cores:
# C2's compiler threads and a parallel collector cost more CPU there than they return. C1 only and the serial
# collector cut the JVMs' CPU on `bench/engines.py --engines flink,spark` at 400bdbd (2026-12-07, other work
# beside it): job server 19.2 -> 7.8 s (Flink) and 29.4 -> 15.5 s (Spark), cluster JVMs 76.1 -> 46.8 s and
# 34.1 -> 20.5 s, outputs identical. A test setting, not tokenmill's: a user's job servers run as their Java runs.
# -Xss16m: with C1's larger frames, Flink's JobManager overflowed its stack deserializing the submitted job of
# the run against a release (JobSubmitHandler, StackOverflowError, 2026-12-07 after the against-release salting).
QUICK_JVMS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss16m"


@pytest.fixture(scope="module")
def quick_jvms():
    """JAVA_TOOL_OPTIONS for the module (every JVM reads it: the clusters' and the job servers'), restored after."""
    before = os.environ.get("JAVA_TOOL_OPTIONS")
    os.environ["JAVA_TOOL_OPTIONS"] = f"{before} {QUICK_JVMS}" if before else QUICK_JVMS
    yield
    if before is None:
        os.environ.pop("JAVA_TOOL_OPTIONS", None)
    else:
        os.environ["JAVA_TOOL_OPTIONS"] = before


@pytest.fixture(scope="module")
def store(quick_jvms, tmp_path_factory):
    """(endpoint, boto3 client, environment for commands) of a moto S3 server on loopback."""
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    moto = Service("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                   tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        moto.wait_for_port(port)
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                              region_name="us-east-1")
        for bucket in BUCKETS:
            client.create_bucket(Bucket=bucket)
        env = {**os.environ, "AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "test",
               "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        yield endpoint, client, env
    finally:
        moto.stop()


def s3_flags(endpoint: str) -> list[str]:
    """The store's settings as Beam flags: the runner hands them to every worker (a worker sees no driver
    environment)."""
    return [f"--s3_endpoint_url={endpoint}", "--s3_access_key_id=test", "--s3_secret_access_key=test",
            "--s3_region_name=us-east-1"]


def _first_paragraph(warc: Path, min_words: int = 40) -> str:
    """A paragraph of a page in `warc` as its HTML has it: a benchmark item the run must find."""
    from warcio.archiveiterator import ArchiveIterator

    with open(warc, "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type != "response":
                continue
            html = record.content_stream().read().decode("utf-8", "replace")
            for para in re.findall(r"<p>([^<]+)</p>", html):
                if len(para.split()) >= min_words:
                    return para
    raise AssertionError(f"no paragraph of {min_words} words in {warc}")


@pytest.fixture(scope="module")
def world(store, bench_crawl_300, tmp_path_factory):
    """Everything the runs read, in the bucket: crawl A (the 300-page bench crawl), crawl B (one of A's files
    again and 150 new pages), a topic model (also the quality model: 'science' is its positive label), a
    benchmark file holding a paragraph of a crawl A page, and the recipes."""
    from classifiers.training import TrainParams, train
    from demo.bench_crawl import build_bench_crawl
    from demo.prose import labeled_paragraphs

    _endpoint, client, _env = store
    crawl_a = sorted(bench_crawl_300.glob("*.warc.gz"))
    for path in crawl_a:
        client.upload_file(str(path), "crawl", f"a/{path.name}")
    more = tmp_path_factory.mktemp("crawl_b")
    build_bench_crawl(str(more), docs=150, shards=1, seed=7)
    client.upload_file(str(crawl_a[0]), "crawl", f"b/{crawl_a[0].name}")
    client.upload_file(str(more / "crawl-0.warc.gz"), "crawl", "b/new-0.warc.gz")
    model = tmp_path_factory.mktemp("model") / "topic.bin"
    train(labeled_paragraphs(150), str(model), TrainParams(epoch=5))
    client.upload_file(str(model), "tools", "models/topic.bin")
    item = _first_paragraph(crawl_a[1])
    client.put_object(Bucket="tools", Key="evals/bench.jsonl", Body=(json.dumps({"question": item}) + "\n").encode())
    recipes = {
        "run": 'base = "fineweb"\n'
               '[quality]\nenabled = true\nmodel_path = "s3://tools/models/topic.bin"\npositive_label = "science"\n'
               "keep_top_fraction = 0.9\n"
               '[topic]\nenabled = true\nmodel_path = "s3://tools/models/topic.bin"\ndrop = ["food"]\n'
               '[decontamination]\nenabled = true\nsources = ["s3://tools/evals/*.jsonl"]\n'
               'text_fields = ["question"]\n',
        "against": 'base = "run.toml"\n[dedup]\nagainst = ["s3://releases/web"]\n',
        "select": 'base = "run.toml"\n[filters.fineweb]\nline_punct_thr = 0.2\n',
    }
    for name, text in recipes.items():
        client.put_object(Bucket="tools", Key=f"recipes/{name}.toml", Body=text.encode())
    return {"recipe": "s3://tools/recipes/run.toml", "against": "s3://tools/recipes/against.toml",
            "select": "s3://tools/recipes/select.toml"}


def tokenmill(env: dict[str, str], *args: str, timeout: float = 900, expect: int = 0) -> str:
    """`tokenmill ARGS` as a user runs it (its output into a file: a job server's log can be long); fails the
    test with the output's tail unless it exits `expect`. Returns the output. A command that times out is killed
    with its process group (the job server its runner started)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tokenmill_cli", *args], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code: int | str = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = "timed out"
        log.seek(0)
        text = log.read()
    assert code == expect, f"tokenmill {' '.join(args[:3])}: exit {code}\n{text[-4000:]}"
    return text


def run_args(world: dict[str, str], runner: list[str]) -> list[str]:
    return ["run", "--input", "s3://crawl/a/", "--output", "s3://out/run1", "--config", world["recipe"],
            "--keep-scored", "--quiet", *runner]


def killed_args(runner: list[str]) -> list[str]:
    """The run the kill test interrupts: crawl A with the default recipe (a shorter job than fineweb's with
    classifiers and near dedup, whose every step the scenario already compares)."""
    return ["run", "--input", "s3://crawl/a/", "--output", "s3://out/killed", "--config", "default", "--quiet",
            *runner]


def bucket_bytes(client, buckets=("out", "releases")) -> dict[str, bytes]:
    out = {}
    for bucket in buckets:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key = f"{bucket}/{obj['Key']}"
                if COMPARED.search(key):
                    out[key] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def empty(client, buckets=("out", "releases")) -> None:
    for bucket in buckets:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])


def stats_of(client, key: str) -> dict:
    return json.loads(client.get_object(Bucket="out", Key=f"{key}/stats.json")["Body"].read())


def scenario(store, world, runner: list[str]) -> dict:
    """The whole product on one runner, into the same keys every time: run crawl A, release it, run crawl B
    against the release, select from the first run with another threshold. Returns the files compared and the
    runs' stats."""
    endpoint, client, env = store
    empty(client)
    runner = [*runner, *s3_flags(endpoint)]
    started = time.monotonic()
    tokenmill(env, *run_args(world, runner))
    if runner == [*LOCAL, *s3_flags(endpoint)]:  # the kill test's reference
        tokenmill(env, *killed_args(runner))
    # One creation time for every runner's release (SOURCE_DATE_EPOCH): run2's manifest records the release's hash.
    tokenmill({**env, "SOURCE_DATE_EPOCH": "1796601600"}, "release", "s3://out/run1", "--name", "web", "--version", "1",
              "--to", "s3://releases/web")
    tokenmill(env, "run", "--input", "s3://crawl/b/", "--output", "s3://out/run2", "--config", world["against"],
              "--quiet", *runner)
    tokenmill(env, "select", "s3://out/run1", "--config", world["select"], "--output", "s3://out/selected",
              "--quiet", *runner)
    return {"files": bucket_bytes(client), "seconds": time.monotonic() - started,
            "stats": {k: stats_of(client, k) for k in ("run1", "run2", "selected")}}


LOCAL = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def local(store, world) -> dict:
    _need("java")
    return scenario(store, world, LOCAL)


@pytest.fixture(scope="module", params=ENGINES)
def engine(request, local, tmp_path_factory):
    """(name, runner flags, cluster) of a started engine and its worker pool; stopped after its tests, and on any
    failure to start. `local` first: the local runner's scenario runs with no cluster beside it."""
    _need("java")
    _need("mvn")
    from clusters.jobserver import launcher
    from clusters.workers import start_worker_pool

    name = request.param
    work = tmp_path_factory.mktemp(name)
    if name == "flink":
        from clusters.flink import start_flink as start

        jar = ["--runner=FlinkRunner", "--flink_version=1.19", f"--flink_job_server_jar={launcher('flink')}"]
    else:
        from clusters.dists import spark_home
        from clusters.spark import start_spark as start

        jar = ["--runner=SparkRunner", "--spark_version=3",
               f"--spark_job_server_jar={launcher('spark', sorted((spark_home() / 'jars').glob('*.jar')))}"]
    pool = start_worker_pool(work / "pool")
    try:
        cluster = start(work)
        try:
            master = (f"--flink_master={cluster.master}" if name == "flink"
                      else f"--spark_master_url={cluster.master_url}")
            flags = [*jar, master, "--environment_type=EXTERNAL", f"--environment_config={pool.endpoint}",
                     "--parallelism=2"]
            yield name, flags, cluster
        finally:
            if name == "flink":
                _cancel_flink_jobs(cluster)
            cluster.stop()
    finally:
        pool.stop()


def _differences(ours: dict[str, bytes], theirs: dict[str, bytes]) -> list[str]:
    return sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))


def test_the_whole_product_on_the_engine_writes_what_the_local_runner_writes(local, engine, store, world):
    name, flags, _cluster = engine
    result = scenario(store, world, flags)
    want = {k: v for k, v in local["files"].items() if not k.startswith("out/killed/")}
    assert len(want) >= 12, sorted(want)
    assert not _differences(result["files"], want), f"{name}: {_differences(result['files'], want)}"
    for run in ("run1", "run2", "selected"):
        ours, theirs = result["stats"][run], local["stats"][run]
        assert ours["stages"] == theirs["stages"], run
        assert ours.get("near_dedup") == theirs.get("near_dedup"), run  # rounds and convergence, measured
    first, second = local["stats"]["run1"], local["stats"]["run2"]
    assert first["kept"] > 0 and first["stages"]["near_dedup"]["dropped"], "near dedup found the planted copies"
    assert first["stages"]["decontamination"]["dropped"] == {"contaminated": 1}
    assert first["stages"]["classifiers"]["dropped"], "the classifiers dropped documents"
    assert second["stages"]["exact_dedup"]["dropped"].get("duplicate_of_release"), "crawl B met the release"
    print(f"\n{name}: scenario {result['seconds']:.1f} s, local runner {local['seconds']:.1f} s")


def _jobs(name: str, cluster) -> dict[str, str]:
    """{job or application id: state} of what the cluster has run or runs."""
    import urllib.request

    if name == "flink":
        with urllib.request.urlopen(f"http://{cluster.master}/jobs/overview", timeout=10) as r:
            return {j["jid"]: j["state"] for j in json.load(r)["jobs"]}
    status = cluster.status()
    return {**{a["id"]: "RUNNING" for a in status.get("activeapps", [])},
            **{a["id"]: a.get("state", "FINISHED") for a in status.get("completedapps", [])}}


def _started(client, key: str) -> dict:
    try:
        return json.loads(client.get_object(Bucket="out", Key=f"{key}/_started.json")["Body"].read())
    except client.exceptions.NoSuchKey:
        return {}


def test_a_job_killed_mid_run_and_rerun_ends_byte_identical(local, engine, store, world):
    """The driver (and with it the job server) is SIGKILLed while its job runs on the cluster, as a lost laptop
    or a killed CI step would. On Flink the cluster job goes on: the same command is refused while it runs
    (`_started.json` names the job, and the cluster is asked), then the job is cancelled there, as its operator
    would. On Spark the application ends with its driver (the job server). Then the same command runs again and
    ends byte-identical to the local runner's run."""
    name, flags, cluster = engine
    endpoint, client, env = store
    empty(client)
    args = killed_args([*flags, *s3_flags(endpoint)])
    before = set(_jobs(name, cluster))
    proc = subprocess.Popen([sys.executable, "-m", "tokenmill_cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (job := _started(client, "killed").get("job")) or not any(
                state == "RUNNING" for jid, state in _jobs(name, cluster).items() if jid not in before):
            assert proc.poll() is None, f"the run ended ({proc.returncode}) before its job ran"
            assert time.monotonic() < deadline, "no new job ran on the cluster"
            time.sleep(0.5)
        time.sleep(5)  # into the job: workers started, files being read
        assert proc.poll() is None, "the run ended before it could be killed: kill it sooner"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert job["id"] and job["runner"] == flags[0].split("=")[1], job
    if name == "flink":
        said = tokenmill(env, *args, expect=2)
        assert f"being written by job {job['id']} (Flink at {cluster.master})" in said, said
        _cancel_flink_jobs(cluster)
    deadline = time.monotonic() + 120
    while any(state == "RUNNING" for jid, state in _jobs(name, cluster).items() if jid not in before):
        assert time.monotonic() < deadline, "the killed job still runs on the cluster"
        time.sleep(0.5)
    listed = {o["Key"] for o in client.list_objects_v2(Bucket="out").get("Contents", [])}
    assert "killed/_started.json" in listed and "killed/manifest.json" not in listed, sorted(listed)
    tokenmill(env, *args)
    rerun = bucket_bytes(client, ("out",))
    want = {k: v for k, v in local["files"].items() if k.startswith("out/killed/")}
    # The manifest and at least one part of shards/, ledger/ and dedup_index/ (parts cut across input files
    # since 3cfa022: the 300-page crawl's are one each).
    assert len(want) >= 4 and {k.split("/")[2] for k in want} >= {"manifest.json", "shards", "ledger", "dedup_index"}, \
        sorted(want)
    assert not _differences(rerun, want), _differences(rerun, want)


def _cancel_flink_jobs(cluster) -> None:
    """Cancel every job of the Flink cluster that has not ended (as its operator would, through Flink's REST)."""
    import urllib.request

    with urllib.request.urlopen(f"http://{cluster.master}/jobs/overview", timeout=10) as r:
        jobs = json.load(r)["jobs"]
    for job in jobs:
        if job["state"] not in ("FINISHED", "FAILED", "CANCELED", "CANCELLING"):
            req = urllib.request.Request(f"http://{cluster.master}/jobs/{job['jid']}?mode=cancel", method="PATCH")
            urllib.request.urlopen(req, timeout=10).close()
