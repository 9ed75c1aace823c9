"""Where a run's wall time went: the phases a user waits through, from measured timestamps (stats.json `timing`).

Why: the per-stage seconds (`stage_seconds`) are worker seconds summed over processes, a few seconds of a
run whose command took 20-30; the rest (start-up, the runner's shuffles, near dedup's rounds, writing,
finalizing) was nowhere. Every phase here is an interval between two measured instants, on the clock of the
machine that measured them (the driver's, or a worker's: the same clock on the local runner; a remote
runner's workers are as far off as their clocks are). Nothing is estimated: what no phase covers is `other`.

Pure: the driver gathers the instants (driver/job.py: execute, from Beam distributions pipelines.metrics.mark
records on the workers) and this turns them into the section.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

# The phases in the order they happen, with what each one holds (stats prints these words).
PHASES: dict[str, str] = {
    "startup_driver": "imports, recipe, inputs, output folder, job graph",
    "startup_workers": "runner and worker processes, their models, until the first record is read",
    "records": "read, url, precheck, extract, filters, decontamination, classifier scores, staging",
    "near_dedup_buckets": "LSH buckets and candidate edges, until near dedup's first round starts",
    "near_dedup_rounds": "large-star/small-star rounds, each until the next one starts",
    "near_dedup_confirm": "components, survivors, texts read back, confirmation",
    "writing": "tokenize; shard, ledger and dedup index parts",
    "finalizing": "manifest, stats.json, _staging removed, the runner's shutdown",
}
OTHER = "between the phases: the runner's scheduling and the shuffles no phase covers"

# The marks the workers record (pipelines.metrics.mark), each a Beam distribution of epoch milliseconds.
MARK_RECORDS_START = "records/start"
MARK_RECORDS_END = "records/end"
MARK_BUCKETS = "near_dedup_buckets/start"
MARK_ROUND = "near_dedup_round/{:02d}"  # the round's graph state is known: it starts
MARK_FINAL = "near_dedup_final"  # the graph after the last round is known
MARK_CONFIRM_END = "near_dedup_confirm/end"
MARK_WRITING_START = "writing/start"
MARK_WRITING_END = "writing/end"
MARK_FINALIZING = "finalizing/start"


def process_started() -> float:
    """When this process started, in epoch seconds: from /proc (Linux), so the interpreter's own start and
    every import count; elsewhere, when this module was first imported (run_pipeline imports it first)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])  # field 22, starttime, after the comm field
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        now = time.time()
        # The process's age on the boot clock (1/100 s), not /proc/stat's btime (whole seconds).
        return now - max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return _IMPORTED


_IMPORTED = time.time()


def _span(name: str, start: float | None, end: float | None) -> tuple[str, float, float] | None:
    return None if start is None or end is None else (name, start, end)


def wall_timing(*, started: float, submitted: float, ended: float,
                marks: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    """stats.json `timing` from the run's instants (epoch seconds): `started` (the process), `submitted` (the
    pipeline handed to the runner), `ended` (the driver done, just before it writes stats.json) and `marks`
    ({mark: (first, last)} as the workers recorded them).

    Each phase runs from its first measured instant to its last; a phase is counted only from where the one
    before it ended (the runner may interleave independent steps), and within [started, ended]. Near dedup's
    rounds are the intervals between consecutive rounds' starts (the last one until the final graph is known),
    so a round that shuffled nothing still shows what the runner spent on it. `other` is the wall time no
    phase covers."""
    first = {k: v[0] for k, v in marks.items()}
    last = {k: v[1] for k, v in marks.items()}
    rounds = sorted(k for k in marks if k.startswith(MARK_ROUND.split("{")[0]))
    round_starts = [first[k] for k in rounds]
    near_end = first.get(MARK_FINAL)
    records_start = first.get(MARK_RECORDS_START)
    spans = [
        ("startup_driver", started, submitted),
        _span("startup_workers", submitted, records_start),
        _span("records", records_start, last.get(MARK_RECORDS_END)),
        # Until the first round starts; with no round unrolled (a run of small inputs), until the final graph.
        _span("near_dedup_buckets", first.get(MARK_BUCKETS), round_starts[0] if round_starts else near_end),
        *[_span(f"near_dedup_round_{i + 1:02d}", s, e)
          for i, (s, e) in enumerate(zip(round_starts, [*round_starts[1:], near_end][:len(round_starts)],
                                         strict=True))],
        _span("near_dedup_confirm", near_end, last.get(MARK_CONFIRM_END)),
        _span("writing", first.get(MARK_WRITING_START), last.get(MARK_WRITING_END)),
        _span("finalizing", first.get(MARK_FINALIZING), ended),
    ]
    phases, cursor = [], started
    for name, start, end in (s for s in spans if s is not None):
        counted = max(0.0, min(end, ended) - max(start, cursor))
        phases.append({"phase": name, "seconds": round(counted, 3)})
        cursor = max(cursor, min(end, ended))
    wall = ended - started
    return {
        "clock": "wall seconds from the process's start; phases as measured, in order, not overlapping",
        "wall_seconds": round(wall, 3),
        "phases": phases,
        "other_seconds": round(max(0.0, wall - sum(p["seconds"] for p in phases)), 3),
    }


def distribution_marks(distributions: Iterable[tuple[str, int, int]]) -> dict[str, tuple[float, float]]:
    """{mark: (first, last)} in epoch seconds from (mark, min ms, max ms) of the workers' distributions."""
    out: dict[str, tuple[float, float]] = {}
    for name, low, high in distributions:
        a, b = out.get(name, (low / 1000, high / 1000))
        out[name] = (min(a, low / 1000), max(b, high / 1000))
    return out


def phase_label(name: str) -> str:
    """'near_dedup_round_03' -> 'near dedup round 3', 'startup_driver' -> 'start-up: driver'."""
    if name.startswith("near_dedup_round_"):
        return f"near dedup round {int(name.rsplit('_', 1)[1])}"
    if name.startswith("startup_"):
        return f"start-up: {name.removeprefix('startup_')}"
    return name.replace("near_dedup_", "near dedup: ").replace("_", " ")
