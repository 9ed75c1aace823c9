"""One API over every store for the files tokenmill reads by name: recipes, word and URL lists, models,
tokenizer files, run outputs and releases. Local paths are served by the standard library, anything with
a scheme (gs://, s3://, hdfs://) by Beam's FileSystems, which is imported only then: reading a local run
back (`tokenmill stats`, `inspect`, ...) needs no Apache Beam, whose import costs ~0.9 s.

Reads through Beam go through `storage.retry`: a transient error (connection reset, HTTP 5xx, timeout) is
retried with bounded backoff, and raised after that so the runner retries the bundle.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import sys
import tempfile
from typing import Any, BinaryIO

from storage import s3_clients
from storage.retry import RetryingReader, retrying

_configured = False


def configure(flags: list[str]) -> None:
    """Give Beam's FileSystems the store settings among `flags` (--s3_endpoint_url, --s3_access_key_id, ...,
    --project): a run's driver with its Beam flags, a `tokenmill stats s3://...` with the flags it was given.
    Without flags the stores take the standard environment (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, ...,
    GOOGLE_APPLICATION_CREDENTIALS)."""
    global _configured
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    _configured = True
    FileSystems.set_options(PipelineOptions(flags))
    s3_clients.install()


def _in_beam_worker() -> bool:
    """A process running a Beam SDK harness: the harness gave FileSystems the run's options already (from
    these variables in a worker process; from its own arguments in a worker pool's thread, which the module
    check catches)."""
    return ("PIPELINE_OPTIONS" in os.environ or "PIPELINE_OPTIONS_FILE" in os.environ
            or "apache_beam.runners.worker.sdk_worker" in sys.modules)


def filesystems() -> Any:
    """Beam's FileSystems (local paths and gs://, s3://, hdfs:// alike), imported on first use. A process
    that has not called `configure` (a training job's PackedReader, a script) gets the environment's
    settings: Beam's S3 filesystem refuses to start without options ('Must provide one of client or
    options'). A Beam worker's options are the harness's and stay as they are."""
    from apache_beam.io.filesystems import FileSystems

    if not _configured and not _in_beam_worker():
        configure([])
    s3_clients.install()  # one boto3 client per process, not per s3:// operation (storage/s3_clients.py)
    return FileSystems


# Beam flags that configure a store (the rest of Beam's flags are a pipeline's business).
STORE_FLAG_PREFIXES = ("--s3_", "--aws_", "--project", "--gcs_", "--hdfs_", "--azure_", "--blob_service_endpoint")


def split_store_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """(store flags, the other arguments) of a command line: `--s3_endpoint_url=URL` or `--s3_endpoint_url URL`."""
    store: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith(STORE_FLAG_PREFIXES):
            store.append(arg)
            if "=" not in arg and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                store.append(argv[i + 1])
                i += 1
        else:
            rest.append(arg)
        i += 1
    return store, rest


def is_local(path: str) -> bool:
    """No scheme: Beam's own test for a path its LocalFileSystem serves."""
    return "://" not in path


def join(folder: str, *names: str) -> str:
    """`folder/name/...` on any store (os.path.join would use the local separator on a URL)."""
    if is_local(folder):
        return os.path.join(folder, *names)
    return "/".join([folder.rstrip("/"), *names])


def exists(path: str) -> bool:
    if is_local(path):
        return os.path.exists(path)
    return retrying(lambda: filesystems().exists(path), f"exists {path}")


def is_file(path: str) -> bool:
    """A file (an object) at `path`: on object storage a 'folder' is only a prefix and never a file."""
    if is_local(path):
        return os.path.isfile(path)
    return exists(path) and not path.endswith("/")


def open_read(path: str) -> BinaryIO:
    """The file's bytes as stored (no decompression by extension)."""
    if is_local(path):
        return open(path, "rb")
    from apache_beam.io.filesystem import CompressionTypes

    return retrying(lambda: filesystems().open(path, compression_type=CompressionTypes.UNCOMPRESSED),
                    f"open {path}")


def open_stream(path: str) -> BinaryIO:
    """`path` read front to back, resumed at the byte it reached when the store fails part way
    (storage.retry.RetryingReader); opening it is retried too. A missing file raises FileNotFoundError
    or the store's own error, at once."""
    if is_local(path):
        return open(path, "rb")

    def open_at(position: int) -> BinaryIO:
        stream = open_read(path)
        if position:
            stream.seek(position)
        return stream

    # Opened here: a missing or forbidden file is the caller's error at once.
    return RetryingReader(open_at, f"read {path}", stream=open_at(0))


def read_bytes(path: str) -> bytes:
    """The whole file. A transient error part way through starts the read again (bounded)."""
    if is_local(path):
        with open(path, "rb") as f:
            return f.read()

    def read() -> bytes:
        with open_read(path) as f:
            return f.read()

    return retrying(read, f"read {path}")


def size(path: str) -> int:
    if is_local(path):
        return os.path.getsize(path)
    return match(path)[0][1]


def match(pattern: str) -> list[tuple[str, int]]:
    """(path, size in bytes) of the files a glob matches, sorted by path; [] when none."""
    if is_local(pattern):
        return sorted((p, os.path.getsize(p)) for p in glob.glob(pattern) if os.path.isfile(p))

    def ask() -> list[tuple[str, int]]:
        try:
            found = filesystems().match([pattern])[0].metadata_list
        except Exception as exc:  # noqa: BLE001 - Beam raises for a pattern with no match on some stores
            if "No files found" in str(exc) or "matched no" in str(exc).lower():
                return []
            raise
        return sorted((m.path, m.size_in_bytes) for m in found)

    return retrying(ask, f"list {pattern}")


def create(path: str) -> BinaryIO:
    """A new file to write (folders are made as needed; object stores have none)."""
    if is_local(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return open(path, "wb")
    from apache_beam.io.filesystem import CompressionTypes

    return filesystems().create(path, compression_type=CompressionTypes.UNCOMPRESSED)


def write_bytes(path: str, data: bytes) -> None:
    with create(path) as f:
        f.write(data)


def copy(source: str, target: str) -> None:
    """One file, store to store (within one object store the copy is server-side, through Beam)."""
    if is_local(source) and is_local(target):
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        shutil.copyfile(source, target)
        return
    if source.split("://", 1)[0] == target.split("://", 1)[0] and not is_local(source):
        filesystems().copy([source], [target])
        return
    with open_stream(source) as src, create(target) as dst:  # across stores: streamed, 8 MiB at a time
        for chunk in iter(lambda: src.read(8 << 20), b""):
            dst.write(chunk)


def local_copy(path: str) -> str:
    """A local file for `path`, for libraries that only open file names (fastText's loader): the path itself
    when local, else a copy fetched once per machine into the temporary folder."""
    if is_local(path):
        return path
    # Named by the path and the object's size and modification time: a model retrained under the same name
    # is fetched again, not served stale from an earlier copy.
    meta = retrying(lambda: filesystems().match([path])[0].metadata_list, f"list {path}")
    if len(meta) != 1:
        raise FileNotFoundError(f"{path}: no such file")
    stamp = f"{path}\0{meta[0].size_in_bytes}\0{meta[0].last_updated_in_seconds}"
    cache = os.path.join(tempfile.gettempdir(), "tokenmill-files")
    os.makedirs(cache, exist_ok=True)
    target = os.path.join(cache, hashlib.sha256(stamp.encode()).hexdigest()[:16] + "-" + os.path.basename(path))
    if not os.path.exists(target):
        tmp = f"{target}.tmp-{os.getpid()}"
        copy(path, tmp)  # streamed, not held whole: a model may be hundreds of MB
        os.replace(tmp, target)
    return target
