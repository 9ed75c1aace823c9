"""`python -m clusters fetch`: fill the engine cache (Flink's and Spark's jars, Beam's job servers from Maven
Central, the worker environment from tokenmill's wheel) before the tests, so a test's time is the engine's.
`python -m clusters paths` prints where each piece is."""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    from clusters.dists import FLINK_VERSION, SPARK_VERSION, flink_home, spark_home
    from clusters.jobserver import MAVEN_BEAM, launcher
    from clusters.workers import built_wheel, worker_venv

    if argv not in (["fetch"], ["paths"]):
        print("usage: python -m clusters fetch|paths", file=sys.stderr)
        return 2
    started = time.monotonic()
    flink, spark = flink_home(), spark_home()
    jars = sorted((spark / "jars").glob("*.jar"))
    pieces = {
        f"Flink {FLINK_VERSION}": flink,
        f"Spark {SPARK_VERSION}": spark,
        f"Beam {MAVEN_BEAM} Flink job server": launcher("flink"),
        f"Beam {MAVEN_BEAM} Spark job server": launcher("spark", jars),
        "worker environment": worker_venv(built_wheel()),
    }
    for name, path in pieces.items():
        print(f"{name}: {path}")
    if argv == ["fetch"]:
        print(f"engine cache ready in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
