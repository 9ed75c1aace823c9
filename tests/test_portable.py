"""PortableRunner against Beam's own Python job service: our stand-in for Dataflow/Flink/Spark in CI.

LOOPBACK runs the SDK harness in this process; EXTERNAL hands work to a separate worker-pool process
(apache_beam.runners.worker.worker_pool_main), as a cluster's SDK containers would receive it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_pipeline import IN_MEMORY, file_bytes, run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited early with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on {port}")


def _start(module: str, port_flag: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    # The worker pool starts SDK workers as plain `python`: put this interpreter first on PATH.
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", module, f"{port_flag}={port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_port(port, proc)
    return proc, port


@pytest.fixture(scope="module")
def reference(demo_crawl, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("ref")
    run(demo_crawl, out, *IN_MEMORY)
    return file_bytes(out)


def test_portable_loopback_matches_direct(job_service, demo_crawl, reference, tmp_path: Path):
    run(demo_crawl, tmp_path / "out", "--runner=PortableRunner", f"--job_endpoint={job_service}",
        "--environment_type=LOOPBACK")
    assert file_bytes(tmp_path / "out") == reference


def test_portable_external_worker_pool_with_built_wheel(job_service, demo_crawl, reference, tmp_path: Path):
    """The packaging path a cluster uses: a built wheel staged with --extra_package, work done by an
    external SDK worker pool process. That process runs on this machine, so the crawl and output folders are a
    filesystem it shares: --shared-filesystem says so (a job service's workers may be anywhere:
    jobs/remote.py)."""
    repo = Path(__file__).resolve().parents[1]
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(repo)], check=True)
    (wheel,) = dist.glob("tokenmill-*.whl")
    pool, pool_port = _start("apache_beam.runners.worker.worker_pool_main", "--service_port")
    try:
        run(demo_crawl, tmp_path / "out", "--runner=PortableRunner", f"--job_endpoint={job_service}",
            "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool_port}",
            f"--extra_package={wheel}", "--shared-filesystem")
    finally:
        pool.kill()
        pool.wait()
    assert file_bytes(tmp_path / "out") == reference
