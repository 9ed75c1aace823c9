"""Beam counters named `<stage>/in`, `<stage>/kept`, `<stage>/dropped/<reason>`: the live run report; the
worker seconds of each stage (`<stage>/time_us`) and of each step's setup (`setup/<stage>/time_us`); and the
instants the run's phases start and end (`mark`, read back by outputs/timing.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager

from apache_beam.metrics import Metrics

NAMESPACE = "tokenmill"
MARK_PREFIX = "at/"


def mark(name: str) -> None:
    """Record now (epoch milliseconds) in the distribution `at/<name>`: its min and max over every worker are
    the first and last time a step reached this point (outputs.timing.wall_timing makes the phases of them)."""
    dist = _MARKS.get(name)
    if dist is None:
        dist = _MARKS[name] = Metrics.distribution(NAMESPACE, f"{MARK_PREFIX}{name}")
    dist.update(int(time.time() * 1000))


_MARKS: dict[str, object] = {}  # Beam's delegating distributions: each update goes to the running bundle's


def sum_pairs(pairs: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """Pairs of counts summed element-wise: the combiner of near dedup's graph state (directed edges, nodes
    breaking the star shape), a released band bucket's sides (released, run members) and the kept documents and
    tokens per mix column value. One function for the three since 2026-12-07 (they were near_dedup._totals,
    against_releases._sum_sides and a lambda in pipelines/build.py)."""
    first = second = 0
    for a, b in pairs:
        first += a
        second += b
    return first, second


@contextmanager
def _timed(add: Callable[[int], None]):
    """Time the block (wall clock, microseconds) and hand it to `add`, also when the block raises."""
    start = time.perf_counter()
    try:
        yield
    finally:
        add(int((time.perf_counter() - start) * 1e6))


class SetupTime:
    """A step's setup (models loaded, the extraction child started), in worker seconds: `setup/<stage>/time_us`.
    Timed in `setup` and reported by `report` in the first bundle: an update made in setup has no bundle to
    be reported with."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.micros = 0

    def timed(self):
        return _timed(self._add)

    def _add(self, micros: int) -> None:
        self.micros += micros

    def report(self) -> None:
        if self.micros:
            Metrics.counter(NAMESPACE, f"setup/{self.stage}/time_us").inc(self.micros)
            self.micros = 0


class StageCounters:
    """Counters and a wall-time accumulator for one stage, cached per reason."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.inp = Metrics.counter(NAMESPACE, f"{stage}/in")
        self.kept = Metrics.counter(NAMESPACE, f"{stage}/kept")
        self.micros = Metrics.counter(NAMESPACE, f"{stage}/time_us")
        self._dropped: dict[str, object] = {}

    def dropped(self, reason: str) -> None:
        counter = self._dropped.get(reason)
        if counter is None:
            counter = self._dropped[reason] = Metrics.counter(NAMESPACE, f"{self.stage}/dropped/{reason}")
        counter.inc()

    def timed(self):
        return _timed(self.micros.inc)
