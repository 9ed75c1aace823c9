"""Engine distributions from PyPI: Flink's jars ship in the `apache-flink-libraries` source distribution (the
`apache-flink` wheel's bundled Flink), Spark's in the `pyspark` one. Downloaded with pip once, unpacked into the
engine cache, never installed: only their jars and launch scripts are used."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

from clusters.cache import locked

# Beam 2.62's Flink runner module is built for Flink 1.19 (beam-runners-flink-1.19 depends on 1.19.0): the
# newest 1.19 bug-fix release runs the cluster.
FLINK_VERSION = "1.19.3"
# Beam's Spark 3 runner; Spark 3.5 is the newest Spark 3 line and the first to support Java 17 fully.
SPARK_VERSION = "3.5.9"


def _unpacked(package: str, version: str) -> Path:
    """The `deps/` folder of `package`'s source distribution, downloaded and unpacked into the cache once."""
    with locked(package) as root:
        home = root / f"{package}-{version}"
        if (home / ".unpacked").exists():
            return home / "deps"
        downloads = root / "downloads"
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d",
               str(downloads), f"{package}=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"pip could not download {package}=={version}: {proc.stderr.strip()[-1500:]}")
        (sdist,) = [p for p in downloads.glob("*.tar.gz") if p.name.replace("_", "-").startswith(
            f"{package}-{version}")]
        prefix = f"{sdist.name.removesuffix('.tar.gz')}/deps/"
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix) and (m.isfile() or m.isdir())]
            for m in members:
                m.name = "deps/" + m.name[len(prefix):]
            tar.extractall(home, members=members, filter="data")
        (home / ".unpacked").write_text("ok\n")
        return home / "deps"


def flink_home() -> Path:
    """Flink's distribution: lib/ (flink-dist and the rest), bin/bash-java-utils.jar."""
    return _unpacked("apache-flink-libraries", FLINK_VERSION)


def spark_home() -> Path:
    """SPARK_HOME of pyspark's bundled Spark: jars/, bin/spark-class, sbin/."""
    home = _unpacked("pyspark", SPARK_VERSION)
    for script in (home / "bin").iterdir():
        script.chmod(0o755)
    return home
