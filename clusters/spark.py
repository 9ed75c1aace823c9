"""A Spark standalone cluster on loopback: one master and one worker with two cores, started as Spark's
sbin/start-master.sh and start-worker.sh start them (`bin/spark-class`, which adds the JVM flags Spark needs
on Java 17), from pyspark's bundled Spark (clusters.dists.spark_home())."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from clusters.dists import SPARK_VERSION, spark_home
from clusters.procs import Service, free_port, get_json


@dataclass
class SparkCluster:
    port: int
    ui_port: int
    home: Path
    version: str = SPARK_VERSION
    services: list[Service] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        """What --spark_master_url takes."""
        return f"spark://127.0.0.1:{self.port}"

    def status(self) -> dict:
        return get_json(f"http://127.0.0.1:{self.ui_port}/json/")

    def jars(self) -> list[Path]:
        """The cluster's Spark jars, for the job server's class path (clusters.jobserver.launcher)."""
        return sorted((self.home / "jars").glob("*.jar"))

    def stop(self) -> None:
        for s in reversed(self.services):
            s.stop()


def start_spark(work: Path, cores: int = 2, memory: str = "3g") -> SparkCluster:
    home = spark_home()
    work.mkdir(parents=True, exist_ok=True)
    cluster = SparkCluster(port=free_port(), ui_port=free_port(), home=home)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME")}
    env.update(SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", SPARK_LOCAL_DIRS=str(work / "local"),
               SPARK_WORKER_DIR=str(work / "worker"), SPARK_LOG_DIR=str(work), SPARK_NO_DAEMONIZE="1")
    spark_class = str(home / "bin" / "spark-class")
    try:
        master = Service("Spark master", [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                          "--port", str(cluster.port), "--webui-port", str(cluster.ui_port)],
                         work / "spark-master.log", env=env)
        cluster.services.append(master)
        master.wait_for_port(cluster.port)
        master.wait_for_port(cluster.ui_port)
        worker = Service("Spark worker", [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                                          "--cores", str(cores), "--memory", memory, "--webui-port", str(free_port()),
                                          cluster.master_url], work / "spark-worker.log", env=env)
        cluster.services.append(worker)
        deadline = time.monotonic() + 120
        while not cluster.status().get("aliveworkers"):
            if time.monotonic() > deadline or worker.proc.poll() is not None:
                raise RuntimeError(f"Spark's worker did not register: {worker.tail()}")
            time.sleep(0.5)
    except BaseException:
        cluster.stop()
        raise
    return cluster
