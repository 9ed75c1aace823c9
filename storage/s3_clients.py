"""One boto3 S3 client per process and store settings, shared by every s3:// operation Beam's FileSystems runs.

Why: Beam 2.62's `S3FileSystem` builds a new `s3io.S3IO(options=...)` for every operation (open, exists, size,
list, rename, delete), and each builds a new `boto3.session.Session()` and a client from it, which loads
botocore's S3 service model again: 0.07-0.24 s of CPU per operation on this machine (2026-12-07), holding the
GIL. `tests/test_object_storage.py::test_a_run_reads_its_crawl_from_s3_and_writes_its_output_there` built 64 of
them in one in-memory run, 9.6 s of its 24 s; release/verify threads could not overlap them
(docs/scaling.md, `bench/release_copy.py --s3`).

What is shared is boto3's client, which boto3 documents as thread-safe. Beam's own client wrapper
(`boto3_client.Client`) is not shared: it keeps one open download stream and its position for `get_range`, so
each S3IO still gets its own wrapper, built around the shared boto3 client instead of a new session.

The wrapper's fields are Beam's private names: they are checked on the first wrapper Beam builds itself in a
process that uses s3:// (a process that never does builds nothing), and Beam is left as it is (one warning
line) when they differ, as they might in a Beam other than the pinned 2.62. The shared client is keyed by the
store settings and the AWS_* environment, and rebuilt in a forked child.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

_lock = threading.Lock()
_clients: dict[tuple, Any] = {}
_installed = False
# What Beam 2.62's boto3_client.Client.__init__ sets: checked against the first wrapper Beam builds itself in a
# process that uses s3:// (`SharedS3IO`), so a process that never does pays nothing.
_WRAPPER_FIELDS = {"client", "_download_request", "_download_stream", "_download_pos"}
_checked: bool | None = None  # None: not yet; True: the wrapper is the one known; False: Beam's own, per operation
# Connections the shared client keeps open to the store. One per open s3:// file (Beam's get_stream keeps its
# ranged GET open while the file is read) and per request in flight: release's THREADS (8) copies, a Dataflow
# worker's harness threads (driver/runner.py), the per-file writer's staging copies. botocore's default of 10
# (botocore.config.Config, max_pool_connections) was enough when every operation had its own client and pool.
POOL_CONNECTIONS = 64


def _reset_after_fork() -> None:
    """A forked child builds its own clients (connection pools must not cross a fork) under a fresh lock."""
    global _lock
    _lock = threading.Lock()
    _clients.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _settings(options: Any) -> tuple:
    """The store settings Beam's wrapper reads from `options` (PipelineOptions or a dict), as its __init__ does,
    and the AWS_* environment boto3 reads when a client is built (endpoint, keys, profile, region): a process
    that changes them between operations gets a client for the new ones, as it did with a client per operation."""
    from apache_beam.options import pipeline_options

    if isinstance(options, pipeline_options.PipelineOptions):
        s3 = options.view_as(pipeline_options.S3Options)
        get = lambda name, default=None: getattr(s3, name, default)  # noqa: E731
    else:
        get = options.get
    return (get("s3_access_key_id"), get("s3_secret_access_key"), get("s3_session_token"),
            get("s3_endpoint_url"), not get("s3_disable_ssl", False), get("s3_region_name"),
            get("s3_api_version"), get("s3_verify"),
            tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))


def shared_client(options: Any) -> Any:
    """This process's boto3 S3 client for these settings, built on first use."""
    key = _settings(options)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                import boto3
                from botocore.config import Config

                access, secret, token, endpoint, use_ssl, region, api_version, verify, _env = key
                client = boto3.session.Session().client(
                    service_name="s3", region_name=region, api_version=api_version, use_ssl=use_ssl,
                    verify=verify, endpoint_url=endpoint, aws_access_key_id=access,
                    aws_secret_access_key=secret, aws_session_token=token,
                    config=Config(max_pool_connections=POOL_CONNECTIONS))
                _clients[key] = client
    return client


def install() -> bool:
    """Make Beam's S3IO (as S3FileSystem builds it for each operation) use this process's shared boto3 client.
    Idempotent and cheap: nothing is built until the first s3:// operation. False when Beam's S3 support is
    missing (nothing to share)."""
    global _installed
    if _installed:
        return True
    with _lock:
        if not _installed:
            _installed = _install()
    return _installed


def _wrapper_is_known(base: type, options: Any) -> bool:
    """Whether Beam's wrapper sets exactly the fields SharedClient sets, checked once per process on a wrapper
    Beam builds itself (the first s3:// operation: its cost, one client, is what that operation paid before).
    An error building it is Beam's own and is raised as Beam would raise it."""
    global _checked
    if _checked is None:
        fields = set(vars(base(options=options)))
        _checked = fields == _WRAPPER_FIELDS
        if not _checked:
            logging.getLogger(__name__).warning(
                "tokenmill: Beam's S3 client is not the one storage/s3_clients.py knows (fields %s); each s3:// "
                "operation builds its own boto3 client", sorted(fields))
    return _checked


def _install() -> bool:
    try:
        from apache_beam.io.aws import s3io
        from apache_beam.io.aws.clients.s3 import boto3_client
    except ImportError:  # no boto3, or a Beam without its AWS module: nothing to share
        return False
    base = getattr(boto3_client, "Client", None)
    original = getattr(s3io, "S3IO", None)
    if base is None or original is None:
        return False
    if getattr(original, "_tokenmill_shared", False):
        return True

    class SharedClient(base):  # type: ignore[misc, valid-type]
        """Beam's wrapper around the process's shared boto3 client: its own download stream, no new session."""

        def __init__(self, options: Any) -> None:  # noqa: D107 - Beam's __init__ minus the session
            self.client = shared_client(options)
            self._download_request = None
            self._download_stream = None
            self._download_pos = 0

    class SharedS3IO(original):  # type: ignore[misc, valid-type]
        _tokenmill_shared = True

        def __init__(self, client: Any = None, options: Any = None) -> None:
            if client is None and options is not None and _wrapper_is_known(base, options):
                client = SharedClient(options)
            super().__init__(client=client, options=options)

    s3io.S3IO = SharedS3IO
    return True
