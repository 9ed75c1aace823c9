"""Record data on the terminal is shown, not obeyed: a real run over a WARC whose URLs, Content-Type, text and
file name carry ESC sequences (window title, clear screen), a bare CR, a C1 CSI and a bidi override; `tokenmill
inspect`, `diff`, `stats`, `report` and argparse's error lines (run as a user runs them) show them escaped, and
`--json` gives back the exact strings."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys

import pytest

import run_pipeline
import tokenmill_cli
from console.safe import shown
from demo.warc_writer import WarcWriter
from tests.test_pipeline import IN_MEMORY, run

TITLE, CLEAR = "\x1b]0;pwned\x07", "\x1b[2J"
HOSTILE = f"{TITLE}{CLEAR}\r\x9b\u202e"
HOSTILE_SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J\\r\\x9b\\u202e"
# What must never reach the terminal raw: C0 but the newline, DEL, C1, bidi embeddings/overrides/isolates/marks.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

URL = f"https://example.com/a{HOSTILE}b"
CT_URL = f"https://example.com/ct{HOSTILE}"
CONTENT_TYPE = f"text/x{CLEAR}\r\x9b\u202e; charset={TITLE}"
CONV_TEXT = f"tiny {HOSTILE} doc"
CUT_NAME = f"cut{TITLE}\u202e.warc.gz"  # no glob characters: the run's --input globs the folder


def _page(words: str) -> bytes:
    para = " ".join([f"An ordinary paragraph of English prose about {words} and the weather in spring."] * 3)
    return (f"<html><head><title>t</title></head><body><article><h1>{words}</h1><p>{para}</p>"
            f"<p>Look: {HOSTILE} here is more about {words}.</p><p>{para}</p></article></body></html>").encode()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Two runs of one crawl: `a` (the default recipe, every dropped text kept) keeps the documents, `b` (only
    German kept) drops them; the crawl's second file is cut short, so stats.json names it in a file error."""
    root = tmp_path_factory.mktemp("hostile")
    crawl = root / "crawl"
    crawl.mkdir()
    with open(crawl / "h.warc.gz", "wb") as f:
        w = WarcWriter(f, seed="hostile")
        w.warcinfo()
        w.response(URL, _page("gardens"))
        # HTTP headers are bytes: the writer encodes them as latin-1, so UTF-8 goes in as its latin-1 reading.
        w.response(CT_URL, b"<html><body>x</body></html>",
                   content_type=CONTENT_TYPE.encode("utf-8").decode("latin-1"))
        w.conversion("https://example.com/conv", CONV_TEXT)
    buf = io.BytesIO()
    w = WarcWriter(buf, seed="cut")
    w.response("https://example.com/cut", _page("rivers"))
    w.response("https://example.com/cut2", _page("mountains"))
    (crawl / CUT_NAME).write_bytes(buf.getvalue()[:-40])
    assert gzip.decompress((crawl / "h.warc.gz").read_bytes())  # a well-formed file beside the cut one
    (root / "a.toml").write_text("[output]\ndropped_text_sample_rate = 1.0\n")
    (root / "b.toml").write_text('[filters.language]\nkeep = ["de"]\n[output]\ndropped_text_sample_rate = 1.0\n')
    inputs = [str(crawl / "*.warc.gz")]
    run(inputs, root / "a", "--config", str(root / "a.toml"), *IN_MEMORY)
    run(inputs, root / "b", "--config", str(root / "b.toml"), *IN_MEMORY)
    return root


def tokenmill(*args: str) -> subprocess.CompletedProcess:
    """The command as a user runs it: its own process, output through pipes (bytes, decoded as UTF-8)."""
    done = subprocess.run([sys.executable, "-m", "tokenmill_cli", *args], cwd=run_pipeline.CHECKOUT,
                          capture_output=True, env=os.environ | {"PYTHONIOENCODING": "utf-8"})
    done.stdout, done.stderr = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    return done


def _no_raw(text: str) -> None:
    assert not RAW.search(text), RAW.findall(text)


def test_shown_escapes_controls_and_bidi_and_leaves_text_alone():
    assert shown(HOSTILE) == HOSTILE_SHOWN
    assert shown("\x00\x7f\x85\u061c\u200e\u200f\u202a\u2066\u2069\t\n") == (
        "\\x00\\x7f\\x85\\u061c\\u200e\\u200f\\u202a\\u2066\\u2069\\t\\n")
    assert shown("a\n\tb\rc", lines=True) == "a\n\tb\\rc"  # lines: layout kept, a bare CR still shown
    ordinary = "Grüße, 東京, مرحبا, emoji 🙂, a\\x1b typed out, café"
    assert shown(ordinary) == ordinary and shown(shown(HOSTILE)) == shown(HOSTILE)
    assert shown("file-\udcff.warc") == "file-\\udcff.warc"  # a non-UTF-8 file name from argv prints
    assert shown(3) == "3"


def test_inspect_shows_urls_details_and_text_escaped_and_json_is_exact(hostile):
    done = tokenmill("inspect", str(hostile / "a"), "--sample", "20")
    assert done.returncode == 0, done.stderr
    _no_raw(done.stdout + done.stderr)
    assert f"https://example.com/a{HOSTILE_SHOWN}b" in done.stdout
    assert f"https://example.com/ct{HOSTILE_SHOWN}" in done.stdout
    assert "DROPPED at read: not_html" in done.stdout and "detail: text/x\\x1b[2j\\r\\x9b\\u202e" in done.stdout
    # the excerpt is one line (whitespace, the CR included, collapsed); the rest shown escaped
    assert "tiny \\x1b]0;pwned\\x07\\x1b[2J \\x9b\\u202e doc" in done.stdout

    done = tokenmill("inspect", str(hostile / "a"), "--sample", "20", "--json")
    assert done.returncode == 0, done.stderr
    _no_raw(done.stdout)  # json.dumps writes every control (and, ASCII only, every bidi) character as \uXXXX
    rows = {r["url"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert rows[URL]["kept"] and rows[CT_URL]["content_type"] == CONTENT_TYPE
    assert rows["https://example.com/conv"]["text"] == CONV_TEXT  # the kept text, decoded from its tokens

    doc_id = rows[URL]["doc_id"]
    done = tokenmill("inspect", str(hostile / "a"), "--id", doc_id)
    assert done.returncode == 0 and f"https://example.com/a{HOSTILE_SHOWN}b" in done.stdout
    _no_raw(done.stdout + done.stderr)
    done = tokenmill("inspect", str(hostile / "a"), "--id", doc_id, "--json")
    assert json.loads(done.stdout.splitlines()[0])["url"] == URL


def test_diff_shows_the_other_runs_rows_escaped(hostile):
    done = tokenmill("diff", str(hostile / "a"), str(hostile / "b"), "--sample", "20")
    assert done.returncode == 0, done.stderr
    _no_raw(done.stdout + done.stderr)
    assert f"https://example.com/a{HOSTILE_SHOWN}b" in done.stdout and "DROPPED at " in done.stdout


def test_stats_shows_a_file_error_naming_a_hostile_file_escaped_and_json_is_exact(hostile):
    done = tokenmill("stats", str(hostile / "a"))
    assert done.returncode == 0, done.stderr
    _no_raw(done.stdout + done.stderr)
    assert f"file error: {hostile / 'crawl'}/cut\\x1b]0;pwned\\x07\\u202e.warc.gz at byte " in done.stdout
    done = tokenmill("stats", str(hostile / "a"), "--json")
    _no_raw(done.stdout)
    assert json.loads(done.stdout)["read"]["file_errors"][0]["file"] == str(hostile / "crawl" / CUT_NAME)


def test_the_report_escapes_html_and_shows_controls(hostile, tmp_path):
    out = tmp_path / "r.html"
    done = tokenmill("report", str(hostile / "a"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text("utf-8")
    _no_raw(page.replace("\n", ""))
    assert f"https://example.com/ct{HOSTILE_SHOWN}" in page


def test_error_lines_quoting_what_the_user_typed_are_escaped(hostile, tmp_path):
    cases = [
        (["stats", str(hostile / "a"), f"extra{CLEAR}"], "unrecognized arguments: extra\\x1b[2J"),
        ([f"stats{TITLE}"], "unknown command 'stats\\x1b]0;pwned\\x07'"),
        (["inspect", str(tmp_path / f"nope{HOSTILE}")], f"nope{HOSTILE_SHOWN}: no such folder"),
        (["inspect", str(hostile / "a"), "--min-score", f"x{CLEAR}"], "invalid float value: 'x\\x1b[2J'"),
        (["verify", str(tmp_path / f"nope{HOSTILE}")], f"nope{HOSTILE_SHOWN}: not a release"),
    ]
    for argv, expected in cases:
        done = tokenmill(*argv)
        assert done.returncode == 2, (argv, done.stderr)
        _no_raw(done.stdout + done.stderr)
        assert expected in done.stderr, (expected, done.stderr)


def test_decode_prints_the_text_exactly_into_a_pipe_and_escaped_on_a_terminal(hostile, capsys, monkeypatch):
    import pyarrow.compute as pc

    from outputs.reading import open_run, read_shards

    manifest = open_run(str(hostile / "a"))
    tokens = read_shards(str(hostile / "a"), manifest, ["url", "tokens"],
                         pc.field("url") == "https://example.com/conv").column("tokens")[0].as_py()
    ids = [str(t) for t in tokens[:-1]]  # without the appended end-of-text token
    done = tokenmill("decode", "--from", str(hostile / "a"), *ids)
    assert done.returncode == 0 and done.stdout == CONV_TEXT + "\n"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert tokenmill_cli.main(["decode", "--from", str(hostile / "a"), *ids]) == 0
    assert capsys.readouterr().out == f"tiny {HOSTILE_SHOWN} doc\n"


def test_the_runs_own_lines_show_a_hostile_file_name_escaped(hostile, tmp_path):
    """The end-of-run line naming a file that could not be read to the end, and a usage error quoting a path."""
    done = tokenmill("run", "--input", str(hostile / "crawl" / "*.warc.gz"), "--output", str(tmp_path / "o"),
                     *IN_MEMORY)
    assert done.returncode == 1, done.stderr
    _no_raw(done.stdout + done.stderr)
    assert f"could not read {hostile / 'crawl'}/cut\\x1b]0;pwned\\x07\\u202e.warc.gz to the end" in done.stderr
    done = tokenmill("run", "--input", str(tmp_path / f"none{HOSTILE}.warc.gz"), "--output", str(tmp_path / "p"))
    assert done.returncode == 2, done.stderr
    _no_raw(done.stdout + done.stderr)
    assert f"none{HOSTILE_SHOWN}.warc.gz" in done.stderr
    done = tokenmill("run", "--output", str(tmp_path / "q"), f"--ouput{CLEAR}")
    assert done.returncode == 2
    _no_raw(done.stdout + done.stderr)
