"""Beam's Flink and Spark job servers, assembled from Maven Central.

Beam publishes each job server twice: as a shaded jar (beam-runners-flink-1.19-job-server, ...) and as the runner
module it is made of, whose POM names every dependency. The registry this project's machines reach serves the
modules (beam-runners-flink-1.19, beam-runners-spark-3, beam-runners-java-job-service) for Beam 2.62.0 and the
shaded jars of no release (probed 2026-12-07; pyproject.toml pins apache-beam to the same release). So Maven
resolves the module's dependencies into a folder, and a small launcher jar names them in its manifest's
Class-Path, with the driver class as Main-Class. Beam's Python FlinkRunner and SparkRunner start it as they start
the shaded jar (`java -jar JAR --job-port ...`) when given `--flink_job_server_jar` / `--spark_job_server_jar`.

The Spark runner's POM leaves Spark itself to the cluster ("provided"): the launcher adds the jars of the
cluster's own Spark (clusters/spark.py), so driver and cluster speak the same Spark, and where the module and
Spark both ship a library it keeps the newer copy. These are Beam 2.62.0's job-server classes on a class path
made here, not Beam's shaded jar."""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

from clusters.cache import locked

# The Beam release of the job servers: the SDK pinned in pyproject.toml. Move both together.
MAVEN_BEAM = "2.62.0"
# Beam's runner module per engine, and the class that serves Beam's job API (what the shaded jar's manifest names).
MODULES = {
    "flink": ("beam-runners-flink-1.19", "org.apache.beam.runners.flink.FlinkJobServerDriver"),
    "spark": ("beam-runners-spark-3", "org.apache.beam.runners.spark.SparkJobServerDriver"),
}

# JDK packages the job server reaches into on Java 17: the list Spark 3.5's launcher opens for its own JVMs
# (org.apache.spark.launcher.JavaModuleOptions; the Spark job server is a Spark driver) and Flink's client
# needs. A jar's manifest opens them for `java -jar` (Add-Opens, JAR File Specification since Java 9), which is
# how Beam's Python runners start a job server: the runner has no flag for JVM options other than -D properties.
ADD_OPENS = ["java.base/" + p for p in (
    "java.lang", "java.lang.invoke", "java.lang.reflect", "java.io", "java.net", "java.nio", "java.text", "java.time",
    "java.util", "java.util.concurrent", "java.util.concurrent.atomic", "java.util.concurrent.locks", "sun.nio.ch",
    "sun.nio.cs", "sun.security.action", "sun.util.calendar")]

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tokenmill.engines</groupId><artifactId>{artifact}-classpath</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.beam</groupId><artifactId>{artifact}</artifactId><version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def _artifact_name(jar: str) -> str:
    """'jackson-databind-2.15.4.jar' -> 'jackson-databind': a library's name without its version."""
    return re.sub(r"-\d[\w.\-]*\.jar$", "", jar)


def resolve(engine: str) -> Path:
    """The folder of the runner module's jars and all its dependencies (Maven, into the engine cache)."""
    artifact, _main = MODULES[engine]
    with locked("maven") as root:
        lib = root / f"{artifact}-{MAVEN_BEAM}" / "lib"
        done = lib.parent / ".resolved"
        if done.exists():
            return lib
        lib.parent.mkdir(parents=True, exist_ok=True)
        (lib.parent / "pom.xml").write_text(_POM.format(artifact=artifact, version=MAVEN_BEAM))
        cmd = ["mvn", "-q", "-B", f"-Dmaven.repo.local={root / 'm2'}", "-f", str(lib.parent / "pom.xml"),
               "dependency:copy-dependencies", f"-DoutputDirectory={lib}", "-DincludeScope=runtime"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"mvn could not resolve org.apache.beam:{artifact}:{MAVEN_BEAM}: "
                               f"{(proc.stdout + proc.stderr).strip()[-2000:]}")
        done.write_text("ok\n")
        return lib


def launcher(engine: str, cluster_jars: list[Path] = ()) -> Path:
    """A jar that starts the `engine` job server: Main-Class the driver, Class-Path the module's jars and
    `cluster_jars` (the cluster's Spark), where both hold a library the newer of the two (Spark 3.5.9 ships
    Guava 14, and Beam's gRPC needs 33: with Spark's first the job server died with NoSuchMethodError on
    Preconditions.checkState)."""
    artifact, main = MODULES[engine]
    lib = resolve(engine)
    own = sorted(lib.glob("*.jar"))
    theirs = {_artifact_name(p.name): p for p in cluster_jars}
    # Only a library in both sets is decided, by its version; within one set every jar stays (two jars of one
    # name without their versions can be different artifacts: hive-shims-0.23 and hive-shims, netty's per-OS).
    keep_own = [p for p in own if _artifact_name(p.name) not in theirs
                or _version(p.name) > _version(theirs[_artifact_name(p.name)].name)]
    kept = {_artifact_name(p.name) for p in keep_own}
    jars = [*keep_own, *(p for p in cluster_jars if _artifact_name(p.name) not in kept)]
    out = lib.parent / f"launcher-{_digest([*jars, *ADD_OPENS])}.jar"
    if out.exists():
        return out
    entries = [_relative(p, out.parent) for p in jars]
    manifest = "".join(f"{_wrap(h)}\r\n" for h in (
        "Manifest-Version: 1.0", f"Main-Class: {main}", f"Add-Opens: {' '.join(ADD_OPENS)}",
        f"Class-Path: {' '.join(entries)}"))
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", manifest)
    tmp.rename(out)
    return out


def _version(jar: str) -> tuple[int, ...]:
    """'guava-33.3.1-android.jar' -> (33, 3, 1): the numbers of a jar's version, for "the newer of two"."""
    found = re.search(r"-(\d[\w.\-]*)\.jar$", jar)
    return tuple(int(n) for n in re.findall(r"\d+", found.group(1))) if found else ()


def _digest(paths: list) -> str:
    import hashlib

    return hashlib.sha256("\n".join(str(p) for p in paths).encode()).hexdigest()[:12]


def _relative(path: Path, base: Path) -> str:
    import os

    return os.path.relpath(path, base).replace(os.sep, "/")


def _wrap(line: str) -> str:
    """A manifest header in 72-byte lines, continuation lines starting with a space (the JAR spec's rule)."""
    data = line.encode()
    out = [data[:70]]
    data = data[70:]
    while data:
        out.append(b" " + data[:69])
        data = data[69:]
    return "\r\n".join(p.decode() for p in out)
