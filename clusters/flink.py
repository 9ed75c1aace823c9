"""A Flink session cluster on loopback: one JobManager and one TaskManager with two slots, as Flink's
start-cluster.sh starts them (its resource flags computed by Flink's own BashJavaUtils), from the jars of
clusters.dists.flink_home()."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from clusters.dists import FLINK_VERSION, flink_home
from clusters.procs import Service, free_port, get_json

# pekko.ask.timeout 120 s (Flink's default 10 s) and heartbeat.timeout 120 s (default 50 s): a streaming job's
# operators are all deployed at once, and on a busy 2-core machine the TaskManager missed the default ask
# (AskTimeoutException on RemoteRpcInvocation, found 2026-12-07). The TaskManager's 3 GB: the network memory
# below plus Flink's defaults for the rest; the Python workers run outside it (the EXTERNAL pool).
# What Flink 1.19's default config.yaml gives every JVM on Java 17 (env.java.opts.all): Flink and Kryo reach into
# these JDK packages.
JAVA17_OPENS = [
    *(f"--add-exports={m}=ALL-UNNAMED" for m in (
        "java.base/sun.net.util", "java.rmi/sun.rmi.registry", "jdk.compiler/com.sun.tools.javac.api",
        "jdk.compiler/com.sun.tools.javac.file", "jdk.compiler/com.sun.tools.javac.parser",
        "jdk.compiler/com.sun.tools.javac.tree", "jdk.compiler/com.sun.tools.javac.util",
        "java.security.jgss/sun.security.krb5")),
    *(f"--add-opens={m}=ALL-UNNAMED" for m in (
        "java.base/java.lang", "java.base/java.net", "java.base/java.io", "java.base/java.nio",
        "java.base/sun.nio.ch", "java.base/java.lang.reflect", "java.base/java.text", "java.base/java.time",
        "java.base/java.util", "java.base/java.util.concurrent", "java.base/java.util.concurrent.atomic",
        "java.base/java.util.concurrent.locks")),
]

_CONFIG = """jobmanager:
  rpc: {{address: 127.0.0.1, port: {rpc}}}
  bind-host: 127.0.0.1
  memory: {{process: {{size: 1024m}}}}
taskmanager:
  bind-host: 127.0.0.1
  host: 127.0.0.1
  numberOfTaskSlots: {slots}
  memory: {{process: {{size: {tm_memory}}}, network: {{min: 384m, max: 384m}}}}
rest: {{address: 127.0.0.1, bind-address: 127.0.0.1, port: {rest}}}
blob: {{server: {{port: "{blob}"}}}}
parallelism: {{default: {slots}}}
io: {{tmp: {{dirs: {tmp}}}}}
pekko: {{ask: {{timeout: 120 s}}}}
heartbeat: {{timeout: 120000}}
"""


@dataclass
class FlinkCluster:
    rest_port: int
    version: str = FLINK_VERSION
    services: list[Service] = field(default_factory=list)

    @property
    def master(self) -> str:
        """What --flink_master takes."""
        return f"127.0.0.1:{self.rest_port}"

    def overview(self) -> dict:
        return get_json(f"http://{self.master}/overview")

    def stop(self) -> None:
        for s in reversed(self.services):
            s.stop()


def _slots(cluster: FlinkCluster) -> int:
    """The slots registered so far; 0 while the REST endpoint answers with an error (before leader election)."""
    import urllib.error

    try:
        return int(cluster.overview().get("slots-total", 0))
    except (urllib.error.URLError, OSError, ValueError):
        return 0


def _resource_flags(home: Path, conf: Path, what: str) -> tuple[list[str], list[str]]:
    """(JVM flags, -D dynamic properties) that Flink's scripts pass to a JobManager or TaskManager (`what`: JM/TM)."""
    cp = f"{home / 'bin' / 'bash-java-utils.jar'}:{home / 'lib'}/*"
    out = subprocess.run(["java", "-cp", cp, "org.apache.flink.runtime.util.bash.BashJavaUtils",
                          f"GET_{what}_RESOURCE_PARAMS", "--configDir", str(conf)],
                         capture_output=True, text=True, check=True).stdout
    results = [line.split(":", 1)[1] for line in out.splitlines() if line.startswith("BASH_JAVA_UTILS_EXEC_RESULT:")]
    jvm, dynamic = results[0].split(), results[1].split()
    return jvm, dynamic


def start_flink(work: Path, slots: int = 2, tm_memory: str = "3072m") -> FlinkCluster:
    """Start the cluster with its configuration, logs and temporary files in `work`; wait until the TaskManager
    has registered its slots. Network memory is fixed at 384 MB: tokenmill's pipeline is many Flink operators,
    and a batch job with two slots asked for 512 network buffers of 32 KB where Flink's default share of a
    2 GB TaskManager gave 452 ('Insufficient number of network buffers')."""
    import time

    home = flink_home()
    conf = work / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (work / "tmp").mkdir(exist_ok=True)
    cluster = FlinkCluster(rest_port=free_port())
    (conf / "config.yaml").write_text(_CONFIG.format(rpc=free_port(), rest=cluster.rest_port, blob=free_port(),
                                                     slots=slots, tm_memory=tm_memory, tmp=work / "tmp"))
    (conf / "log4j.properties").write_text(
        "rootLogger.level = INFO\nrootLogger.appenderRef.file.ref = MainAppender\n"
        "appender.main.name = MainAppender\nappender.main.type = File\nappender.main.fileName = ${sys:log.file}\n"
        "appender.main.layout.type = PatternLayout\nappender.main.layout.pattern = %d %-5p %c - %m%n\n")
    cp = f"{home / 'lib'}/*"
    try:
        for what, main in (("JM", "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"),
                           ("TM", "org.apache.flink.runtime.taskexecutor.TaskManagerRunner")):
            jvm, dynamic = _resource_flags(home, conf, what)
            log = work / f"flink-{what.lower()}.log"
            argv = ["java", *JAVA17_OPENS, *jvm, f"-Dlog.file={log}",
                    f"-Dlog4j.configurationFile=file:{conf / 'log4j.properties'}", "-cp", cp, main,
                    "--configDir", str(conf), *dynamic]
            cluster.services.append(Service(f"Flink {what}", argv, work / f"flink-{what.lower()}.out"))
            if what == "JM":
                cluster.services[-1].wait_for_port(cluster.rest_port)
        deadline = time.monotonic() + 120
        while _slots(cluster) < slots:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Flink's TaskManager did not register {slots} slots: {cluster.services[-1].tail()}")
            if cluster.services[-1].proc.poll() is not None:
                raise RuntimeError(f"Flink's TaskManager exited: {cluster.services[-1].tail()}")
            time.sleep(0.5)
    except BaseException:
        cluster.stop()
        raise
    return cluster
