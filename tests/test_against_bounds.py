"""Dedup against releases without a corpus-sized driver or a hot worker (issue 35): index files checked by the
worker that reads them, a template released many times reaching exact dedup as one value, a hot released band
bucket split in salted groups of at most ~dedup.near.max_group per side with the same matches as one group.
The run-level failure (exit 1, one line naming the file) is in tests/test_incremental.py."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

from release.against import IndexFileError, checked_index_file


def _index_file(folder: Path) -> tuple[str, str]:
    part = folder / "dedup_index" / "part-0.parquet"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"index bytes " * 1000)
    return "dedup_index/part-0.parquet", hashlib.sha256(part.read_bytes()).hexdigest()


def test_an_index_file_is_read_only_once_its_bytes_match_the_manifest(tmp_path):
    entry, sha = _index_file(tmp_path)
    with checked_index_file(str(tmp_path), entry, sha) as local:
        assert Path(local).read_bytes() == (tmp_path / entry).read_bytes()
    (tmp_path / entry).write_bytes(b"index bytes " * 999 + b"index byteZ ")
    with pytest.raises(IndexFileError) as damaged, checked_index_file(str(tmp_path), entry, sha):
        pytest.fail("a damaged file was handed to its reader")
    assert str(damaged.value) == (f"dedup.against: {tmp_path}: {entry} fails its sha256 checksum "
                                  f"(tokenmill verify {tmp_path})")
    (tmp_path / entry).unlink()
    with pytest.raises(IndexFileError) as missing, checked_index_file(str(tmp_path), entry, sha):
        pytest.fail("a missing file was handed to its reader")
    assert str(missing.value) == f"dedup.against: {tmp_path}: {entry} is missing (tokenmill verify {tmp_path})"


def test_the_run_failure_line_is_found_in_the_runners_wrapping():
    """What the local runner raises for a worker's IndexFileError (its traceback, the raising line, the step):
    run_pipeline finds the one line to print, for a release path holding brackets too."""
    import run_pipeline

    line = "dedup.against: /r/web [2026]: dedup_index/part-0.parquet fails its sha256 checksum (tokenmill verify " \
           "/r/web [2026])"
    wrapped = ("RuntimeError: Traceback (most recent call last):\n  File \"release/against.py\", line 120\n"
               "    raise IndexFileError(f\"{where}: {entry} fails its sha256 checksum (tokenmill verify {release})\")"
               f"\nrelease.against.IndexFileError: {line} [while running 'ReadReleasedIndex']\n")
    assert run_pipeline._STATED_FAILURES.search(wrapped).group(1) == line


def test_salted_grid_meets_every_pair_once_and_bounds_each_side():
    from pipelines.against_releases import _salted_member, _splits

    released = [(True, f"web:{i}", b"") for i in range(50)]
    run = [(False, f"d{i}", b"") for i in range(23)]
    hot = {(0, 7): _splits((50, 23), 10), (1, 7): _splits((50, 0), 10)}
    assert hot == {(0, 7): (5, 3), (1, 7): (0, 0)}
    groups: dict[tuple, list] = {}
    for member in released + run:
        for band in (0, 1, 2):
            for key, value in _salted_member(((band, 7), member), hot):
                groups.setdefault(key, []).append(value)
    # Band 1 is hot with no run member: nothing to compare, nothing grouped. Band 2 is not hot: one group.
    assert not any(k[0] == 1 for k in groups) and len(groups[(2, 7, 0, 0)]) == 73
    grid = {k: v for k, v in groups.items() if k[0] == 0}
    assert len(grid) == 15
    pairs = [(r[1], n[1]) for members in grid.values() for r in members if r[0] for n in members if not n[0]]
    assert len(pairs) == len(set(pairs)) == 50 * 23
    assert max(sum(1 for m in members if m[0]) for members in grid.values()) <= 20  # ~max_group, hashed


def _refs(n: int, signature: np.ndarray, exact_key: str, prefix: str):
    from schemas.records import StagedRef

    out = []
    for i in range(n):
        sig = signature.copy()
        sig[i % len(sig)] ^= 1 + i  # near copies: one value of 112 changed
        out.append(StagedRef(doc_id=f"{prefix}{i:04d}", source="s", staged="f", staged_at=i, token_count=0,
                             exact_key=f"{exact_key}{i}" if exact_key != "same" else "same",
                             signature=sig.astype("<u8").tobytes()))
    return out


@pytest.mark.parametrize("max_group", [3, 10_000])
def test_near_against_a_hot_released_bucket_matches_as_one_group(max_group):
    """A released template of 40 near copies and 7 run copies, all in the same band buckets: with max_group 3 the
    buckets are salted grids, and every run copy is dropped against the same released document with the same
    score as when each bucket is one group."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.testing.util import assert_that, equal_to

    from dedup.minhash import band_keys, check_values
    from pipelines.against_releases import NearAgainstReleases, ReleasedDoc
    from schemas.recipe import Recipe

    recipe = Recipe()
    recipe.dedup.near.enabled = True
    recipe.dedup.near.max_group = max_group
    cfg = recipe.dedup.near
    base = np.random.default_rng(3).integers(0, 2**63, cfg.bands * cfg.rows, dtype=np.uint64)
    released = []
    for ref in _refs(40, base, "r", "web:"):
        sig = np.frombuffer(ref.signature, dtype="<u8")
        released.append(ReleasedDoc(ref.doc_id, ref.exact_key, band_keys(sig, cfg.bands, cfg.rows),
                                    check_values(sig)))
    run = _refs(7, base, "k", "d")
    lonely = _refs(1, np.random.default_rng(4).integers(0, 2**63, cfg.bands * cfg.rows, dtype=np.uint64), "z", "z")
    # The truth, pair by pair: each run copy's most similar released document (ties to the smaller ref).
    from dedup.minhash import estimated_jaccard

    threshold = cfg.confirm_threshold or cfg.threshold
    expected = []
    for ref in run:
        check = check_values(np.frombuffer(ref.signature, dtype="<u8"))
        best = min(((round(estimated_jaccard(check, r.check), 6), r.ref) for r in released),
                   key=lambda m: (-m[0], m[1]))
        assert best[0] >= threshold
        expected.append((ref.doc_id, best[1], best[0]))
    with beam.Pipeline(runner=FnApiRunner()) as p:
        kept, dropped, matched = (p | "Refs" >> beam.Create(run + lonely)) | NearAgainstReleases(
            recipe, p | "Released" >> beam.Create(released))
        assert_that(kept | beam.Map(lambda r: r.doc_id), equal_to(["z0000"]), label="Kept")
        assert_that(dropped | beam.Map(lambda d: (d.ref.doc_id, d.ref.cluster_id, d.decision.score)),
                    equal_to(expected), label="Dropped")
        assert_that(matched | beam.combiners.Count.Globally(), equal_to([7]), label="Matched")


def test_exact_against_a_template_released_many_times():
    """A text released 500 times (and once more in a second release) and copied 30 times in the run: every run
    copy is dropped citing the smallest released ref; the run's other texts keep the run's own survivor rule."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.testing.util import assert_that, equal_to

    from pipelines.against_releases import MATCHED, ReleasedDoc
    from pipelines.dedup import ExactDedup
    from pipelines.documents import LEDGER
    from schemas.recipe import Recipe

    released = [ReleasedDoc(f"web-b:{i:04d}", "same", None, None) for i in range(500)]
    released.append(ReleasedDoc("web-a:9999", "same", None, None))
    released.append(ReleasedDoc("web-a:0001", "other", None, None))
    run = _refs(30, np.zeros(4, dtype=np.uint64), "same", "d") + _refs(3, np.zeros(4, dtype=np.uint64), "k", "k")
    run += [dataclasses.replace(ref, exact_key="pair") for ref in _refs(2, np.zeros(4, dtype=np.uint64), "x", "x")]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        out = (p | "Refs" >> beam.Create(run)) | ExactDedup(Recipe(), p | "Released" >> beam.Create(released))
        assert_that(out.survivors | beam.Map(lambda r: (r.doc_id, r.cluster_size, r.cluster_id)),
                    equal_to([("k0000", 1, ""), ("k0001", 1, ""), ("k0002", 1, ""), ("x0000", 2, "x0000")]),
                    label="Survivors")
        assert_that(out[LEDGER]
                    | beam.Map(lambda d: (d.decision.reason, d.ref.cluster_id)) | beam.combiners.Count.PerElement(),
                    equal_to([(("duplicate_of_release", "web-a:9999"), 30), (("exact_duplicate", "x0000"), 1)]),
                    label="Dropped")
        assert_that(out[MATCHED] | beam.CombinePerKey(sum), equal_to([(("web-a", "exact"), 30)]), label="Matched")
