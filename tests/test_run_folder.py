"""An output folder and an input folder, as a user meets them through `tokenmill run` (a real subprocess).

A folder given as --input without its trailing / was read as one file: the run read nothing, exited 1, and left
an output folder that the next attempt called "a finished run". Now a folder, with or without the slash, means
the crawl files in it (by name: .warc, .warc.gz, .wet, .wet.gz; a README.md beside them is skipped with one note
line); a run that ends in an error leaves `_failed.json`, not a finished run, and the next run replaces it; and a
file --input-list names that is not there is a file error under --max-file-errors, as --help and the README say.
Only the demo crawl and files written here: no shared data.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_pipeline import IN_MEMORY

NOTE = "tokenmill: note: skipped {n} file(s) in the input folder(s) not named as a crawl (.warc, .warc.gz, .wet, " \
       ".wet.gz), e.g. {example}"


def command(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """A tokenmill command that runs no pipeline (no runner flags)."""
    return subprocess.run([sys.executable, "-m", "tokenmill_cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def tokenmill(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tokenmill_cli", *args, *IN_MEMORY], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def parts(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


@pytest.fixture
def crawl_folder(demo_crawl, tmp_path) -> Path:
    """tmp_path/crawl: the demo crawl's two WARC files, a README.md and notes.txt."""
    folder = tmp_path / "crawl"
    folder.mkdir()
    for path in demo_crawl:
        shutil.copy(path, folder)
    (folder / "README.md").write_text("# Crawl of 2026-11\nTwo files from the demo.\n")
    (folder / "notes.txt").write_text("re-crawl site1 next week\n")
    return folder


def test_a_folder_means_the_crawl_files_in_it_with_or_without_the_slash(crawl_folder, tmp_path):
    runs = {}
    for given, out in (("crawl", "plain"), ("crawl/", "slash")):
        done = tokenmill(tmp_path, "run", "--input", given, "--output", out)
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines() == [NOTE.format(n=2, example="crawl/README.md")]
        assert done.stdout.startswith("tokenmill: 18 records, 8 kept, ")
        stats = json.loads((tmp_path / out / "stats.json").read_text())
        assert stats["records"] == 18 and stats["read"]["files"] == 2 and stats["read"]["file_errors"] == []
        assert json.loads((tmp_path / out / "manifest.json").read_text())["inputs"] == [
            "crawl/demo-0.warc.gz", "crawl/demo-1.warc.gz"]
        runs[out] = parts(tmp_path / out)
    assert runs["plain"] == runs["slash"] and runs["plain"]


def test_a_folder_without_a_crawl_file_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.md").write_text("nothing here yet\n")
    done = tokenmill(tmp_path, "run", "--input", "notes", "--output", "out")
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["tokenmill: input folder 'notes' holds no crawl file (no name ends in .warc, "
                                        ".warc.gz, .wet, .wet.gz; subfolders are not read: add 'notes/**/*.warc.gz' "
                                        "for theirs; 1 other file(s), e.g. notes/README.md)"]
    assert not (tmp_path / "out").exists()
    missing = tokenmill(tmp_path, "run", "--input", "crawl_typo/", "--output", "out")
    assert (missing.returncode, missing.stderr.splitlines()) == (2, [
        "tokenmill: input 'crawl_typo/' matches no file (no such folder, or an empty one)"])
    assert not (tmp_path / "out").exists()


def test_a_failed_run_does_not_block_its_folder(crawl_folder, tmp_path):
    """A run that reads nothing exits 1 and marks its folder failed; the next attempt into the same folder runs
    without --overwrite and says it replaces it; the finished run it leaves is then protected as before."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.warc.gz").write_text("these are my notes, not a crawl\n" * 20)
    failed = tokenmill(tmp_path, "run", "--input", "mine", "--output", "out")
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1] == ("tokenmill: error: read no record from 1 input file(s): is this a "
                                              "WARC/WET crawl?")
    marker = json.loads((tmp_path / "out" / "_failed.json").read_text())
    assert marker["errors"][-1] == "read no record from 1 input file(s): is this a WARC/WET crawl?"
    assert not (tmp_path / "out" / "_started.json").exists()
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["records"] == 0  # kept for stats and inspect

    again = tokenmill(tmp_path, "run", "--input", "crawl", "--output", "out", "--config", "gopher")
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines() == [NOTE.format(n=2, example="crawl/README.md"),
                                         "tokenmill: note: replacing the run in out, which ended in an error"]
    assert not (tmp_path / "out" / "_failed.json").exists()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["inputs"] == ["crawl/demo-0.warc.gz", "crawl/demo-1.warc.gz"]
    assert manifest["recipe"]["name"] == "gopher"

    third = tokenmill(tmp_path, "run", "--input", "crawl", "--output", "out", "--quiet")
    assert third.returncode == 2
    assert third.stderr.splitlines() == ["tokenmill: output directory out holds a finished run; give --overwrite to "
                                         "replace it, or choose another directory"]


def test_a_listed_file_that_is_not_there_is_a_file_error_as_help_says(crawl_folder, tmp_path):
    """--help and the README say a missing --input-list file is a file error under --max-file-errors; a local
    one was refused before the run instead. Now it is a file error everywhere, named in a warning at start."""
    (tmp_path / "paths.txt").write_text("# the crawl\ncrawl/demo-0.warc.gz\ncrawl/demo-1*\ncrawl/demo-2.warc.gz\n")
    help_text = " ".join(tokenmill(tmp_path, "run", "--help").stdout.split())
    assert "a missing one, local or not, is a file error of the run (--max-file-errors)" in help_text
    warning = ("tokenmill: warning: --input-list names 1 file(s) that are not there, e.g. crawl/demo-2.warc.gz: each "
               "is a file error of the run (--max-file-errors)")
    strict = tokenmill(tmp_path, "run", "--input-list", "paths.txt", "--output", "out")
    assert strict.returncode == 1
    err = strict.stderr.splitlines()
    assert err[0] == warning
    assert err[1].startswith("tokenmill: error: could not read crawl/demo-2.warc.gz to the end: at byte 0: cannot open")
    assert err[2].startswith("tokenmill: error: 1 of 3 input files could not be read to the end (--max-file-errors 0 "
                             "allows 0)")
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["records"] == 18
    # What it kept is what could be read before it failed: stats says it failed; release and mix refuse it.
    error = ("1 of 3 input files could not be read to the end (--max-file-errors 0 allows 0); the outputs hold what "
             "was read")
    stats = command(tmp_path, "stats", "out")
    assert stats.returncode == 0 and stats.stdout.splitlines()[1].startswith(
        f"this run ended in an error and is not finished: {error}; fix its cause and run it again")
    as_json = json.loads(command(tmp_path, "stats", "out", "--json").stdout)
    assert as_json["failed"] == error and "failed" not in json.loads((tmp_path / "out" / "stats.json").read_text())
    report = command(tmp_path, "report", "out", "-o", "report.html")
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report.html").read_text()
    assert (f"<b>This run ended in an error and is not finished:</b> {html.escape(error)}; fix its cause and run it "
            "again.") in page
    assert "<li>crawl/demo-2.warc.gz at byte 0: cannot open" in page
    release = command(tmp_path, "release", "out", "--name", "web", "--version", "1", "--to", "rel")
    assert (release.returncode, release.stderr.splitlines()) == (2, [
        f"tokenmill: out: the run ended in an error, so it is not released: {error}; fix its cause and run it again"])
    assert not (tmp_path / "rel").exists()
    (tmp_path / "mix.toml").write_text('name = "m"\ntotal_tokens = 1000\n[[sources]]\npath = "out"\nweight = 1.0\n')
    mix = command(tmp_path, "mix", "mix.toml", "--to", "mixes/m")
    assert mix.returncode == 2 and mix.stderr.splitlines() == [
        f"tokenmill: mix.toml: sources[0] (out): the run there ended in an error: {error}; fix its cause and run it "
        "again"]
    select = tokenmill(tmp_path, "select", "out", "--output", "sel")  # its output would be a finished run
    assert (select.returncode, select.stderr.splitlines()) == (2, [
        f"tokenmill: out: the run ended in an error, so nothing is selected from it: {error}; fix its cause and run "
        "it again"])
    assert not (tmp_path / "sel").exists()
    # The failed run does not block the folder: the same list with a tolerance runs into it.
    tolerant = tokenmill(tmp_path, "run", "--input-list", "paths.txt", "--output", "out", "--max-file-errors", "0.5")
    assert tolerant.returncode == 0, tolerant.stderr
    err = tolerant.stderr.splitlines()
    assert err[:2] == [warning, "tokenmill: note: replacing the run in out, which ended in an error"]
    assert err[2].startswith("tokenmill: warning: could not read crawl/demo-2.warc.gz to the end")
    assert not (tmp_path / "out" / "_failed.json").exists()
