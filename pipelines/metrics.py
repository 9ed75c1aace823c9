"""Beam counters named `<stage>/in`, `<stage>/kept`, `<stage>/dropped/<reason>`: the live run report."""

from __future__ import annotations

import time
from contextlib import contextmanager

from apache_beam.metrics import Metrics

NAMESPACE = "tokenmill"


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

    @contextmanager
    def timed(self):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.micros.inc(int((time.perf_counter() - start) * 1e6))
