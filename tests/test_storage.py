"""storage/: transient store errors are told from permanent ones, and retried a bounded number of times."""

from __future__ import annotations

import pytest

import storage.retry
from storage.files import join, split_store_flags
from storage.retry import StoreError, is_transient, retrying


class _HttpError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"HTTP {code}")
        self.code = code


def test_transient_or_permanent():
    assert is_transient(ConnectionResetError(104, "Connection reset by peer"))
    assert is_transient(TimeoutError("read timed out"))
    assert is_transient(_HttpError(503)) and is_transient(_HttpError(500)) and is_transient(_HttpError(429))
    assert not is_transient(_HttpError(404)) and not is_transient(_HttpError(403))
    assert not is_transient(FileNotFoundError("no such file"))
    wrapped = RuntimeError("read failed")
    wrapped.__cause__ = ConnectionResetError()
    assert is_transient(wrapped)
    assert not is_transient(ValueError("Not a gzipped file"))


def test_retrying_is_bounded_and_raises_permanent_errors_at_once(monkeypatch):
    monkeypatch.setattr(storage.retry, "FIRST_DELAY_S", 0.001)
    calls = []

    def permanent():
        calls.append(1)
        raise FileNotFoundError("gone")

    with pytest.raises(FileNotFoundError):
        retrying(permanent, "x")
    assert len(calls) == 1
    calls.clear()

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise _HttpError(503)
        return "ok"

    assert retrying(flaky, "x") == "ok" and len(calls) == 3
    calls.clear()

    def down():
        calls.append(1)
        raise _HttpError(503)

    with pytest.raises(StoreError, match="still failing after 4 attempts"):
        retrying(down, "x")
    assert len(calls) == storage.retry.ATTEMPTS


def test_store_flags_and_paths():
    assert split_store_flags(["run", "--s3_endpoint_url", "http://h", "--json", "--project=p"]) == (
        ["--s3_endpoint_url", "http://h", "--project=p"], ["run", "--json"])
    assert join("s3://b/x/", "shards", "a.parquet") == "s3://b/x/shards/a.parquet"


def test_a_process_running_a_beam_harness_keeps_the_harness_store_settings():
    """storage.files gives Beam's FileSystems the environment's store settings in a process that set none (a
    training job's PackedReader, a script), but never in a Beam worker: there the harness set the run's
    options (its --s3_* flags), in a worker process from PIPELINE_OPTIONS and in a worker pool's thread from
    its own arguments."""
    import os
    import subprocess
    import sys

    probe = ("import storage.files as f\n"
             "before = f._in_beam_worker()\n"
             "import apache_beam.runners.worker.sdk_worker\n"
             "print(before, f._in_beam_worker())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_OPTIONS")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout.split()
    assert out == ["False", "True"]
    env["PIPELINE_OPTIONS"] = "{}"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout.split()
    assert out == ["True", "True"]
