"""Mixtures: `tokenmill mix` over two real releases, the stream PackedReader reads from it (checked against the
releases' own shards), verify, report, and the specs that must stop the mix."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tomllib
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tokenmill_cli
from mixing.plan import targets
from mixing.spec import SourceSpec, SpecError, parse_spec
from mixing.where import WhereError, parse_where
from release.publish import release
from schemas.tables import shard_schema
from training.reader import PackedReader

FINEWEB2 = {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}  # FineWeb-2's rehydration table


def _copies(cluster_size: int) -> int:
    return FINEWEB2[max(k for k in FINEWEB2 if k <= cluster_size)]


@pytest.fixture(scope="module")
def releases(runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    release(str(runs / "fw"), "web", "1.0.0", str(root / "web-1.0.0"))
    release(str(runs / "default"), "other", "1.0.0", str(root / "other-1.0.0"))
    return root


def _docs(release_dir) -> list[dict]:
    manifest = json.loads((release_dir / "manifest.json").read_text())
    return [r for f in manifest["files"] for r in pq.read_table(release_dir / f["path"], columns=[
        "language", "token_count", "cluster_size", "tokens"]).to_pylist()]


def _spec(path, releases, total: int, seed: int = 0, **extra) -> str:
    lines = [f'name = "m"\ntotal_tokens = {total}\nseed = {seed}']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    lines.append(f'[[sources]]\npath = "{releases / "web-1.0.0"}"\nweight = 0.7\nwhere = "language = \'en\'"\n'
                 "[sources.repeat_by_cluster_size]\n" + "".join(f"{k} = {v}\n" for k, v in FINEWEB2.items()))
    lines.append(f'[[sources]]\npath = "{releases / "other-1.0.0"}"\nweight = 0.3\nwhere = "token_count < 1500"\n')
    path.write_text("\n".join(lines))
    return str(path)


@pytest.fixture(scope="module")
def mixed(releases, tmp_path_factory):
    """A mixture of the two releases: web's English documents with FineWeb-2's repeat table at 0.7, other's
    documents under 1,500 tokens at 0.3, for ~2.5 passes over web's selection."""
    root = tmp_path_factory.mktemp("mix")
    web = [d for d in _docs(releases / "web-1.0.0") if d["language"] == "en"]
    pool = sum(d["token_count"] * _copies(d["cluster_size"]) for d in web)
    total = int(pool * 2.5 / 0.7)
    spec = _spec(root / "mix.toml", releases, total)
    assert tokenmill_cli.main(["mix", spec, "--to", str(root / "m")]) == 0
    return root, total


def test_the_manifest_names_sources_weights_epochs_and_copies(mixed, releases):
    root, total = mixed
    manifest = json.loads((root / "m" / "manifest.json").read_text())
    assert manifest["kind"] == "mixture" and manifest["seed"] == 0 and manifest["total_tokens"] == total
    web, other = manifest["sources"]
    assert (web["label"], other["label"]) == ("web-1.0.0", "other-1.0.0")
    for s, folder in ((web, "web-1.0.0"), (other, "other-1.0.0")):
        assert s["manifest_sha256"] == hashlib.sha256((releases / folder / "manifest.json").read_bytes()).hexdigest()
    # What the releases hold, counted here from their shards.
    web_docs = [d for d in _docs(releases / "web-1.0.0") if d["language"] == "en"]
    other_docs = [d for d in _docs(releases / "other-1.0.0") if d["token_count"] < 1500]
    assert web["documents"] == len(web_docs) and other["documents"] == len(other_docs)
    assert web["copies"] == {str(k): v for k, v in sorted(Counter(_copies(d["cluster_size"]) for d in web_docs)
                                                                 .items())}
    assert len(web["copies"]) >= 2, "the near-deduplicated release has clusters to rehydrate"
    assert web["pool_tokens"] == sum(d["token_count"] * _copies(d["cluster_size"]) for d in web_docs)
    assert web["repeated_tokens_per_epoch"] == web["pool_tokens"] - sum(d["token_count"] for d in web_docs)
    assert other["pool_tokens"] == sum(d["token_count"] for d in other_docs)
    assert [web["target_tokens"], other["target_tokens"]] == targets([0.7, 0.3], total)
    for s in (web, other):
        assert 0 <= s["planned_tokens"] - s["target_tokens"] < max(d["token_count"] for d in web_docs + other_docs)
        assert s["epochs"] == pytest.approx(s["planned_tokens"] / s["pool_tokens"], abs=1e-4)
        assert sum(s["tokens_by_epoch"]) == s["planned_tokens"] and s["full_epochs"] == int(s["epochs"])
    assert 2.4 < web["epochs"] < 2.6
    comp = manifest["composition"]
    assert comp["by_source"] == {"web-1.0.0": web["planned_tokens"], "other-1.0.0": other["planned_tokens"]}
    assert sum(comp["by_language"].values()) == sum(comp["by_epoch"]) == manifest["plan"]["tokens"]
    assert comp["by_language"]["en"] >= web["planned_tokens"]


def _documents(tokens: np.ndarray, eos: int) -> list[tuple]:
    """The stream split after each end-of-text token (the last, cut one included)."""
    ends = np.flatnonzero(tokens == eos) + 1
    return [tuple(d) for d in np.split(tokens, ends) if len(d)]


def test_the_stream_holds_each_document_as_often_as_planned(mixed, releases):
    """Read whole, the stream is the budget within one sequence; every document in it is one the sources
    select, as many times as its copies x epochs; each source's share of the tokens is within 1 % of its
    weight, and every quarter of the stream holds both in about their proportions (shuffled together)."""
    root, total = mixed
    seq = 512
    reader = PackedReader(str(root / "m"), seq)
    assert type(reader).__name__ == "MixtureReader"
    # release/reader.py reads releases and runs only (it imports nothing of mixing/): a mixture is refused there
    # in one line, not read as a folder without shards.
    from release.reader import PackedReader as ReleaseReader

    with pytest.raises(ValueError, match=r"holds a mixture, not a release or run: open it with training\.reader"):
        ReleaseReader(str(root / "m"), seq)
    sequences, quarters = [], []
    for s in reader:
        sequences.append(s)
        if len(sequences) % (reader.sequences // 4) == 0:
            quarters.append(reader.tokens_by_source)
    assert all(len(s) == seq + 1 for s in sequences)
    assert len(sequences) == total // (seq + 1) and total - len(sequences) * (seq + 1) < seq + 1
    shares = reader.tokens_by_source
    assert sum(shares.values()) == len(sequences) * (seq + 1)
    for label, weight in (("web-1.0.0", 0.7), ("other-1.0.0", 0.3)):
        assert abs(shares[label] / sum(shares.values()) / weight - 1) < 0.01, shares
    previous = dict.fromkeys(shares, 0)
    for q in quarters[:4]:
        part = {k: q[k] - previous[k] for k in q}
        # ~100 documents of heavy-tailed lengths a quarter: shuffled, not in blocks of one source
        assert abs(part["web-1.0.0"] / sum(part.values()) / 0.7 - 1) < 0.15, part
        previous = q
    manifest = json.loads((root / "m" / "manifest.json").read_text())
    eos = manifest["tokenizer"]["eos_id"]
    seen = Counter(_documents(np.concatenate(sequences), eos))
    web, other = manifest["sources"]
    low, high = Counter(), Counter()
    for d in _docs(releases / "web-1.0.0"):
        if d["language"] == "en":
            c = _copies(d["cluster_size"])
            low[tuple(d["tokens"])] += c * web["full_epochs"]
            high[tuple(d["tokens"])] += c * (web["full_epochs"] + 1)
    for d in _docs(releases / "other-1.0.0"):
        if d["token_count"] < 1500:
            low[tuple(d["tokens"])] += other["full_epochs"]
            high[tuple(d["tokens"])] += other["full_epochs"] + 1
    # Pieces that are no source document: the stream's last document (cut at the budget) and each source's one
    # document cut to its target, which runs on into the next document (no end-of-text between them).
    cut = [d for d in seen if d not in high]
    heads = {d[:8] for d in high}
    assert len(cut) <= 5 and all(d[:8] in heads for d in cut), "nothing foreign, only documents cut short"
    assert all(seen[d] <= high[d] for d in seen if d in high)
    short = [d for d in low if seen[d] < low[d]]
    assert len(short) <= 5, "only the documents cut short or planned after the budget's end fall short"
    rehydrated = [d for d in _docs(releases / "web-1.0.0") if d["language"] == "en" and d["cluster_size"] >= 2]
    missing = [(seen[tuple(d["tokens"])], _copies(d["cluster_size"]) * web["full_epochs"]) for d in rehydrated
               if seen[tuple(d["tokens"])] < _copies(d["cluster_size"]) * web["full_epochs"]]
    assert rehydrated and len(missing) <= len(short), missing
    order = _documents(np.concatenate(sequences), eos)
    adjacent = sum(a == b for a, b in zip(order, order[1:], strict=False))
    # A random order puts two of a document's m copies side by side sum(m (m - 1)) / N times on average; copies
    # placed back to back would make sum(m - 1) pairs.
    chance = sum(m * (m - 1) for m in seen.values()) / len(order)
    back_to_back = sum(m - 1 for m in seen.values())
    assert adjacent <= 2 * chance + 5 < back_to_back / 4, (adjacent, chance, back_to_back)


def test_ranks_are_disjoint_and_resume_is_exact(mixed):
    root, total = mixed
    path, seq = str(root / "m"), 256
    whole = list(PackedReader(path, seq))
    ranks = [PackedReader(path, seq, rank=r, world_size=3) for r in range(3)]
    streams = [list(r) for r in ranks]
    assert len({len(s) for s in streams}) == 1 and len(streams[0]) == ranks[0].sequences == len(whole) // 3
    assert ranks[0].dropped_sequences == len(whole) - 3 * len(streams[0])
    joined = [s for stream in streams for s in stream]
    assert all(np.array_equal(a, b) for a, b in zip(joined, whole, strict=False))
    reader = PackedReader(path, seq, rank=1, world_size=3)
    it = iter(reader)
    head = [next(it) for _ in range(len(streams[1]) // 3)]
    state = json.loads(json.dumps(reader.state_dict()))  # as a checkpoint would store it
    resumed = PackedReader(path, seq, rank=1, world_size=3)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(head) + len(rest) == len(streams[1])
    assert all(np.array_equal(a, b) for a, b in zip(head + rest, streams[1], strict=True))
    assert resumed.tokens_by_source == ranks[1].tokens_by_source
    # In batches: the same sequences; a state taken between batches resumes exactly.
    batched = PackedReader(path, seq, rank=1, world_size=3)
    blocks = batched.batches(7)
    first = next(blocks)
    state = batched.state_dict()
    resumed = PackedReader(path, seq, rank=1, world_size=3)
    resumed.load_state_dict(state)
    rows = np.concatenate([first, *resumed.batches(7)])
    assert first.shape == (7, seq + 1) and np.array_equal(rows, np.stack(streams[1]))
    release_dir = json.loads((root / "m" / "manifest.json").read_text())["sources"][0]["path"]
    plain = PackedReader(release_dir, seq, seed=2)
    assert np.array_equal(np.concatenate(list(plain.batches(4))), np.stack(list(PackedReader(release_dir, seq,
                                                                                            seed=2))))
    with pytest.raises(ValueError, match="rank=1"):
        PackedReader(path, seq, rank=0, world_size=3).load_state_dict(state)
    with pytest.raises(ValueError, match="mixed with seed 0"):
        PackedReader(path, seq, seed=5)


def test_a_rank_decodes_only_the_windows_of_its_range(mixed, releases, tmp_path):
    """With small shuffle windows, rank 0 of 4 decodes the row groups of about a quarter of the plan; one
    mix with the same spec writes the same plan bytes; another seed another order with the same shares."""
    root, total = mixed
    spec = _spec(tmp_path / "w.toml", releases, total, window_tokens=30_000)
    assert tokenmill_cli.main(["mix", spec, "--to", str(tmp_path / "w")]) == 0
    again = _spec(tmp_path / "w2.toml", releases, total, window_tokens=30_000)
    assert tokenmill_cli.main(["mix", again, "--to", str(tmp_path / "w2")]) == 0
    plans = [json.loads((tmp_path / d / "manifest.json").read_text())["plan"] for d in ("w", "w2")]
    assert plans[0]["windows"] > 8 and plans[0]["files"] == plans[1]["files"]
    whole = PackedReader(str(tmp_path / "w"), 256)
    all_units = list(whole)
    rank0 = PackedReader(str(tmp_path / "w"), 256, rank=0, world_size=4)
    assert len(list(rank0)) == len(all_units) // 4
    assert len(rank0.read_log) < 0.4 * len(whole.read_log)
    other = _spec(tmp_path / "s.toml", releases, total, seed=1, window_tokens=30_000)
    assert tokenmill_cli.main(["mix", other, "--to", str(tmp_path / "s")]) == 0
    reseeded = PackedReader(str(tmp_path / "s"), 256)
    assert not np.array_equal(next(iter(reseeded)), all_units[0])
    list(reseeded)
    shares = reseeded.tokens_by_source
    assert abs(shares["web-1.0.0"] / sum(shares.values()) / 0.7 - 1) < 0.01


def test_verify_and_a_changed_source(mixed, releases, tmp_path, capsys):
    root, total = mixed
    copy = tmp_path / "m"
    shutil.copytree(root / "m", copy)
    assert tokenmill_cli.main(["verify", str(copy)]) == 0
    # The same mix again is a checked no-op; another spec into the folder is refused.
    capsys.readouterr()
    assert tokenmill_cli.main(["mix", str(root / "mix.toml"), "--to", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "already holds this mixture (verified), nothing written" in out and "wrote" not in out
    other = _spec(tmp_path / "other.toml", releases, total + 1)
    assert tokenmill_cli.main(["mix", other, "--to", str(copy)]) == 2
    assert "already holds mixture m of another spec" in capsys.readouterr().err
    plan = next((copy / "plan").glob("*.parquet"))
    data = bytearray(plan.read_bytes())
    data[len(data) // 2] ^= 0xFF
    plan.write_bytes(bytes(data))
    capsys.readouterr()
    assert tokenmill_cli.main(["verify", str(copy)]) == 1
    assert "sha256 mismatch" in capsys.readouterr().out
    # A source re-released in place (its manifest changed): the mixture no longer describes it.
    moved = tmp_path / "rel"
    shutil.copytree(releases, moved)
    spec = _spec(tmp_path / "x.toml", moved, 100_000)
    assert tokenmill_cli.main(["mix", spec, "--to", str(tmp_path / "x")]) == 0
    manifest = moved / "other-1.0.0" / "manifest.json"
    os.chmod(manifest, 0o644)
    manifest.write_text(manifest.read_text().replace('"version": "1.0.0"', '"version": "1.0.1"'))
    capsys.readouterr()
    assert tokenmill_cli.main(["verify", str(tmp_path / "x")]) == 1
    assert "source other-1.0.0" in capsys.readouterr().out
    with pytest.raises(ValueError, match="changed since the mix"):
        PackedReader(str(tmp_path / "x"), 128)


def test_bad_specs_stop_the_mix_with_one_line(releases, tmp_path, capsys):
    web, other = releases / "web-1.0.0", releases / "other-1.0.0"
    foreign = tmp_path / "o200k"  # the same release as another tokenizer would have written it
    shutil.copytree(other, foreign)
    os.chmod(foreign / "manifest.json", 0o644)
    m = json.loads((foreign / "manifest.json").read_text())
    m["tokenizer"] = m["tokenizer"] | {"name": "o200k_base", "vocab_sha256": "0" * 64}
    (foreign / "manifest.json").write_text(json.dumps(m))

    def source(path, weight, extra=""):
        return f'[[sources]]\npath = "{path}"\nweight = {weight}\n{extra}'

    cases = {
        "weights sum to 0.9": source(web, 0.7) + source(other, 0.2),
        "unknown column 'qualty_score'": source(web, 0.5, 'where = "qualty_score >= 0.5"\n') + source(other, 0.5),
        "sources of different tokenizers": source(web, 0.5) + source(foreign, 0.5),
        "no release or finished run there": source(web, 0.5) + source(tmp_path / "releases" / "nope", 0.5),
        "no documents selected (where 'token_count < 0')": source(web, 0.5) + source(
            other, 0.5, 'where = "token_count < 0"\n'),
        "column language holds strings, compared with 3": source(web, 1.0, 'where = "language = 3"\n'),
        "has no key 1": source(web, 1.0, "[sources.repeat_by_cluster_size]\n2 = 2\n"),
    }
    cases = {k: ('total_tokens = 1000\n', v) for k, v in cases.items()}
    cases["give it a smaller weight"] = ("total_tokens = 100_000_000_000_000\n", source(web, 1.0))
    for expected, (total, body) in cases.items():
        spec = tmp_path / "bad.toml"
        spec.write_text(f'name = "bad"\n{total}{body}')
        capsys.readouterr()
        assert tokenmill_cli.main(["mix", str(spec), "--to", str(tmp_path / "out")]) == 2, expected
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("tokenmill: ") and expected in err, (expected, err)
        assert not (tmp_path / "out").exists()


def test_a_small_source_repeats_with_a_warning_that_stats_and_the_report_show(releases, tmp_path, capsys):
    from outputs.browser import render
    from tests.conftest import require_chromium

    spec = tmp_path / "small.toml"
    spec.write_text(f'name = "small"\ntotal_tokens = 400000\nwarn_epochs = 3\n'
                    f'[[sources]]\npath = "{releases / "web-1.0.0"}"\nweight = 0.8\n'
                    f'[[sources]]\npath = "{releases / "other-1.0.0"}"\nname = "tiny"\nweight = 0.2\n'
                    'where = "token_count < 120"\n')
    assert tokenmill_cli.main(["mix", str(spec), "--to", str(tmp_path / "m")]) == 0
    out = capsys.readouterr()
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    tiny = manifest["sources"][1]
    assert tiny["label"] == "tiny" and tiny["epochs"] > 3
    assert manifest["warnings"] == [w.removeprefix("tokenmill: warning: ") for w in out.err.splitlines()]
    assert f"tiny repeats {tiny['epochs']:.2f} epochs, above warn_epochs = 3" in out.err
    assert tokenmill_cli.main(["stats", str(tmp_path / "m")]) == 0
    printed = capsys.readouterr().out
    assert "  tiny: weight 0.2 -> 80,000 tokens (20.00%)" in printed and "warning: tiny repeats" in printed
    assert tokenmill_cli.main(["inspect", str(tmp_path / "m")]) == 2
    assert "is a mixture, not a run's output folder" in capsys.readouterr().err
    require_chromium()
    assert tokenmill_cli.main(["report", str(tmp_path / "m"), "-o", str(tmp_path / "r.html")]) == 0
    dom, console = render(str(tmp_path / "r.html"), screenshot=str(tmp_path / "r.png"))
    assert not console, console
    for title in ("Planned tokens by source", "Tokens by language", "Tokens by topic", "Tokens by epoch"):
        assert title in dom
    assert "tiny repeats" in dom and dom.count('class="bar"') >= 6
    assert (tmp_path / "r.png").stat().st_size > 20_000


# --- pure cores ---------------------------------------------------------------------------------------------

def test_where_turns_into_an_arrow_filter():
    schema = shard_schema(["quality_score"])
    table = pa.table({"language": ["en", "de", None, "en"], "quality_score": [0.9, 0.8, 0.7, None],
                      "topic": ["a", "b", "c", "d"], "cluster_size": [1, 5, 200, 2]})

    def rows(text: str) -> list[int]:
        expr, _ = parse_where(text, schema)
        return table.append_column("i", pa.array(range(4))).filter(expr).column("i").to_pylist()

    assert rows("language = 'en' AND quality_score >= 0.5") == [0]
    assert rows("language != 'en'") == [1]  # null is not != 'en' (SQL)
    assert rows("topic IN ('a', 'c') OR cluster_size > 100") == [0, 2]
    assert rows("language NOT IN ('de')") == [0, 3]
    assert rows("NOT (cluster_size >= 5) AND quality_score IS NOT NULL") == [0]
    assert rows("language IS NULL") == [2]
    assert parse_where("language = 'en' AND quality_score > 0", schema)[1] == {"language", "quality_score"}
    for bad, message in (("langauge = 'en'", "unknown column"), ("language = 'en' AND", "expected a column"),
                         ("cluster_size > 'x'", "holds numbers"), ("tokens = 1", "cannot be compared"),
                         ("language = 'en' quality_score", "unexpected"), ("language ~ 'e'", "cannot read")):
        with pytest.raises(WhereError, match=message):
            parse_where(bad, schema)


def test_the_repeat_table_takes_the_largest_key_at_or_below_the_cluster_size():
    spec = parse_spec({"name": "m", "total_tokens": 10, "sources": [
        {"path": "r", "weight": 1.0, "repeat_by_cluster_size": {str(k): v for k, v in FINEWEB2.items()}}]})
    lookup = spec.sources[0].copies
    assert [lookup(c) for c in (1, 2, 3, 4, 5, 99, 100, 999, 1000, 10**6)] == [1, 2, 3, 3, 5, 5, 8, 8, 1, 1]
    assert SourceSpec(path="r", weight=1.0).copies(50) == 1
    assert sum(targets([0.7, 0.2, 0.1], 1_000_001)) == 1_000_001
    with pytest.raises(SpecError, match="weights sum to 0.9"):
        parse_spec({"name": "m", "total_tokens": 10, "sources": [{"path": "a", "weight": 0.9}]})
    assert parse_spec({"name": "m", "total_tokens": 10, "sources": [
        {"path": p, "weight": w} for p, w in (("a", 0.7), ("b", 0.2), ("c", 0.1))]}).sources[2].weight == 0.1


def test_a_finished_run_is_a_source_too(runs, tmp_path):
    spec = tmp_path / "run.toml"
    spec.write_text(f'name = "r"\ntotal_tokens = 50000\n[[sources]]\npath = "{runs / "fw"}"\nweight = 1.0\n')
    assert tokenmill_cli.main(["mix", str(spec), "--to", str(tmp_path / "m")]) == 0
    (source,) = json.loads((tmp_path / "m" / "manifest.json").read_text())["sources"]
    assert (source["label"], source["kind"], source["planned_tokens"]) == ("fw", "run", 50000)
    reader = PackedReader(str(tmp_path / "m"), 99)
    assert len(list(reader)) == 500 and reader.tokens_by_source == {"fw": 50000}


def test_the_readmes_path_works_as_written(demo_crawl, tmp_path):
    """README.md's crawl -> run -> release -> mix -> verify/report commands and its mix.toml, taken from the
    README itself, on the demo crawl (one file as `web`, one as `books`); only total_tokens is made to fit."""
    import re
    import shlex
    from pathlib import Path

    from tests.test_pipeline import IN_MEMORY

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```bash\n(tokenmill run --input 'crawls/web/.*?)```", readme, re.S)
    (toml,) = re.findall(r"```toml\n(# mix\.toml.*?)```", readme, re.S)
    assert block and "total_tokens = 1_000_000_000" in toml, "the README's mixture example moved"
    (tmp_path / "mix.toml").write_text(toml.replace("1_000_000_000", "20_000"))
    for name, path in zip(("web", "books"), demo_crawl, strict=True):
        (tmp_path / "crawls" / name).mkdir(parents=True)
        (tmp_path / "crawls" / name / Path(path).name).write_bytes(Path(path).read_bytes())
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for line in block.group(1).splitlines():
            for command in line.split("#")[0].split("&&"):
                argv = shlex.split(command)[1:]
                assert tokenmill_cli.main(argv + (IN_MEMORY if argv[0] == "run" else [])) == 0, command
    finally:
        os.chdir(cwd)
    manifest = json.loads((tmp_path / "mixes" / "m1" / "manifest.json").read_text())
    assert [s["label"] for s in manifest["sources"]] == ["web-1.0.0", "books-1.0.0"]
    assert manifest["plan"]["tokens"] == 20_000 and (tmp_path / "m1.html").stat().st_size > 2_000
    assert len(list(PackedReader(str(tmp_path / "mixes" / "m1"), 2048))) == 20_000 // 2049


def test_rows_read_again_from_the_shards_give_the_same_mixture(mixed, releases, tmp_path, monkeypatch):
    """The scan keeps each row group's rows while they fit mixing.sources.ROWS_CACHE_BYTES and reads the rest
    again from the shards when the plan is written: no cache, a cache that ends part way through the first
    source, and the default write the same plan bytes and manifest."""
    import mixing.sources

    root, total = mixed
    expected = json.loads((root / "m" / "manifest.json").read_text())
    for budget in (0, 300):
        monkeypatch.setattr(mixing.sources, "ROWS_CACHE_BYTES", budget)
        out = tmp_path / f"m{budget}"
        assert tokenmill_cli.main(["mix", str(root / "mix.toml"), "--to", str(out)]) == 0
        manifest = json.loads((out / "manifest.json").read_text())
        assert [f["sha256"] for f in manifest["plan"]["files"]] == [f["sha256"] for f in expected["plan"]["files"]]
        for key in ("plan", "sources", "composition", "warnings"):
            assert manifest[key] == expected[key], key
    spec = parse_spec(tomllib.loads((root / "mix.toml").read_text()))
    scan = mixing.sources.scan_sources(mixing.sources.open_sources(spec), cache_bytes=300)[0]
    groups = scan.groups()
    assert 0 < len(scan.rows_cache) < len(groups.tokens), "the cache ends part way through web"


def test_the_plan_is_streamed_a_row_group_at_a_time_as_the_whole_table_was_written(tmp_path):
    """write_plan hands Arrow one plan row group (10,000 units) at a time, its rows fetched LOAD_UNITS units
    at a time; the file is the bytes pq.write_table wrote for the whole part before 2026-12-07."""
    from mixing.folder import parquet_bytes, plan_table, write_plan
    from mixing.plan import PlanError, Units, unit_rows

    rng = np.random.default_rng(7)
    groups = {(int(s), int(f), int(g)): rng.integers(0, 2_000, rng.integers(0, 40)).astype(np.int32)
              for s, f, g in zip(rng.integers(0, 2, 3_000), rng.integers(0, 30, 3_000), rng.integers(0, 90, 3_000),
                                 strict=True)}
    keys = list(groups)
    n = 25_000
    picked = [keys[k] for k in rng.integers(0, len(keys), n)]
    special = {5: np.array([3, 1], np.int32), 24_999: np.array([9], np.int32)}
    rows = [special.get(u, groups[k]) for u, k in enumerate(picked)]
    units = Units(source=np.array([k[0] for k in picked], np.int32), file=np.array([k[1] for k in picked], np.int32),
                  row_group=np.array([k[2] for k in picked], np.int32), epoch=np.zeros(n, np.int32),
                  window=(np.arange(n) // 700).astype(np.int32), tokens=rng.integers(1, 10**6, n),
                  take=np.zeros(n, np.int64), count=np.array([len(r) for r in rows], np.int64), special=special)
    asked = []

    def load(wanted):
        asked.append(len(wanted))
        return [groups[k] for k in wanted]

    files = write_plan(str(tmp_path), units, load)
    whole = parquet_bytes(plan_table(units, 0, n, np.concatenate(rows)))
    data = (tmp_path / "plan" / "part-00000.parquet").read_bytes()
    assert data == whole and pq.ParquetFile(tmp_path / "plan" / "part-00000.parquet").num_row_groups == 3
    assert files == [{"path": "plan/part-00000.parquet", "bytes": len(whole),
                      "sha256": hashlib.sha256(whole).hexdigest(), "rows": n}]
    assert max(asked) <= 32
    # A row group that no longer holds the entries it was planned with stops the mix.
    with pytest.raises(PlanError, match="changed while mixing"):
        unit_rows(units, 0, 10, lambda wanted: [groups[k][:-1] if len(groups[k]) else np.zeros(1, np.int32)
                                                for k in wanted])


def test_verify_finds_a_row_beyond_its_row_group(mixed, tmp_path, monkeypatch):
    """verify reads the plan's rows VERIFY_BATCH_UNITS units at a time (7 here, so the last unit is in a later
    batch); a unit naming a row its row group lacks (the plan file's checksum made to match) is found and named
    by its place in the plan."""
    import mixing.folder
    from mixing.folder import parquet_bytes, verify_mixture

    monkeypatch.setattr(mixing.folder, "VERIFY_BATCH_UNITS", 7)
    root, _ = mixed
    copy = tmp_path / "m"
    shutil.copytree(root / "m", copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    assert verify_mixture(str(copy), manifest) == []
    entry = manifest["plan"]["files"][-1]
    table = pq.read_table(copy / entry["path"])
    rows = table.column("rows").to_pylist()
    last = len(rows) - 1
    rows[last] = rows[last][:-1] + [10**6]
    table = table.set_column(table.schema.get_field_index("rows"), "rows", pa.array(rows, pa.list_(pa.int32())))
    data = parquet_bytes(table)
    (copy / entry["path"]).write_bytes(data)
    entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    units = manifest["plan"]["units"]
    assert units > 7
    assert verify_mixture(str(copy), manifest) == [
        f"plan unit {units - 1}: row group {table.column('row_group')[last].as_py()} / row 1000000 beyond "
        f"{manifest['sources'][table.column('source')[last].as_py()]['files'][table.column('file')[last].as_py()]['path']}"]
