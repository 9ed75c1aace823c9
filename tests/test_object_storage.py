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


def test_every_command_reads_and_writes_object_storage(s3, demo_crawl, tmp_path, monkeypatch, capsys):
    """Everything a run reads by name on s3:// (the recipe, its base, a URL list, the language
    model, a topic model trained there, a tokenizer.json), and every command on the run's s3:// output:
    stats, inspect, diff, report, select, release to s3://, verify, decode, PackedReader, mix. The store is
    named by the standard AWS environment variables, as a user's shell would."""
    import tokenmill_cli
    from classifiers.language import packaged_lid_model
    from demo.prose import labeled_paragraphs
    from training.reader import PackedReader

    endpoint, client = s3
    for name, value in {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for bucket in ("cli-in", "cli-tools", "cli-out"):
        client.create_bucket(Bucket=bucket)
    for path in demo_crawl:
        client.upload_file(path, "cli-in", f"crawl/{Path(path).name}")

    def put(key: str, data: bytes) -> str:
        client.put_object(Bucket="cli-tools", Key=key, Body=data)
        return f"s3://cli-tools/{key}"

    # A topic model trained from s3:// data straight to s3://.
    train = put("data/train.jsonl", "".join(json.dumps({"text": text, "label": label}) + "\n"
                                            for text, label in labeled_paragraphs(200)).encode())
    assert tokenmill_cli.main(["train-classifier", "--train", train, "--valid", train, "--out",
                               "s3://cli-tools/models/topic.bin", "--epoch", "5"]) == 0
    assert tokenmill_cli.main(["eval-classifier", "--model", "s3://cli-tools/models/topic.bin", "--data", train]) == 0
    assert json.loads(client.get_object(Bucket="cli-tools", Key="models/topic.eval.json")["Body"].read())[
        "examples"] == 600

    from tokenizers import Tokenizer as HF
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    hf = HF(WordLevel({"[UNK]": 0, "the": 1, "a": 2, "</s>": 3}, unk_token="[UNK]"))
    hf.pre_tokenizer = Whitespace()
    tokenizer = put("tok/tokenizer.json", hf.to_str().encode())
    lid = put("models/lid.176.ftz", Path(packaged_lid_model()).read_bytes())
    domains = put("lists/domains.txt", b"mirror0.example\n")
    put("recipes/base.toml", b'[filters]\norder = ["url", "language"]\n')
    # A benchmark whose one item is a demo page's paragraph, laid out one sentence a line.
    from demo.crawl import ARTICLES

    item = ARTICLES[0][2][1].replace(". ", ".\n")
    put("evals/bench-0.jsonl", (json.dumps({"question": item}) + "\n").encode())
    recipe = put("recipes/r.toml", f'''base = "base.toml"
[filters.url]
domain_files = ["{domains}"]
[language]
model_path = "{lid}"
[topic]
enabled = true
model_path = "s3://cli-tools/models/topic.bin"
[tokenizer]
name = "{tokenizer}"
[decontamination]
enabled = true
sources = ["s3://cli-tools/evals/*.jsonl"]
text_fields = ["question"]
'''.encode())
    out = "s3://cli-out/run"
    stats = run(["s3://cli-in/crawl/*.warc.gz"], out, "--config", recipe, "--keep-scored", *IN_MEMORY)
    assert stats["stages"]["url"]["dropped"] == {"url_domain_blocked": 1}, stats["stages"]["url"]
    manifest = json.loads(client.get_object(Bucket="cli-out", Key="run/manifest.json")["Body"].read())
    assert manifest["tokenizer"]["name"] == tokenizer and manifest["recipe"]["filters"]["order"] == ["url", "language"]
    assert stats["kept_by_topic"], "the topic model from s3:// labelled the kept documents"
    (found,) = stats["decontamination"]["sources"]
    assert found["path"] == "s3://cli-tools/evals/bench-0.jsonl" and found["items_found"] == 1
    assert stats["stages"]["decontamination"]["dropped"] == {"contaminated": found["documents"]}

    capsys.readouterr()
    assert tokenmill_cli.main(["stats", out]) == 0
    assert "kept" in capsys.readouterr().out
    assert tokenmill_cli.main(["inspect", out, "--dropped", "--reason", "url_domain_blocked", "--json"]) == 0
    dropped = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(dropped) == 1 and all("mirror0.example" in r["url"] for r in dropped)
    assert tokenmill_cli.main(["inspect", out, "--kept", "--sample", "2", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert tokenmill_cli.main(["diff", out, out]) == 0
    assert tokenmill_cli.main(["report", out, "-o", "s3://cli-out/report.html"]) == 0
    assert b"<html" in client.get_object(Bucket="cli-out", Key="report.html")["Body"].read()[:2000].lower()
    assert run_pipeline.main(["select", out, "--config", recipe, "--output", "s3://cli-out/selected",
                              *IN_MEMORY][1:], command=run_pipeline.select) == 0
    assert tokenmill_cli.main(["release", out, "--name", "web", "--version", "1", "--to", "s3://cli-out/rel"]) == 0
    capsys.readouterr()
    assert tokenmill_cli.main(["verify", "s3://cli-out/rel"]) == 0
    client.put_object(Bucket="cli-out", Key="rel/shards/stray.parquet", Body=b"x")
    assert tokenmill_cli.main(["verify", "s3://cli-out/rel"]) == 1
    assert "stray.parquet: not listed" in capsys.readouterr().out
    client.delete_object(Bucket="cli-out", Key="rel/shards/stray.parquet")
    # The same crawl again, deduplicated against the release on the store: every document it kept is released.
    again = put("recipes/again.toml", b'base = "r.toml"\n[dedup]\nagainst = ["s3://cli-out/rel"]\n')
    stats = run(["s3://cli-in/crawl/*.warc.gz"], "s3://cli-out/again", "--config", again, *IN_MEMORY)
    (against,) = stats["dedup_against"]
    assert against["indexed_documents"] == manifest["totals"]["documents"] and stats["kept"] == 0
    assert against["exact_copies"] == stats["stages"]["exact_dedup"]["dropped"]["duplicate_of_release"] > 0
    sequences = list(PackedReader("s3://cli-out/rel", seq_len=16))
    assert sequences and all(len(s) == 17 for s in sequences)
    # A mixture of the release on the store, written to the store, read back as a token stream.
    mix = put("mixes/m.toml", b'name = "m"\ntotal_tokens = 5000\n[[sources]]\npath = "s3://cli-out/rel"\n'
                              b"weight = 1.0\n")
    assert tokenmill_cli.main(["mix", mix, "--to", "s3://cli-out/mix"]) == 0
    assert tokenmill_cli.main(["verify", "s3://cli-out/mix"]) == 0
    mixed = PackedReader("s3://cli-out/mix", seq_len=16)
    assert len(list(mixed)) == 5000 // 17 and sum(mixed.tokens_by_source.values()) == 5000 // 17 * 17
    assert tokenmill_cli.main(["report", "s3://cli-out/mix", "-o", "s3://cli-out/mix.html"]) == 0
    capsys.readouterr()
    assert tokenmill_cli.main(["decode", "--from", "s3://cli-out/rel", "1", "2", "3"]) == 0
    assert capsys.readouterr().out.split() == ["the", "a", "</s>"]


class FlakyStore:
    """A loopback HTTP proxy in front of the moto server for reading (GET, HEAD) that fails the first reads
    of each object whose key contains `target`: an HTTP 503, then a body cut off half way, then a connection
    closed without an answer; later reads pass through."""

    def __init__(self, upstream: str, target: str, failures: int = 3) -> None:
        import http.server
        import threading
        import urllib.request

        self.failed: dict[str, int] = {}
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                request = urllib.request.Request(upstream + self.path, data=body, method=self.command,
                                                 headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                try:
                    with urllib.request.urlopen(request) as answer:
                        status, headers, data = answer.status, answer.headers, answer.read()
                except urllib.error.HTTPError as err:
                    status, headers, data = err.code, err.headers, err.read()
                key = self.path.split("?")[0]
                n = store.failed.get(key, 0)
                if self.command == "GET" and target in key and n < failures:
                    store.failed[key] = n + 1
                    if n == 0:
                        self.send_response(503)
                        error = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
                        self.send_header("Content-Length", str(len(error)))
                        self.end_headers()
                        self.wfile.write(error)
                        return
                    if n == 1:
                        self.send_response(status)
                        for k, v in headers.items():
                            if k.lower() not in ("transfer-encoding", "connection"):
                                self.send_header(k, v)
                        self.end_headers()
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _forward  # noqa: N815 - the name http.server looks for

            def do_HEAD(self) -> None:  # noqa: N802 - no body in the answer to HEAD
                request = urllib.request.Request(upstream + self.path, method="HEAD",
                                                 headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                try:
                    with urllib.request.urlopen(request) as answer:
                        status, headers = answer.status, answer.headers
                except urllib.error.HTTPError as err:
                    status, headers = err.code, err.headers
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_store_that_fails_the_first_reads_of_a_file_changes_nothing(s3, demo_crawl, tmp_path):
    """Transient store errors (HTTP 503, a body cut off, a dropped connection) on the first reads of every
    input file are retried: the run records no file error and writes what a local run writes."""
    endpoint, client = s3
    client.create_bucket(Bucket="flaky")
    for path in demo_crawl:
        client.upload_file(path, "flaky", f"in/{Path(path).name}")
    store = FlakyStore(endpoint, target=".warc.gz")
    try:
        stats = run(["s3://flaky/in/*.warc.gz"], tmp_path / "out", *_s3_flags(store.url), *IN_MEMORY)
    finally:
        store.close()
    assert all(n == 3 for n in store.failed.values()) and len(store.failed) == len(demo_crawl), store.failed
    assert stats["read"]["file_errors"] == [] and stats["records"] == 18
    local = tmp_path / "local"
    run(demo_crawl, local, *IN_MEMORY)
    got = {name: data for name, data in file_bytes(tmp_path / "out").items() if name.endswith(".parquet")}
    assert got == {name: data for name, data in file_bytes(local).items() if name.endswith(".parquet")}


def test_an_input_list_in_the_store_names_the_crawl(s3, demo_crawl, tmp_path, capsys):
    """`--input-list s3://.../paths.txt` (one path a line, as Common Crawl's warc.paths with the bucket in
    front): the same output as the files given by a glob. A list that cannot be read or names nothing stops
    the run at start with one line (a listed file that is not there is a file error: tests/test_run_folder.py)."""
    endpoint, client = s3
    client.create_bucket(Bucket="listed")
    for path in demo_crawl:
        client.upload_file(path, "listed", f"crawl/{Path(path).name}")
    listing = "# the demo crawl\n" + "".join(f"s3://listed/crawl/{Path(p).name}\n" for p in reversed(demo_crawl))
    client.put_object(Bucket="listed", Key="paths.txt", Body=listing.encode())
    run([], tmp_path / "listed", "--input-list", "s3://listed/paths.txt", *_s3_flags(endpoint), *IN_MEMORY)
    run(["s3://listed/crawl/*.warc.gz"], tmp_path / "globbed", *_s3_flags(endpoint), *IN_MEMORY)
    assert file_bytes(tmp_path / "listed") == file_bytes(tmp_path / "globbed")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    for args, message in ((["--input-list", str(tmp_path / "none.txt")], "cannot read --input-list"),
                          (["--input-list", str(empty)], "names no file"),
                          ([], "no input: give --input")):
        capsys.readouterr()
        assert run_pipeline.main([*args, "--output", str(tmp_path / "x"), *IN_MEMORY]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_a_folder_on_a_store_means_its_crawl_files_with_or_without_the_slash(s3, demo_crawl):
    """On a store a folder is a key prefix: `s3://b/crawl` names no object but holds some. With or without the
    slash it means the crawl files under it (one listing), a README.md beside them is left out, a file's own
    path is that file, and a prefix holding nothing matches no file."""
    import run_pipeline
    from storage.files import configure

    endpoint, client = s3
    configure(_s3_flags(endpoint))
    client.create_bucket(Bucket="folders")
    for path in demo_crawl:
        client.upload_file(path, "folders", f"crawl/{Path(path).name}")
    client.put_object(Bucket="folders", Key="crawl/README.md", Body=b"about this crawl\n")
    files = [f"s3://folders/crawl/{Path(p).name}" for p in demo_crawl]
    for given in ("s3://folders/crawl", "s3://folders/crawl/"):
        sizes, skipped = run_pipeline.expand_inputs([given])
        assert list(sizes) == files and skipped == ["s3://folders/crawl/README.md"], given
    assert list(run_pipeline.expand_inputs([files[0]])[0]) == files[:1]
    with pytest.raises(run_pipeline.UsageError, match="matches no file"):
        run_pipeline.expand_inputs(["s3://folders/nothing"])


def test_s3_operations_share_one_boto3_client_and_files_read_apart(s3, monkeypatch):
    """Beam 2.62 builds a boto3 session and client for every s3:// operation (~0.1 s of CPU each);
    storage/s3_clients.py gives a process one client per store settings. Two files read in turns by two
    threads still read their own bytes: each open keeps its own download stream."""
    import threading

    import boto3.session

    from storage import files, s3_clients

    endpoint, client = s3
    client.create_bucket(Bucket="shared-client")
    bodies = {name: bytes(range(256)) * 4096 + name.encode() for name in ("a", "b")}  # 1 MiB each
    for name, body in bodies.items():
        client.put_object(Bucket="shared-client", Key=name, Body=body)
    files.configure(_s3_flags(endpoint))
    assert s3_clients.install()
    fs = files.filesystems()
    assert fs.exists("s3://shared-client/a")  # the process's first operation on this store builds its client
    made = []
    real = boto3.session.Session.client
    monkeypatch.setattr(boto3.session.Session, "client", lambda self, *a, **k: made.append(k) or real(self, *a, **k))
    with fs.open("s3://shared-client/a") as fa, fs.open("s3://shared-client/b") as fb:
        got = {"a": b"", "b": b""}
        while len(got["a"]) < len(bodies["a"]) or len(got["b"]) < len(bodies["b"]):
            got["a"] += fa.read(100_003)
            got["b"] += fb.read(77_777)
    assert got == bodies
    read = {}

    def whole(name: str) -> None:
        with fs.open(f"s3://shared-client/{name}") as f:
            read[name] = b"".join(iter(lambda: f.read(65_536), b""))

    threads = [threading.Thread(target=whole, args=(n,)) for n in ("a", "b") * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert read == bodies
    assert fs.exists("s3://shared-client/a") and not fs.exists("s3://shared-client/c")
    assert not made, f"{len(made)} more boto3 clients for one store's settings"


def test_export_reads_a_release_on_s3_and_writes_its_format_there_and_resumes(s3, runs, tmp_path, monkeypatch):
    """`tokenmill release` to s3://, `tokenmill export` from there to s3:// (each format's files written in
    place, manifest last), `tokenmill verify` of the export on the store; a stopped export resumes on the
    store from its progress records and ends with the same files."""
    import tokenmill_cli
    from exports import megatron as mg

    endpoint, client = s3
    for name, value in {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    client.create_bucket(Bucket="exp")
    assert tokenmill_cli.main(["release", str(runs / "fw"), "--name", "web", "--version", "1.0.0",
                               "--to", "s3://exp/rel"]) == 0
    local = tmp_path / "local"
    assert tokenmill_cli.main(["export", "s3://exp/rel", "--format", "megatron", "--to", str(local)]) == 0
    real, calls = mg.write_part, []

    def stop_at_the_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(mg, "write_part", stop_at_the_third)
    from exports.run import export

    with pytest.raises(KeyboardInterrupt):
        export("s3://exp/rel", "megatron", "s3://exp/out", threads=1, log=lambda _: None)
    monkeypatch.setattr(mg, "write_part", real)
    said: list[str] = []
    export("s3://exp/rel", "megatron", "s3://exp/out", log=said.append)
    assert said in (["  resuming: 2 of 4 parts already written"], ["  resuming: 3 of 4 parts already written"])
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="exp", Prefix="out/")["Contents"])
    assert ".progress" not in " ".join(keys) and "out/manifest.json" in keys
    on_store = json.loads(client.get_object(Bucket="exp", Key="out/manifest.json")["Body"].read())
    here = json.loads((local / "manifest.json").read_text())
    pairs = [[(f["path"], f["sha256"]) for f in m["files"] if f["path"].endswith((".bin", ".idx"))]
             for m in (on_store, here)]
    assert pairs[0] == pairs[1] and len(pairs[0]) == 8
    assert tokenmill_cli.main(["verify", "s3://exp/out"]) == 0
    assert tokenmill_cli.main(["export", "s3://exp/rel", "--format", "hf", "--to", "s3://exp/out"]) == 2  # not empty
