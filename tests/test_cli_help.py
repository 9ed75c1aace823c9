"""Help that explains, and the answers a newcomer gets to a slip: every command's --help, mistyped commands,
flags and values, --sample's range, and the one truthful line of `diff`, `release` and a second `mix`.

Commands run as a user runs them: `python -m tokenmill_cli ...` in its own process, output through pipes. The
runs are of the demo crawl and of a WARC written here: no shared data."""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tokenmill_cli
from demo.warc_writer import WarcWriter
from schemas.records import DROP_REASONS, REASONS, STAGES
from tests.test_pipeline import IN_MEMORY, run

REPO = Path(__file__).resolve().parents[1]


def tokenmill(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """The command in its own process, output through pipes, decoded as UTF-8."""
    return subprocess.run([sys.executable, "-m", "tokenmill_cli", *args], cwd=cwd, capture_output=True,
                          text=True, encoding="utf-8", env=os.environ | {"PYTHONIOENCODING": "utf-8"})


def _options(ap: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in ap._actions if not isinstance(a, argparse._HelpAction)]


def test_every_parser_describes_its_command_and_every_option(tmp_path):
    """Walked programmatically, so an option added without a help line (or with a default or valid values it
    does not state) fails here: each command has a description, an example in its epilog, and each option a
    help line naming its default (when it has one that means something) and its valid values."""
    parsers = tokenmill_cli.parsers()
    listed = re.findall(r"^  ([a-z-]+) ", tokenmill_cli.USAGE.split("commands:\n", 1)[1], re.M)
    assert set(parsers) == set(listed) and len(listed) == 15  # every command `tokenmill --help` names
    for name, build in parsers.items():
        ap = build()
        assert ap.prog == f"tokenmill {name}"
        assert ap.description and len(ap.description) > 80, name
        assert f"tokenmill {name}" in (ap.epilog or ""), f"{name}: no example in its epilog"
        for action in _options(ap):
            flag = "/".join(action.option_strings) or action.dest
            assert action.help and len(action.help) > 10, f"{name} {flag}: no help line"
            default = action.default
            if default not in (None, False, [], argparse.SUPPRESS):
                assert "%(default)s" in action.help or "default" in action.help, f"{name} {flag}: default unsaid"
            if action.choices is not None:
                listed = "%(choices)s" in action.help or all(c in (ap.epilog or "") for c in action.choices)
                assert listed, f"{name} {flag}: valid values unsaid"
        ap.format_help()  # every %(...)s in a help line expands


def test_every_command_answers_help_with_what_it_does_and_an_example():
    for name in tokenmill_cli.parsers():
        done = tokenmill(name, "--help")
        assert done.returncode == 0 and not done.stderr, (name, done.stderr)
        assert f"usage: tokenmill {name}" in done.stdout and "example" in done.stdout, name
    inspect = tokenmill("inspect", "-h").stdout
    assert "one of read, url, language_precheck, extract, filters, decontamination" in " ".join(inspect.split())
    assert all(reason in inspect for reason in REASONS if reason != "internal_error")
    assert "(default 5; 0 prints only the count" in " ".join(inspect.split())
    assert "which documents --sample picks: the same seed picks the same documents" in " ".join(inspect.split())
    top = tokenmill("--help").stdout
    assert "tokenmill COMMAND --help" in top


@pytest.mark.parametrize(("argv", "says"), [
    (["stat"], "tokenmill: unknown command 'stat'; did you mean 'stats'? (tokenmill --help lists the commands)"),
    (["frobnicate"], "tokenmill: unknown command 'frobnicate' (tokenmill --help lists the commands)"),
    (["run", "--ouput", "o", "--input", "x.warc.gz"], "tokenmill run: error: unknown flag --ouput; did you mean "
     "--output?"),
    (["run", "--input", "x.warc.gz", "--output", "o", "--ovewrite"], "tokenmill: unknown flag --ovewrite: neither "
     "tokenmill nor Beam knows it; did you mean --overwrite?"),
    (["select", "src", "--ouput", "o"], "tokenmill select: error: unknown flag --ouput; did you mean --output?"),
    (["report", "r", "--outptu", "r.html"], "tokenmill report: error: unknown flag --outptu; did you mean --output?"),
    (["release", "r", "--nme", "n", "--version", "1", "--to", "t"], "tokenmill release: error: unknown flag --nme; "
     "did you mean --name?"),
    (["inspect", "r", "--keept"], "tokenmill inspect: error: unknown flag --keept; did you mean --kept?"),
    (["inspect", "r", "--ouput"], "tokenmill inspect: error: unrecognized arguments: --ouput"),  # nothing close
    (["inspect", "r", "--stage", "filter"], "tokenmill inspect: error: argument --stage: invalid choice: 'filter'; "
     "did you mean 'filters'? (choose from " + ", ".join(f"'{s}'" for s in (*STAGES, "kept")) + ")"),
    (["inspect", "r", "--reason", "too_larg"], "tokenmill inspect: error: argument --reason: invalid choice: "
     "'too_larg'; did you mean 'too_large'? (choose from " + ", ".join(f"'{r}'" for r in REASONS) + ")"),
    (["inspect", "r", "--sample", "-1"], "tokenmill inspect: error: argument --sample: '-1' is not a count: give 0 "
     "or more (0 prints only the count)"),
    (["diff", "a", "b", "--sample", "-1"], "tokenmill diff: error: argument --sample: '-1' is not a count: give 0 "
     "or more (0 prints only the count)"),
])
def test_a_slip_is_answered_in_one_line_naming_what_was_meant(tmp_path, argv, says):
    done = tokenmill(*argv, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("tokenmill")]
    assert errors == [says], done.stderr
    assert all(ln.startswith(("usage:", " ", "tokenmill")) for ln in lines), done.stderr  # usage, then the line
    assert not done.stdout and not (tmp_path / "o").exists()


def _reason_literals() -> set[str]:
    """Every reason the code's stages return: literals handed to Decision or counted as dropped, filters'
    `return "reason", score`, the C4 page rules and Gopher's repetition table, the n-gram rules spelled out."""
    found: set[str] = set()
    for path in [*REPO.glob("filters/*.py"), *REPO.glob("pipelines/*.py"), *REPO.glob("ingest/*.py")]:
        text = path.read_text()
        found |= set(re.findall(r'Decision\(\s*STAGE_\w+,\s*"(\w+)"', text))
        found |= set(re.findall(r'dropped\("(\w+)"\)', text))
        found |= set(re.findall(r'return "(\w+)", ', text))
        found |= set(re.findall(r'\("rep_\w+", c\.\w+, "(\w+)"\)', text))
        for rules in re.findall(r"PAGE_RULES = \(([^)]*)\)", text):
            found |= set(re.findall(r'"(\w+)"', rules))
        if 'f"top_{n}_gram"' in text:  # gopher.py: n over 2..4 and 5..10
            found |= {f"top_{n}_gram" for n in (2, 3, 4)}
        if 'f"duplicated_{n}_n_grams"' in text:
            found |= {f"duplicated_{n}_n_grams" for n in range(5, 11)}
    return found


def test_the_reasons_inspect_accepts_are_the_reasons_the_stages_give(demo_run):
    literals = _reason_literals()
    assert len(literals) > 40 and {"too_large", "line_punct_ratio", "top_2_gram", "c4_lorem_ipsum"} <= literals
    assert literals <= set(REASONS), literals - set(REASONS)
    assert set(REASONS) - literals <= {"contaminated", "duplicate_of_release", "internal_error",
                                       "language_not_kept", "http_error", "http_status"}, set(REASONS) - literals
    assert set(DROP_REASONS) == set(STAGES)
    stats, _ = demo_run
    for stage, s in stats["stages"].items():  # a real run's reasons, each under the stage that gave it
        assert set(s["dropped"]) <= set(DROP_REASONS[stage]) | {"internal_error"}, (stage, s["dropped"])


@pytest.fixture(scope="module")
def demo_run(demo_crawl, tmp_path_factory):
    out = tmp_path_factory.mktemp("help") / "demo"
    return run(demo_crawl, out, *IN_MEMORY), out


def test_a_valid_stage_and_reason_select_and_sample_zero_prints_the_count_only(demo_run):
    _, out = demo_run
    done = tokenmill("inspect", str(out), "--stage", "read", "--reason", "http_error", "--sample", "1")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "2 matching documents, showing 1 (seed 1)\n"
    assert done.stdout.count("DROPPED at read: http_error") == 1
    done = tokenmill("inspect", str(out), "--dropped", "--sample", "0")
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "10 matching documents, showing 0 (seed 1)\n"
    # A reason tokenmill knows but this run never gave: no document, not an error.
    done = tokenmill("inspect", str(out), "--reason", "too_large")
    assert done.returncode == 0 and done.stderr == "0 matching documents, showing 0 (seed 1)\n"


@pytest.mark.parametrize(("flags", "says"), [
    (["--kept", "--stage", "filters"], "--kept with --stage filters matches nothing: a kept document's stage is "
                                       "'kept'"),
    (["--dropped", "--stage", "kept"], "--dropped with --stage kept matches nothing: a dropped document names the "
                                      "stage that dropped it"),
    (["--kept", "--reason", "gopher_short_doc"],
     "a kept document's reason is empty or 'contaminated' (flagged by decontamination): --reason gopher_short_doc "
     "matches no kept document"),
    (["--stage", "filters", "--reason", "exact_duplicate"], "stage filters never gives reason exact_duplicate (it is "
                                                            "given at exact_dedup)"),
])
def test_inspect_refuses_filters_that_contradict_each_other(demo_run, flags, says):
    """They printed '0 matching documents', as if the run had none."""
    _, out = demo_run
    done = tokenmill("inspect", str(out), *flags)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"tokenmill: {says}\n")


def test_inspect_id_says_it_takes_a_whole_id(demo_run):
    _, out = demo_run
    done = tokenmill("inspect", str(out), "--id", "51dd")
    assert (done.returncode, done.stderr) == (1, f"tokenmill: no document 51dd in {out} (--id takes a whole id: 32 "
                                                 "hex digits, as the ledger has it)\n")


def test_release_refuses_a_run_that_kept_no_document(tmp_path):
    """A crawl of one 404 page runs (one record, dropped at read) and its release is refused in one line,
    nothing written."""
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    with open(crawl / "only404.warc.gz", "wb") as f:
        w = WarcWriter(f)
        w.warcinfo()
        w.response("https://example.com/missing", b"<html><body>Not here</body></html>", status=404)
    with gzip.open(crawl / "only404.warc.gz") as f:
        assert b"404 Not Found" in f.read()
    stats = run([str(crawl / "only404.warc.gz")], tmp_path / "out", *IN_MEMORY)
    assert (stats["records"], stats["kept"]) == (1, 0)
    done = tokenmill("release", str(tmp_path / "out"), "--name", "empty", "--version", "1.0.0", "--to",
                     str(tmp_path / "rel"))
    assert done.returncode == 2 and not done.stdout
    assert done.stderr == (f"tokenmill: {tmp_path / 'out'}: the run kept no document (of 1 records read): nothing "
                           "to release\n")
    assert not (tmp_path / "rel").exists() and not list(tmp_path.glob("rel*"))


def test_a_second_mix_into_its_own_folder_says_so_and_not_wrote(demo_run, tmp_path):
    _, out = demo_run
    rel = tmp_path / "web-1.0.0"
    assert tokenmill("release", str(out), "--name", "web", "--version", "1.0.0", "--to", str(rel)).returncode == 0
    spec = tmp_path / "mix.toml"
    spec.write_text(f'name = "m"\ntotal_tokens = 2000\n[[sources]]\npath = "{rel}"\nweight = 1.0\n')
    first = tokenmill("mix", str(spec), "--to", str(tmp_path / "m"))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1].startswith(f"wrote {tmp_path / 'm'}: ")
    plan = first.stdout.splitlines()[-1].partition(": ")[2]
    again = tokenmill("mix", str(spec), "--to", str(tmp_path / "m"))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == (f"{tmp_path / 'm'} already holds this mixture (verified), nothing "
                                             f"written: {plan}")
    assert "wrote" not in again.stdout and "already holds" not in first.stdout


def test_diff_of_runs_that_agree_says_zero_without_an_empty_reason_list(demo_run):
    _, out = demo_run
    done = tokenmill("diff", str(out), str(out))
    assert done.returncode == 0, done.stderr
    assert f"kept by {out} only: 0\n" in done.stdout and "reasons: )" not in done.stdout
    assert "the other run's reasons" not in done.stdout


def test_diff_names_the_other_runs_reasons_when_there_are_some(demo_run, demo_crawl, tmp_path):
    _, out = demo_run
    strict = tmp_path / "strict.toml"
    strict.write_text('[filters]\norder = ["gopher_quality"]\n')
    run(demo_crawl, tmp_path / "strict", "--config", str(strict), *IN_MEMORY)
    done = tokenmill("diff", str(out), str(tmp_path / "strict"), "--sample", "0")
    assert done.returncode == 0, done.stderr
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith(f"kept by {out} only:")]
    assert re.fullmatch(rf"kept by {re.escape(str(out))} only: \d+ \(the other run's reasons: filters/gopher_\w+ "
                        r"\d+(, filters/gopher_\w+ \d+)*\)", line), line


def test_the_iterabledataset_example_is_in_one_place_and_the_other_points_to_it():
    readme = (REPO / "README.md").read_text()
    docstring = (REPO / "release" / "reader.py").read_text().split('"""')[1]
    example = "class TokenBatches(torch.utils.data.IterableDataset):"
    places = [p for p in [*REPO.glob("*.md"), *REPO.glob("docs/*.md"), *REPO.glob("release/*.py"),
                          *REPO.glob("mixing/*.py")] if example in p.read_text()]
    assert places == [REPO / "README.md"]
    section = 'From a crawl to a training loop'
    assert f'README.md, "{section}"' in docstring and "TokenBatches" in docstring
    body = readme.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    assert example in body
    assert "module docstring shows" not in readme
    assert f'`TokenBatches` in the next section,\n"{section}"' in readme


@pytest.mark.parametrize(("ids", "says"), [
    (["abc"], "tokenmill: not a token id: 'abc' (ids are whole numbers from 0, separated by spaces or commas)"),
    (["9906", "1.5"], "tokenmill: not a token id: '1.5' (ids are whole numbers from 0, separated by spaces or commas)"),
    (["--", "-5"], "tokenmill: not a token id: '-5' (ids are whole numbers from 0, separated by spaces or commas)"),
    (["999999999"], "tokenmill: token id 999999999 is not in cl100k_base (its ids run from 0 to 100276)"),
])
def test_decode_refuses_what_is_not_a_token_id(ids, says):
    """`decode abc` printed an empty line and `decode 9906 1.5` decoded ids 1 and 5, both with exit 0: the digits
    were taken out of whatever was given."""
    done = tokenmill("decode", "--tokenizer", "cl100k_base", *ids)
    assert (done.returncode, done.stdout, done.stderr.splitlines()) == (2, "", [says])


def test_decode_takes_ids_as_a_json_list_or_separated_by_commas():
    for ids in (["9906,1917"], ["[9906, 1917]"], ["9906", "1917"]):
        done = tokenmill("decode", "--tokenizer", "cl100k_base", *ids)
        assert (done.returncode, done.stdout) == (0, "Hello world\n"), (ids, done.stderr)
