"""A manifest (a run's, a release's, a mixture's) that lists a path outside its folder is refused before anything
is copied or read by it: `release`, `verify`, `mix`, `stats`/`inspect`/`report`, PackedReader, MixtureReader and
a run's `[dedup] against`, each in one line naming the entry (exit 2 for the commands)."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

import tokenmill_cli
from storage.paths import UnsafePathError, inside, unsafe_reason
from tests.test_pipeline import IN_MEMORY, run
from training.reader import PackedReader

BAD = ["../escape.parquet", "/tmp/tokenmill-abs/escape.parquet", "s3://other/x", "shards/../../x",
       "shards\\..\\..\\x", "shards/x\x00.parquet", "shards//x.parquet", "./shards/x.parquet", "C:/x.parquet",
       "shards/\x1b]0;pwned\x07.parquet"]


@pytest.fixture(scope="module")
def clean(demo_crawl, tmp_path_factory):
    """A finished run of the demo crawl, its release and a mixture of that release, untouched."""
    root = tmp_path_factory.mktemp("paths")
    run(demo_crawl[:2], root / "run", *IN_MEMORY)
    assert tokenmill_cli.main(["release", str(root / "run"), "--name", "web", "--version", "1.0.0", "--to",
                               str(root / "rel")]) == 0
    (root / "mix.toml").write_text(f'name = "m"\ntotal_tokens = 2000\n[[sources]]\npath = "{root / "rel"}"\n'
                                   "weight = 1.0\n")
    assert tokenmill_cli.main(["mix", str(root / "mix.toml"), "--to", str(root / "mix")]) == 0
    return root


def _tampered(src, dst, edit) -> None:
    """A copy of the folder `src` at `dst` whose manifest.json `edit(manifest)` changed."""
    shutil.copytree(src, dst)
    path = dst / "manifest.json"
    os.chmod(path, 0o644)
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _files(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, _dirs, names in os.walk(root) for n in names}


def _one_line(err: str, bad: str, where: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokenmill: "), err
    assert where in lines[0] and "refused" in lines[0], err
    assert "\x00" not in err and "\x1b" not in err and repr(bad) in lines[0], err  # the entry as a terminal shows it


def test_the_checker():
    assert inside("shards/part-00000-000.parquet", "m") == "shards/part-00000-000.parquet"
    assert inside("dedup_index/part-00001-000.parquet", "m")
    for bad in [*BAD, "", None, "shards/.", "shards/x/"]:
        assert unsafe_reason(bad), bad
        with pytest.raises(UnsafePathError, match="refused"):
            inside(bad, "m")


@pytest.mark.parametrize("key", ["shards", "dedup_index"])
def test_release_refuses_a_run_manifest_listing_a_path_outside_before_writing_anything(clean, tmp_path, capsys, key):
    for i, bad in enumerate(BAD):
        case = tmp_path / str(i)

        def edit(m, bad=bad):
            (m["shards"] if key == "shards" else m["dedup_index"]["parts"])[0]["path"] = bad

        _tampered(clean / "run", case / "run", edit)
        # What the copy would read is there: without the check, release wrote it outside its target.
        first = sorted((case / "run" / "shards").glob("*.parquet"))[0]
        shutil.copy(first, case / "escape.parquet")
        before = _files(case)
        capsys.readouterr()
        target = case / "out" / "rel"
        assert tokenmill_cli.main(["release", str(case / "run"), "--name", "web", "--version", "1.0.0", "--to",
                                   str(target)]) == 2, bad
        _one_line(capsys.readouterr().err, bad, f"{case / 'run'}/manifest.json {key}")
        assert _files(case) == before and not (case / "out").exists(), bad  # nothing written, in or out
    for argv in (["stats", str(case / "run")], ["inspect", str(case / "run")],
                 ["report", str(case / "run"), "-o", str(tmp_path / "r.html")]):
        assert tokenmill_cli.main(argv) == 2, argv
        _one_line(capsys.readouterr().err, BAD[-1], "refused")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("key", ["files", "dedup_index"])
def test_verify_the_reader_and_dedup_against_refuse_a_release_listing_a_path_outside(clean, tmp_path, capsys, key):
    from release.against import AgainstError, open_against
    from schemas.recipe import load_recipe

    for i, bad in enumerate(BAD[:4]):
        rel = tmp_path / str(i)

        def edit(m, bad=bad):
            (m["files"] if key == "files" else m["dedup_index"]["files"])[0]["path"] = bad

        _tampered(clean / "rel", rel, edit)
        capsys.readouterr()
        assert tokenmill_cli.main(["verify", str(rel)]) == 2, bad
        _one_line(capsys.readouterr().err, bad, f"{rel}/manifest.json {key}")
        manifest = json.loads((rel / "manifest.json").read_text())
        with pytest.raises(AgainstError, match="refused"):
            open_against(str(rel), load_recipe("default"), manifest["tokenizer"])
        if key == "files":
            with pytest.raises(ValueError, match=re.escape(f"{rel}/manifest.json files[0]: path {bad!r}")):
                PackedReader(str(rel), 16)


def test_mix_refuses_a_source_listing_a_path_outside(clean, tmp_path, capsys):
    for i, (folder, key) in enumerate([("rel", "files"), ("run", "shards")]):
        for j, bad in enumerate(BAD[:4]):
            source = tmp_path / f"{i}-{j}"
            _tampered(clean / folder, source, lambda m, bad=bad, key=key: m[key][0].update(path=bad))
            spec = tmp_path / "mix.toml"
            spec.write_text(f'name = "m"\ntotal_tokens = 2000\n[[sources]]\npath = "{source}"\nweight = 1.0\n')
            capsys.readouterr()
            assert tokenmill_cli.main(["mix", str(spec), "--to", str(tmp_path / "out")]) == 2, bad
            err = capsys.readouterr().err
            _one_line(err, bad, f"sources[0]: {source}/manifest.json {key}[0]")
            assert not (tmp_path / "out").exists() and not (tmp_path / "out.tmp-mix").exists()


@pytest.mark.parametrize("where", ["plan", "source"])
def test_a_mixture_listing_a_path_outside_is_refused_by_every_reader_of_it(clean, tmp_path, capsys, where):
    for i, bad in enumerate(BAD[:4]):
        mix = tmp_path / str(i)

        def edit(m, bad=bad):
            (m["plan"]["files"] if where == "plan" else m["sources"][0]["files"])[0]["path"] = bad

        _tampered(clean / "mix", mix, edit)
        label = "plan.files[0]" if where == "plan" else "sources[0].files[0]"
        for argv in (["verify", str(mix)], ["stats", str(mix)], ["report", str(mix), "-o", str(tmp_path / "r.html")],
                     ["mix", str(clean / "mix.toml"), "--to", str(mix)]):
            capsys.readouterr()
            assert tokenmill_cli.main(argv) == 2, (argv, bad)
            _one_line(capsys.readouterr().err, bad, f"{mix}/manifest.json {label}")
        with pytest.raises(ValueError, match="refused"):
            PackedReader(str(mix), 16)
        from mixing.reader import MixtureReader

        with pytest.raises(ValueError, match="refused"):
            MixtureReader(str(mix), 16)
    assert not (tmp_path / "r.html").exists()
