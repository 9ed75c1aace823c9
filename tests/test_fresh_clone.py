"""The README's test command on a fresh clone: no data folder beside the checkout.

A test that needs the shared data sets is skipped with the reason and how to get them; under CI (`CI` set) the
same test fails, since CI always lays the folder beside the checkout. Run as a user runs it: pytest in a
subprocess, with TOKENMILL_SHARED pointing at a folder that is not there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO

A_SHARED_TEST = "tests/test_warc.py::test_record_fields_and_chunked_body"  # reads data/warc_samples


def _pytest(tmp_path, ci: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["TOKENMILL_SHARED"] = str(tmp_path / "no-such-folder")
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", A_SHARED_TEST],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_without_the_data_folder_a_test_that_needs_it_is_skipped_with_the_reason(tmp_path):
    done = _pytest(tmp_path, ci=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert f"shared data missing: {tmp_path / 'no-such-folder' / 'data' / 'warc_samples'}" in done.stdout
    assert "TOKENMILL_SHARED=/path/to/shared" in done.stdout


def test_under_ci_the_same_test_fails(tmp_path):
    done = _pytest(tmp_path, ci=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 error" in done.stdout and "CI must have it" in done.stdout  # the fixture fails: an error


def test_tests_reach_the_shared_folder_only_through_shared_path():
    """A test that opened ../shared itself would error on a fresh clone instead of skipping; so would one that
    calls a bench/common.py reader of it without asking shared_path for the same folder first."""
    offenders = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        if path.name == "conftest.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"TOKENMILL_SHARED|\bSHARED\b|/ \"shared\"", line) and path.name != "test_fresh_clone.py":
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
        text = path.read_text()
        for block in text.split("\ndef ")[1:]:
            if re.search(r"from bench\.common import .*\b(gold_pages|bench_crawl)\b", block) and (
                    "shared_path(" not in block):
                offenders.append(f"{path.relative_to(REPO)}: def {block.split('(')[0]} reads shared data through "
                                 "bench/common.py without shared_path")
    assert not offenders, offenders


def test_the_wheel_ships_every_package_of_the_project():
    """Every top-level package of the checkout but the ones that stay home (tests, bench scripts, the test
    clusters) is in pyproject's package list, so a command that works here works from the installed wheel
    (`exports/` was missing from it at first)."""
    import tomllib

    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "bench", "clusters"}
    assert packages and not {p for p in packages if f"{p}*" not in listed}
