"""The run's input files from --input (files, globs, folders, comma lists) and --input-list (files naming one
path a line), with their sizes where they come at no cost (the progress line's total), and the file the driver
lists them in for the pipeline. Moved from run_pipeline.py on 2026-12-07 (issue 35)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from apache_beam.io.filesystems import FileSystems

from driver.errors import UsageError

# The names of the files a folder given as --input holds that are read as crawls (compared lower-cased; Common
# Crawl's WET files end in .warc.wet.gz). Decided by name, not by content: it costs no read (a store's folder of
# 90,000 objects is not opened one by one before the run) and the same folder always gives the same inputs. A
# file or a glob named explicitly is read whatever its name.
CRAWL_SUFFIXES = (".warc", ".warc.gz", ".wet", ".wet.gz")


def listed_inputs(list_files: list[str], check: Callable[[str, str], None] | None = None
                  ) -> tuple[dict[str, int | None], list[str]]:
    """({path: size or None}, the local paths that are not there) from --input-list files. Lines with glob
    characters are matched; plain paths are taken as written (sizes only for local ones: 90,000 requests to a
    store would hold the driver for minutes before the run starts, and the run reports a file it cannot open
    anyway). A listed file that is not there is a file error of the run, on a local disk as on a store: a list
    of many files with a few missing is what --max-file-errors is for, and one rule for every store is the one
    a user can predict; the local ones, known at no cost, are also returned for a warning before the run.
    `check(list file, path)` is called on every line before it is used (check_worker_paths: a list file is read
    by the driver only, the paths it names by the workers)."""
    from outputs.run_files import read_input_list
    from storage.files import is_local

    out: dict[str, int | None] = {}
    missing: list[str] = []
    for list_file in list_files:
        try:
            lines = read_input_list(list_file)
        except Exception as exc:  # noqa: BLE001 - missing, unreadable, not UTF-8
            raise UsageError(f"cannot read --input-list {list_file}: {exc}") from exc
        if not lines:
            raise UsageError(f"--input-list {list_file} names no file")
        for line in lines:
            if check is not None:
                check(list_file, line)
            if any(c in line for c in "*?["):
                out.update(expand_inputs([line])[0])
            elif is_local(line) and os.path.isfile(line):
                out[line] = os.path.getsize(line)
            else:
                out[line] = None
                if is_local(line) and not os.path.exists(line):
                    missing.append(line)
    return out, sorted(set(missing))


def _match(pattern: str) -> list[Any]:
    try:
        return FileSystems.match([pattern])[0].metadata_list
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"cannot read input '{pattern}': {exc}") from exc


def _listing(pattern: str) -> tuple[list[Any], bool]:
    """(what Beam lists for `pattern`, whether it named a folder), one match per pattern where one answers it.
    A folder is a local directory with or without the slash, a path ending in /, or on a store (where a folder
    is a key prefix) a plain path that names no object but holds some; it is listed as its path with a
    trailing /."""
    from storage.files import is_local

    if not any(c in pattern for c in "*?["):
        if pattern.endswith("/") or (is_local(pattern) and os.path.isdir(pattern)):
            return _match(pattern.rstrip("/") + "/"), True
        if not is_local(pattern):
            matches = _match(pattern)
            if matches:
                return matches, False
            listed = _match(pattern + "/")
            return listed, bool(listed)
    return _match(pattern), False


def input_patterns(raws: list[str]) -> Iterator[str]:
    """The patterns of --input values: each value split at commas, blanks dropped."""
    for raw in raws:
        yield from filter(None, (p.strip() for p in raw.split(",")))


def expand_inputs(patterns: list[str]) -> tuple[dict[str, int], list[str]]:
    """Globs, comma lists and folders -> ({file path: size in bytes}, sorted by path, each file once; the files
    left out of folders). A folder, with or without a trailing /, means the files in it whose names end in one
    of CRAWL_SUFFIXES; the others (a README.md, notes) are left out, not read as crawls. A pattern matching
    nothing, or a folder without a crawl file, is an error. The sizes come with the match (the progress line's
    total), so no file is asked twice."""
    sizes: dict[str, int] = {}
    skipped: list[str] = []
    for pattern in input_patterns(patterns):
        listed, folder = _listing(pattern)
        if not folder:
            matches = listed
            if not matches:
                raise UsageError(f"input '{pattern}' matches no file")
        else:
            # One pass: a store's folder may list 90,000 objects (a membership test per object was n^2).
            # A key ending in / is a store's folder marker, not a file.
            matches, others = [], []
            for m in listed:
                if m.path.lower().endswith(CRAWL_SUFFIXES):
                    matches.append(m)
                elif not m.path.endswith("/"):
                    others.append(m.path)
            if not listed:
                raise UsageError(f"input '{pattern}' matches no file (no such folder, or an empty one)")
            if not matches:
                example = f"; {len(others)} other file(s), e.g. {sorted(others)[0]}" if others else ""
                raise UsageError(f"input folder '{pattern}' holds no crawl file (no name ends in "
                                 f"{', '.join(CRAWL_SUFFIXES)}; subfolders are not read: add "
                                 f"'{pattern.rstrip('/')}/**/*.warc.gz' for theirs{example})")
            skipped += others
        sizes.update((m.path, m.size_in_bytes) for m in matches)
    return dict(sorted(sizes.items())), sorted(set(skipped) - set(sizes))


def skipped_note(skipped: list[str]) -> str:
    """The one console line naming the files input folders held that are not read as crawls."""
    return (f"note: skipped {len(skipped)} file(s) in the input folder(s) not named as a crawl ("
            f"{', '.join(CRAWL_SUFFIXES)}), e.g. {skipped[0]}")


# The run's input files, one a line, written by the driver and read by the pipeline (pipelines/build.py);
# removed by the driver when the run has finished. Not in _staging/: the finalize step removes _staging/ and
# reads this list, and a runner may run that step again after a first attempt got that far.
INPUTS_FILE = "_inputs.txt"
