"""What the console says of a finished run's errors, and whether they fail it: records a step raised on
(--max-record-errors), input files not read to the end (--max-file-errors), stages that dropped more than
`output.warn_drop_share` of their input. Moved from run_pipeline.py on 2026-12-07 (issue 35)."""

from __future__ import annotations

from typing import Any


def drop_warnings(stats: dict[str, Any], share: float) -> list[str]:
    """One line per stage that dropped more than `share` of its input, naming the main reason."""
    out = []
    for stage, s in stats["stages"].items():
        dropped = sum(s["dropped"].values())
        if s["in"] and dropped / s["in"] > share:
            reason, n = max(s["dropped"].items(), key=lambda kv: kv[1])
            out.append(f"warning: stage '{stage}' dropped {dropped} of {s['in']} documents "
                       f"({dropped / s['in']:.1%}), mostly '{reason}' ({n}): check its recipe and dependencies")
    return out


def input_problems(stats: dict[str, Any], max_file_errors: float) -> tuple[list[str], bool]:
    """Console lines for the input files a run could not read to the end, and whether they fail the run: more
    than `max_file_errors` of the files failed, or no record was read at all."""
    read = stats.get("read", {})
    errors = read.get("file_errors", [])
    lines = [f"could not read {e['file']} to the end: at byte {e['offset']}: {e['error']}" for e in errors]
    files, failed = read.get("files", 0), len({e["file"] for e in errors})
    fails = False
    if not stats.get("records"):
        return [*lines, f"read no record from {files} input file(s): is this a WARC/WET crawl?"], True
    if failed and failed > max_file_errors * files:
        lines.append(f"{failed} of {files} input files could not be read to the end (--max-file-errors "
                     f"{max_file_errors:g} allows {int(max_file_errors * files)}); the outputs hold what was read")
        fails = True
    return lines, fails


def record_problems(stats: dict[str, Any], max_record_errors: float) -> tuple[list[str], bool]:
    """Console lines for the records a step raised on (stats.json `internal_errors`), and whether they fail the
    run: more than `max_record_errors` of the records."""
    errors = stats.get("internal_errors") or {}
    failed = sum(e["records"] for e in errors.values())
    if not failed:
        return [], False
    stage, worst = max(errors.items(), key=lambda item: (item[1]["records"], item[0]))
    records = stats.get("records", 0)
    fails = failed > max_record_errors * records
    line = (f"{failed} of {records} records made a step raise ({stage}: {worst['records']}, e.g. record "
            f"{worst['example']}); each is a ledger row with reason internal_error (tokenmill inspect OUT "
            f"--reason internal_error)")
    if fails:
        line += f"; --max-record-errors {max_record_errors:g} allows {int(max_record_errors * records)}"
    return [line], fails


def problems(stats: dict[str, Any], max_record_errors: float, max_file_errors: float | None = None
             ) -> list[tuple[list[str], bool]]:
    """(console lines, whether they fail the run) for the records a step raised on and, for a run that read
    input files (`max_file_errors` given: not select), the files it could not read."""
    out = [record_problems(stats, max_record_errors)]
    if max_file_errors is not None:
        out.append(input_problems(stats, max_file_errors))
    return out
