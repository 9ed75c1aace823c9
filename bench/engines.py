"""One crawl on the local runner, Flink and Spark: wall time, CPU seconds per process role, peak memory.

    python bench/engines.py [--docs 2500] [--shards 4] [--engines local,flink,spark] [--recipe fineweb]

Builds the bench crawl (demo/bench_crawl.py), puts it in an S3 bucket (moto's server on loopback), starts each
engine as tests/test_engines.py does (clusters/: Flink 1.19 with one TaskManager of two slots, Spark 3.5 with
one worker of two cores, Beam 2.62's job servers, Python SDK workers from tokenmill's wheel in their own venv),
and runs `tokenmill run` on it with the same flags. The local runner is the default one (multi_processing, one
SDK worker per core). While a run goes, every process on the machine is sampled from /proc each 0.25 s and
counted under its role: the driver (tokenmill's command), the job server (Beam's, a JVM), the engine's own
JVMs (Flink JobManager/TaskManager, Spark master/worker/executors), the Python SDK workers with their
extraction children, and the store (moto). CPU seconds of a long-lived process are its growth during the run;
peak memory is the largest single process of the role. Clusters start before the clock and are not timed.
The outputs of every engine are compared byte for byte (shards, ledger, dedup index, manifest).
Run it on a quiet machine: nothing else beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import rss_mib  # noqa: E402
from clusters.procs import Service, free_port  # noqa: E402

ROLES = ("driver", "job server", "engine JVMs", "SDK workers", "extraction children", "store")


def role_of(cmdline: str) -> str | None:
    java = os.path.basename(cmdline.split(" ", 1)[0]) == "java"  # Spark's scripts start $JAVA_HOME/bin/java
    if "tokenmill_cli" in cmdline:
        return "driver"
    if "launcher-" in cmdline and java:
        return "job server"
    if java and ("org.apache.flink" in cmdline or "org.apache.spark" in cmdline):
        return "engine JVMs"
    if "moto.server" in cmdline:
        return "store"
    if "python" in cmdline and "multiprocessing.spawn" in cmdline:
        return "extraction children"  # ingest/extract.py: spawned, one per SDK harness thread that extracts
    if "python" in cmdline and ("sdk_worker" in cmdline or "worker_pool_main" in cmdline or "SdkHarness" in cmdline):
        return "SDK workers"
    return None


class Sampler:
    """CPU seconds (utime + stime, the last value seen per process) and peak RSS per role, over every process."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.start_cpu: dict[int, float] = {}
        self.cpu: dict[int, tuple[str, float]] = {}
        self.peaks = dict.fromkeys(ROLES, 0.0)
        self.most = dict.fromkeys(ROLES, 0)  # the most processes of a role seen at once
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _scan(self) -> dict[int, tuple[str, float]]:
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                role = role_of(cmd)
                if role is None:
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                found[pid] = (role, (int(fields[11]) + int(fields[12])) / self.ticks)
                self.peaks[role] = max(self.peaks[role], rss_mib(pid))
            except (OSError, IndexError, ValueError):
                continue
        return found

    def _loop(self) -> None:
        while not self.done.is_set():
            found = self._scan()
            for role in ROLES:
                self.most[role] = max(self.most[role], sum(1 for r, _cpu in found.values() if r == role))
            self.cpu.update(found)
            self.done.wait(self.interval)

    def __enter__(self) -> Sampler:
        self.start_cpu = {pid: cpu for pid, (_role, cpu) in self._scan().items()}
        self.peaks = dict.fromkeys(ROLES, 0.0)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        self.cpu.update(self._scan())

    def table(self) -> dict[str, dict[str, float]]:
        cpu = dict.fromkeys(ROLES, 0.0)
        for pid, (role, seconds) in self.cpu.items():
            cpu[role] += seconds - self.start_cpu.get(pid, 0.0)
        return {r: {"cpu_seconds": round(cpu[r], 1), "peak_rss_mib": round(self.peaks[r], 1),
                    "most_at_once": self.most[r]} for r in ROLES}


def objects(client, bucket: str, prefix: str) -> dict[str, bytes]:
    import re

    keep = re.compile(r"(shards|ledger|dedup_index)/.*\.parquet$|manifest\.json$")
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if keep.search(obj["Key"]):
                out[obj["Key"][len(prefix):]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def main() -> int:
    import boto3

    from clusters.jobserver import launcher
    from clusters.workers import start_worker_pool
    from demo.bench_crawl import build_bench_crawl

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=2500)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--engines", default="local,flink,spark")
    ap.add_argument("--recipe", default="fineweb")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    build_bench_crawl(str(work / "crawl"), docs=args.docs, shards=args.shards, seed=0)
    port = free_port()
    store = Service("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                    work / "moto.log")
    store.wait_for_port(port)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")
    for bucket in ("crawl", "out"):
        client.create_bucket(Bucket=bucket)
    for path in sorted((work / "crawl").glob("*.warc.gz")):
        client.upload_file(str(path), "crawl", path.name)
    s3 = [f"--s3_endpoint_url={endpoint}", "--s3_access_key_id=test", "--s3_secret_access_key=test",
          "--s3_region_name=us-east-1"]
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    results: dict[str, dict] = {}
    outputs: dict[str, dict[str, bytes]] = {}
    try:
        for engine in args.engines.split(","):
            cluster = pool = None
            if engine == "local":
                flags = ["--direct_num_workers=2"]
            else:
                pool = start_worker_pool(work / engine / "pool")
                if engine == "flink":
                    from clusters.flink import start_flink

                    cluster = start_flink(work / engine)
                    flags = ["--runner=FlinkRunner", f"--flink_master={cluster.master}", "--flink_version=1.19",
                             f"--flink_job_server_jar={launcher('flink')}"]
                else:
                    from clusters.spark import start_spark

                    cluster = start_spark(work / engine)
                    flags = ["--runner=SparkRunner", f"--spark_master_url={cluster.master_url}", "--spark_version=3",
                             f"--spark_job_server_jar={launcher('spark', cluster.jars())}"]
                flags += ["--environment_type=EXTERNAL", f"--environment_config={pool.endpoint}", "--parallelism=2"]
            cmd = [sys.executable, "-m", "tokenmill_cli", "run", "--input", "s3://crawl/", "--output",
                   f"s3://out/{engine}", "--config", args.recipe, "--quiet", *flags, *s3]
            try:
                with Sampler() as sampler:
                    started = time.perf_counter()
                    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
                    wall = time.perf_counter() - started
            finally:
                for part in (cluster, pool):
                    if part is not None:
                        part.stop()
            if proc.returncode:
                print(f"{engine}: exit {proc.returncode}\n{proc.stderr[-3000:]}", file=sys.stderr)
                return 1
            stats = json.loads(client.get_object(Bucket="out", Key=f"{engine}/stats.json")["Body"].read())
            results[engine] = {"wall_seconds": round(wall, 1), "records": stats["records"], "kept": stats["kept"],
                               "roles": sampler.table()}
            outputs[engine] = objects(client, "out", f"{engine}/")
            print(json.dumps({engine: results[engine]}), flush=True)
    finally:
        store.stop()
    first = next(iter(outputs))
    same = {e: outputs[e] == outputs[first] for e in outputs}
    print(json.dumps({"docs": args.docs, "shards": args.shards, "recipe": args.recipe, "identical_to_" + first: same,
                      "results": results}, indent=2))
    print(f"\n| engine | wall s | {' | '.join(f'{r}: CPU s / peak MiB / most at once' for r in ROLES)} |")
    print(f"|---|---:|{'---:|' * len(ROLES)}")
    for engine, r in results.items():
        cells = " | ".join(f"{r['roles'][role]['cpu_seconds']} / {r['roles'][role]['peak_rss_mib']:.0f} / "
                           f"{r['roles'][role]['most_at_once']}" for role in ROLES)
        print(f"| {engine} | {r['wall_seconds']} | {cells} |")
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
