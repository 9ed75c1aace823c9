"""How a command ends when it is stopped from outside, met as a user meets it: a reader that closes the pipe
(`| head -1`) gets nothing on standard error and status 141 (console/endings.py says why 141). Runs are made from
the demo crawl; nothing here reads the shared data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import run_pipeline
from console.endings import BROKEN_PIPE
from tests.test_pipeline import IN_MEMORY, run

TOKENMILL = [sys.executable, "-m", "tokenmill_cli"]


@pytest.fixture(scope="module")
def two_runs(demo_crawl, tmp_path_factory) -> Path:
    """`a` (the default recipe) and `b` (German only, so it drops what `a` keeps), and a release of `a`."""
    root = tmp_path_factory.mktemp("endings")
    (root / "de.toml").write_text('[filters.language]\nkeep = ["de"]\n[output]\ndropped_text_sample_rate = 1.0\n')
    run(demo_crawl, root / "a", *IN_MEMORY)
    run(demo_crawl, root / "b", "--config", str(root / "de.toml"), *IN_MEMORY)
    subprocess.run([*TOKENMILL, "release", str(root / "a"), "--name", "demo", "--version", "1", "--to",
                    str(root / "rel")], cwd=run_pipeline.CHECKOUT, check=True, capture_output=True)
    return root


def pipe_head_has_left() -> int:
    """The write end of a real pipe into `head -1` that has read its one line and exited: what a command's output
    meets once `| head -1` has what it wanted. Made so before the command writes, so that the command meets the
    closed pipe whatever its output's size and timing."""
    read_end, write_end = os.pipe()
    head = subprocess.Popen(["head", "-1"], stdin=read_end, stdout=subprocess.DEVNULL)
    os.close(read_end)
    os.write(write_end, b"the line head wanted\n")
    assert head.wait(timeout=30) == 0
    return write_end


COMMANDS = {
    "stats": ["stats", "{a}"],
    "stats --json": ["stats", "{a}", "--json"],
    "inspect": ["inspect", "{a}", "--sample", "20"],
    "inspect --json": ["inspect", "{a}", "--json"],
    "inspect --id": ["inspect", "{a}", "--id", "{doc_id}"],
    "diff": ["diff", "{a}", "{b}"],
    "recipes": ["recipes"],
    "recipes --show": ["recipes", "--show", "fineweb"],
    "decode": ["decode", "--from", "{a}", "9906", "1917"],
    "report": ["report", "{a}", "-o", "{root}/report.html"],
    "verify": ["verify", "{root}/rel"],
    "help": ["--help"],
    "version": ["--version"],
    "run": ["run", "--input", "{crawl}", "--output", "{root}/run-into-a-closed-pipe", "--overwrite", *IN_MEMORY],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_printing_command_into_a_pipe_head_has_closed_is_quiet_and_exits_141(two_runs, demo_crawl, name):
    """Before: a BrokenPipeError traceback (or 'Exception ignored ... BrokenPipeError' from the interpreter's last
    flush) and exit 1 or 120. Standard error shows what the command says anyway (inspect's count of matching
    documents), never a traceback."""
    doc_id = pq.read_table(next((two_runs / "a" / "shards").glob("*.parquet")), columns=["doc_id"])["doc_id"][0].as_py()
    argv = [a.format(a=two_runs / "a", b=two_runs / "b", root=two_runs, doc_id=doc_id, crawl=demo_crawl[0])
            for a in COMMANDS[name]]
    alone = subprocess.run([*TOKENMILL, *argv], cwd=run_pipeline.CHECKOUT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    assert alone.returncode == 0, alone.stderr
    pipe = pipe_head_has_left()
    try:
        cut = subprocess.run([*TOKENMILL, *argv], cwd=run_pipeline.CHECKOUT, stdout=pipe, stderr=subprocess.PIPE,
                             text=True)
    finally:
        os.close(pipe)
    assert (cut.returncode, cut.stderr) == (BROKEN_PIPE, alone.stderr)


def test_decode_of_a_whole_shard_piped_into_head_prints_its_first_line_and_ends_quietly(two_runs):
    """`tokenmill decode --from RUN < ids | head -1`, a shell pipeline's two processes: the text (~1 MB) is
    more than the pipe holds, so decode is still writing when head leaves."""
    import json

    from tokenization.tokenizers import Tokenizer

    tokenizer = Tokenizer(json.loads((two_runs / "a" / "manifest.json").read_text())["tokenizer"]["name"], False)
    tokens = [t for row in pq.read_table(next((two_runs / "a" / "shards").glob("*.parquet")),
                                         columns=["tokens"])["tokens"].to_pylist() for t in row[:-1]]
    text = tokenizer.decode(tokens)
    ids = tokens * (1_000_000 // len(text) + 1)
    decode = subprocess.Popen([*TOKENMILL, "decode", "--from", str(two_runs / "a")], cwd=run_pipeline.CHECKOUT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-1"], stdin=decode.stdout, stdout=subprocess.PIPE)
    decode.stdout.close()  # head alone reads it now, as in a shell
    decode.stdin.write(" ".join(map(str, ids)).encode())
    decode.stdin.close()
    first, _ = head.communicate(timeout=120)
    err = decode.stderr.read()
    assert (decode.wait(timeout=120), err) == (BROKEN_PIPE, b"")
    assert first.decode() == text.split("\n", 1)[0] + "\n"
