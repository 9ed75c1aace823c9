"""Bytes an object store serves during a run, against the bytes of input plus staging written.

    python bench/read_amplification.py [--docs 2500 --shards 4] [--config fineweb] [--keep DIR]

A moto S3 server on loopback holds the bench crawl; the run reads it from s3:// and writes its output to
s3://, through a TCP proxy on loopback that counts every byte each way (HTTP headers included, so the
figure errs high). Staging written = bytes uploaded - the run's final objects. The issue's goal: served /
(input + staging written) <= 1.2.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_crawl  # noqa: E402


class CountingProxy:
    """A TCP proxy: every connection to 127.0.0.1:port is piped to `upstream_port`, bytes counted each way."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.served = 0  # store -> client
        self.sent = 0  # client -> store
        self._lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream, "sent"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, "served"), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, counter: str) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
                with self._lock:
                    setattr(self, counter, getattr(self, counter) + len(data))
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def reset(self) -> None:
        with self._lock:
            self.served = self.sent = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=2500)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--config", default="fineweb")
    ap.add_argument("--keep", type=Path, default=None, help="folder for the bench crawl (kept between runs)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    import boto3

    crawl = bench_crawl((args.keep or Path(tempfile.mkdtemp())) / f"crawl-{args.docs}-{args.shards}",
                        args.docs, args.shards)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        proxy = CountingProxy(port)
        endpoint = f"http://127.0.0.1:{proxy.port}"
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="test",
                              aws_secret_access_key="test", region_name="us-east-1")
        client.create_bucket(Bucket="crawl")
        files = sorted(crawl.glob("*.warc.gz"))
        for f in files:
            client.upload_file(str(f), "crawl", f"in/{f.name}")
        input_bytes = sum(f.stat().st_size for f in files)
        proxy.reset()
        command = [sys.executable, "run_pipeline.py", "--input", "s3://crawl/in/*.warc.gz", "--output",
                   "s3://crawl/out", "--config", args.config, f"--s3_endpoint_url={endpoint}",
                   "--s3_access_key_id=test", "--s3_secret_access_key=test", "--s3_region_name=us-east-1",
                   f"--direct_num_workers={args.workers}", "--quiet"]
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=Path(__file__).resolve().parents[1])
        wall = time.perf_counter() - start
        served, sent = proxy.served, proxy.sent
        final = sum(o["Size"] for page in client.get_paginator("list_objects_v2").paginate(
            Bucket="crawl", Prefix="out/") for o in page.get("Contents", []))
    finally:
        server.kill()
        server.wait()
    staging = sent - final
    print(f"{len(files)} input files, {input_bytes / 1e6:.1f} MB; recipe {args.config}; {wall:.1f} s")
    print(f"uploaded {sent / 1e6:.1f} MB: final objects {final / 1e6:.1f} MB, staging and request overhead "
          f"{staging / 1e6:.1f} MB")
    print(f"served {served / 1e6:.1f} MB = {served / (input_bytes + staging):.2f}x of input + staging written "
          f"({(input_bytes + staging) / 1e6:.1f} MB); goal <= 1.2x")


if __name__ == "__main__":
    main()
