"""Shared fixtures.

Most tests run on data the project writes itself (the demo crawl, demo/bench_crawl.py's crawl, small fixtures).
Those whose point is real public data (Common Crawl samples, gold extraction sets, labeled corpora, word lists,
benchmark test sets) read the project's data folder, ../shared beside the checkout or TOKENMILL_SHARED. On a
fresh clone without it they are skipped with the reason (`pytest -rs` lists them); under CI (`CI` set), where
the folder is always laid beside the checkout, a missing folder fails them instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TOKENMILL_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path in the shared data folder. Missing: skipped with the reason, except under CI, where it fails."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = (f"shared data missing: {path} (lay the project's data folder beside the checkout as ../shared, "
                  "or set TOKENMILL_SHARED=/path/to/shared)")
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must have it")
        pytest.skip(reason)
    return path


def require_chromium() -> str:
    """Chromium's path. Without one, the test is skipped with the reason shown (pytest -rs), except under CI
    (CI set), where the report test must run: it fails."""
    from outputs.browser import chromium

    try:
        return chromium()
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}: CI must render the report (.ci/run installs it)")
        pytest.skip(f"{exc}: the report is not rendered here (under CI this fails)")


@pytest.fixture(scope="module")
def job_service(tmp_path_factory):
    """HOST:PORT of Beam's own Python job service on loopback (tests/test_portable.py, tests/test_job_life.py)."""
    from clusters.procs import Service, free_port

    port = free_port()
    service = Service("Beam's Python job service", [
        sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", f"--port={port}"],
        tmp_path_factory.mktemp("job_service") / "job_service.log")
    try:
        service.wait_for_port(port)
        yield f"localhost:{port}"
    finally:
        service.stop()


@pytest.fixture(scope="session")
def warc_samples() -> Path:
    return shared_path("data", "warc_samples")


@pytest.fixture(scope="session")
def demo_crawl(tmp_path_factory) -> list[str]:
    from demo.crawl import build_demo_crawl

    return build_demo_crawl(str(tmp_path_factory.mktemp("demo_crawl")))


@pytest.fixture(scope="session")
def clipped_warc(demo_crawl, tmp_path_factory) -> str:
    """The second demo file cut off inside a record, as a download or copy that stopped part way leaves it."""
    data = Path(demo_crawl[1]).read_bytes()
    path = tmp_path_factory.mktemp("clipped") / "clipped.warc.gz"
    path.write_bytes(data[: len(data) * 3 // 5])
    return str(path)


@pytest.fixture(scope="session")
def bench_crawl_300(tmp_path_factory) -> Path:
    """A 300-page crawl the project writes itself (demo/bench_crawl.py: seeded English prose, planted exact and
    near duplicates, pages the filters drop, non-HTML records) with its truth.jsonl: needs no shared data."""
    from demo.bench_crawl import build_bench_crawl

    out = tmp_path_factory.mktemp("bench300")
    build_bench_crawl(str(out), docs=300, shards=2, seed=0)
    return out


@pytest.fixture(scope="session")
def real_crawl_300(tmp_path_factory) -> Path:
    """A 300-document crawl from shared/tools/make_bench_warc.py (real pages, planted duplicates)."""
    out = tmp_path_factory.mktemp("real300")
    tool = shared_path("tools", "make_bench_warc.py")
    subprocess.run(
        [sys.executable, str(tool), "--out", str(out), "--docs", "300", "--shards", "2", "--seed", "0"],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def runs(bench_crawl_300, tmp_path_factory) -> Path:
    """Two finished runs of the 300-document crawl: `default` (the default recipe) and `fw` (FineWeb's filters,
    near dedup, every dropped text sampled, shards of ~30,000 tokens). Read by the inspect/release tests and
    released as the mixture tests' sources."""
    from tests.test_pipeline import IN_MEMORY, run

    root = tmp_path_factory.mktemp("runs")
    inputs = [str(p) for p in sorted(bench_crawl_300.glob("*.warc.gz"))]
    run(inputs, root / "default", "--config", "default", *IN_MEMORY)
    sample_all = root / "fw.toml"
    sample_all.write_text('[filters]\norder = ["language", "gopher_quality", "fineweb"]\n'
                          "[output]\ndropped_text_sample_rate = 1.0\nshard_tokens = 30000\n"
                          "[dedup.near]\nenabled = true\n")
    run(inputs, root / "fw", "--config", str(sample_all), *IN_MEMORY)
    return root
