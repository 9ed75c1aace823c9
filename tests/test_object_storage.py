"""Runs where the data lives: an S3-compatible store on loopback (moto's server, started and stopped here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import run_pipeline
from tests.test_pipeline import IN_MEMORY, file_bytes, run
from tests.test_portable import _free_port, _wait_for_port


@pytest.fixture(scope="module")
def s3():
    """(endpoint URL, boto3 client) of a moto S3 server on 127.0.0.1, for this module's tests."""
    boto3 = pytest.importorskip("boto3", reason="Beam's aws extra (pip install -e '.[dev]' brings it)")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc)
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                              region_name="us-east-1")
        yield endpoint, client
    finally:
        proc.kill()
        proc.wait()


def _s3_flags(endpoint: str) -> list[str]:
    return [f"--s3_endpoint_url={endpoint}", "--s3_access_key_id=test", "--s3_secret_access_key=test",
            "--s3_region_name=us-east-1"]


def test_a_run_reads_its_crawl_from_s3_and_writes_its_output_there(s3, demo_crawl, tmp_path):
    """`--input 's3://crawl/in/*.warc.gz' --output s3://out/run` stopped before the pipeline started: the driver
    matched the inputs before Beam's FileSystems had the run's options ('Must provide one of client or
    options'). The output in the bucket is the output of the same run on local files, byte for byte."""
    endpoint, client = s3
    client.create_bucket(Bucket="crawl")
    client.create_bucket(Bucket="out")
    for path in demo_crawl:
        client.upload_file(path, "crawl", f"in/{Path(path).name}")
    stats = run(["s3://crawl/in/*.warc.gz"], "s3://out/run", *_s3_flags(endpoint), *IN_MEMORY)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="out", Prefix="run/")["Contents"])
    assert "run/manifest.json" in keys and any(k.startswith("run/shards/") for k in keys)
    assert not any("_staging" in k or "_started" in k for k in keys)
    local = tmp_path / "local"
    run(demo_crawl, local, *IN_MEMORY)
    for name, data in file_bytes(local).items():
        if name.endswith(".parquet"):
            assert client.get_object(Bucket="out", Key=f"run/{name}")["Body"].read() == data, name
    manifest = json.loads(client.get_object(Bucket="out", Key="run/manifest.json")["Body"].read())
    assert manifest["inputs"] == [f"s3://crawl/in/{Path(p).name}" for p in demo_crawl]
    assert stats["records"] == 18
    # A second run into the same bucket folder is refused (the finished-run check goes through FileSystems too).
    assert run_pipeline.main(["--input", "s3://crawl/in/*.warc.gz", "--output", "s3://out/run",
                              *_s3_flags(endpoint), *IN_MEMORY]) == 2


def test_workers_get_the_store_from_the_environment_or_the_flags(s3, demo_crawl, tmp_path, monkeypatch):
    """Beam's local runner with 2 worker processes: the workers built their FileSystems without the run's
    options and failed on the first s3:// read ('Unable to locate credentials'). Once with the endpoint and
    credentials in the standard AWS environment variables, once in Beam's --s3_* flags."""
    endpoint, client = s3
    client.create_bucket(Bucket="workers")
    for path in demo_crawl:
        client.upload_file(path, "workers", f"in/{Path(path).name}")
    local = tmp_path / "local"
    run(demo_crawl, local, *IN_MEMORY)
    expected = {name: data for name, data in file_bytes(local).items() if name.endswith(".parquet")}
    workers = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    for env in ({"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1"}, None):
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        out = f"s3://workers/{'env' if env else 'flags'}"
        stats = run(["s3://workers/in/*.warc.gz"], out, *([] if env else _s3_flags(endpoint)), *workers)
        assert stats["records"] == 18
        prefix = out.removeprefix("s3://workers/") + "/"
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="workers", Prefix=prefix)["Contents"])
        assert not any("_staging" in k or "_started" in k for k in keys), keys
        got = {k.removeprefix(prefix): client.get_object(Bucket="workers", Key=k)["Body"].read()
               for k in keys if k.endswith(".parquet")}
        assert got == expected
