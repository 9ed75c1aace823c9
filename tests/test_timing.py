"""Where a run's time goes: stats.json `timing` (outputs/timing.py) and `tokenmill stats` printing it, on the demo
crawl the project writes itself (no shared data), as a user meets them: the tokenmill command in a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from outputs.timing import MARK_BUCKETS, MARK_FINAL, MARK_RECORDS_END, MARK_RECORDS_START, MARK_ROUND, wall_timing
from tests.test_pipeline import IN_MEMORY

REPO = Path(__file__).resolve().parents[1]


def tokenmill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tokenmill_cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def fineweb_run(demo_crawl, tmp_path_factory) -> tuple[Path, str]:
    """The demo crawl under the fineweb recipe: English only (a language_precheck stage drops the German and
    French pages) and near dedup per snapshot, with its rounds unrolled as a large run's are (a crawl this
    small unrolls none: tests/test_near_dedup.py). Returns the output folder and the run's summary
    line."""
    root = tmp_path_factory.mktemp("timing")
    out, recipe = root / "out", root / "fineweb-rounds.toml"
    recipe.write_text('base = "fineweb"\n[dedup.near]\nsmall_input_bytes = 0\n')
    done = tokenmill("run", *(a for p in demo_crawl for a in ("--input", p)), "--output", str(out),
                     "--config", str(recipe), *IN_MEMORY)
    assert done.returncode == 0, done.stderr
    return out, done.stdout.strip()


def test_a_fineweb_run_records_the_phases_it_waited_through_and_they_add_up_to_its_wall_time(fineweb_run):
    out, _summary = fineweb_run
    stats = json.loads((out / "stats.json").read_text())
    timing = stats["timing"]
    names = [p["phase"] for p in timing["phases"]]
    rounds = [n for n in names if n.startswith("near_dedup_round_")]
    # Every phase, in the order they happen; one entry per near dedup round the runner ran (fineweb: 12).
    assert names == ["startup_driver", "startup_workers", "records", "near_dedup_buckets", *rounds,
                     "near_dedup_confirm", "writing", "finalizing"]
    assert stats["near_dedup"]["rounds_unrolled"] == stats["near_dedup"]["max_rounds"] == 12
    assert rounds == [f"near_dedup_round_{i:02d}" for i in range(1, 13)]
    assert all(p["seconds"] >= 0 for p in timing["phases"]) and timing["other_seconds"] >= 0
    # The command's clock starts with its process: start-up holds Python's and Beam's imports, never nothing.
    assert timing["phases"][0]["seconds"] > 0.2 and timing["phases"][1]["seconds"] > 0
    wall = timing["wall_seconds"]
    assert stats["wall_seconds"] == wall
    assert sum(p["seconds"] for p in timing["phases"]) + timing["other_seconds"] == pytest.approx(wall, abs=0.01)
    assert timing["other_seconds"] < 0.5 * wall  # the phases hold most of the run, not the remainder
    # Worker seconds are apart from the wall phases: per stage, and per step's setup (the tokenizer, at least).
    assert set(stats["stage_seconds"]) >= {"read", "extract", "filters", "tokenize"}
    assert timing["setup_seconds"]["tokenize"] > 0


def test_the_timing_stays_out_of_what_the_determinism_tests_compare(fineweb_run):
    out, _summary = fineweb_run
    def keys(value) -> set[str]:
        if isinstance(value, dict):
            return set(value) | {k for v in value.values() for k in keys(v)}
        return {k for v in value for k in keys(v)} if isinstance(value, list) else set()

    manifest = keys(json.loads((out / "manifest.json").read_text()))
    assert not manifest & {"timing", "wall_seconds", "stage_seconds", "setup_seconds", "phases", "other_seconds"}


def _ends(line: str) -> list[int]:
    """Where each run of non-blank characters ends in `line`."""
    return [m.end() for m in re.finditer(r"\S+(?: \S+)*", line)]


def test_stats_prints_the_phases_and_aligned_columns_with_a_language_precheck_row(fineweb_run):
    out, summary = fineweb_run
    shown = tokenmill("stats", str(out))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    # The run's closing line and stats' first line are the same figures in the same style.
    assert summary == f"tokenmill: {lines[0]}"
    assert re.fullmatch(r"18 records, 5 kept, [\d,]+ tokens in \d+\.\d s", lines[0])
    header = lines[1]
    assert header.split() == ["stage", "in", "out", "dropped", "worker", "time", "reasons"]
    rows = lines[2:12]
    assert [r.split()[0] for r in rows] == ["read", "url", "language_precheck", "extract", "filters",
                                            "decontamination", "classifiers", "exact_dedup", "near_dedup", "tokenize"]
    # Numbers end where their header ends, on every row, the longest stage name included.
    number_ends = [header.index(h) + len(h) for h in ("in", "out", "dropped", "worker time")]
    for row in rows:
        assert _ends(row)[1:5] == number_ends, row
        if len(row) > header.index("reasons"):  # the reasons start in their column
            assert row[header.index("reasons") - 2 : header.index("reasons") + 1].startswith("  ")
            assert row[header.index("reasons")] != " "
    precheck = next(r for r in rows if r.startswith("language_precheck"))
    assert precheck.split()[1:4] == ["10", "7", "3"] and precheck.endswith("language_not_kept 3")

    start = lines.index(next(line for line in lines if line.startswith("time: ")))
    assert re.fullmatch(r"time: \d+\.\d s wall from the command's start, in phases as measured:", lines[start])
    table = lines[start + 1 : start + 11]
    labels = ["start-up: driver", "start-up: workers", "records", "near dedup: buckets", "near dedup: rounds",
              "near dedup: confirm", "writing", "finalizing", "other"]
    assert [re.split(r"\s{2,}", t.strip())[0] for t in table[1:]] == labels
    wall_end = table[0].index("wall") + len("wall")
    for t in table[1:]:
        assert re.search(r"\d+\.\d s", t) and t[:wall_end].endswith(" s"), t
    # Every round the graph holds runs; the row says how many the clustering needed (stats.json rounds_used).
    assert re.search(r"12 rounds run \(\d+ needed to converge\): ", table[5]), table[5]
    assert lines[start + 11].startswith("worker time is summed over the worker processes, not wall time")
    printed = [float(re.search(r"(\d+\.\d) s", t).group(1)) for t in table[1:]]
    wall = float(re.search(r"(\d+\.\d) s", lines[start]).group(1))
    assert sum(printed) == pytest.approx(wall, abs=0.1 * len(printed))  # each rounded to 0.1 s


def test_phases_clip_overlaps_and_leave_the_rest_as_other():
    """The pure core, on instants that do not follow each other neatly: a runner that interleaves steps (records
    still ending while near dedup's buckets start), a run without near dedup, a round after the final mark."""
    t = 1000.0
    marks = {MARK_RECORDS_START: (t + 3, t + 3.5), MARK_RECORDS_END: (t + 4, t + 6), MARK_BUCKETS: (t + 5, t + 5),
             MARK_ROUND.format(0): (t + 7, t + 7), MARK_ROUND.format(1): (t + 8, t + 8), MARK_FINAL: (t + 10, t + 10)}
    timing = wall_timing(started=t, submitted=t + 1, ended=t + 12, marks=marks)
    seconds = {p["phase"]: p["seconds"] for p in timing["phases"]}
    assert seconds == {"startup_driver": 1, "startup_workers": 2, "records": 3, "near_dedup_buckets": 1,
                       "near_dedup_round_01": 1, "near_dedup_round_02": 2}
    assert timing["wall_seconds"] == 12 and timing["other_seconds"] == 2
    # A run of small inputs unrolls no round: its buckets last until the final graph is known.
    no_rounds = {k: v for k, v in marks.items() if not k.startswith(MARK_ROUND.split("{")[0])}
    seconds = {p["phase"]: p["seconds"] for p in wall_timing(started=t, submitted=t + 1, ended=t + 12,
                                                             marks=no_rounds)["phases"]}
    assert seconds == {"startup_driver": 1, "startup_workers": 2, "records": 3, "near_dedup_buckets": 4}
    plain = wall_timing(started=t, submitted=t + 1, ended=t + 4, marks={MARK_RECORDS_START: (t + 2, t + 2)})
    assert [p["phase"] for p in plain["phases"]] == ["startup_driver", "startup_workers"]
    assert plain["other_seconds"] == 2
