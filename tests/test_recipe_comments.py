"""The built-in recipes' comments say how to add what tokenmill does not ship (FineWeb's URL block lists, C4's
bad-words lists). Followed as written, fineweb.toml's comment once ran with stage url dropping nothing and no
warning: its `order` left "url" out, and lists for a filter the order does not run were read by nothing. Now such
lists are refused in one line, and every commented-out example of every built-in recipe is taken here exactly
as written (the `#   ` lines, uncommented), its list paths filled with small files this test writes at the
very paths the comment names, and run through `tokenmill run` on the demo crawl: the filter it adds must act.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from schemas.recipe import RecipeError, builtin_recipes, filter_lists, load_recipe, recipe_from_dict
from tests.test_pipeline import IN_MEMORY


def comment_examples() -> list[tuple[str, str]]:
    """(built-in recipe name, example) for each block of consecutive `#   ` lines in the built-in recipe files,
    with that prefix taken off: the recipe the comment tells a user to save as their own."""
    out = []
    for name, path in builtin_recipes().items():
        block: list[str] = []
        for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
            if line.startswith("#   "):
                block.append(line[4:])
            elif block:
                out.append((name, "\n".join(block) + "\n"))
                block = []
    return out


EXAMPLES = comment_examples()

# What this test writes at a list path the example names, per recipe key, and the ledger reason that shows the
# list was read: a demo crawl page it drops (or, for a rule decided after other filters, a signal it sets).
FIXTURES = {
    "filters.url.domain_files": ("site0.example\n", "url_domain_blocked"),
    "filters.url.url_files": ("mirror1.example/copy\n", "url_blocked"),
}
BAD_WORDS = "the\n"  # in every English demo page


def write_lists(root: Path, recipe_key: str, path: str) -> None:
    """The small list file (or folder of lists) the example names at `path`, below `root`."""
    assert not Path(path).is_absolute() and "://" not in path, f"{recipe_key} = {path!r}: give a relative path"
    target = root / path
    if recipe_key == "filters.bad_words.lists_dir":
        target.mkdir(parents=True, exist_ok=True)
        (target / "en.txt").write_text(BAD_WORDS)
    elif recipe_key in FIXTURES:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(FIXTURES[recipe_key][0])
    else:
        raise AssertionError(f"{recipe_key}: this test has no list to write for it; add one to FIXTURES")


def test_the_recipes_that_leave_a_listed_filter_out_say_how_to_add_it():
    """fineweb leaves out the URL filter and c4 the bad-words rule (no list ships); each says how to add it."""
    assert sorted(name for name, _ in EXAMPLES) == ["c4", "fineweb"]


@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_a_recipe_comment_followed_as_written_runs_the_filter_it_adds(name, example, demo_crawl, tmp_path):
    (tmp_path / "my.toml").write_text(example)
    # A recipe's keys are checked as it loads, its paths by the run: the lists can be written afterwards, at the
    # paths it names relative to tmp_path, where the run below starts, as a user runs it beside their lists.
    recipe = load_recipe(str(tmp_path / "my.toml"))
    builtin = load_recipe(name)
    added = [f for f in recipe.filters.order if f not in builtin.filters.order]
    assert added, f"the {name} example adds no filter to the order"
    lists = filter_lists(recipe)
    assert {f for f, _, _ in lists} == set(added), lists
    for _, key, path in lists:
        write_lists(tmp_path, key, path)

    # The example changes the order and names lists; the rest is the built-in recipe, as its `base` makes it.
    def rest(r):
        d = r.to_dict()
        del d["name"], d["description"], d["filters"]["order"]
        for filter_name in added:
            del d["filters"][filter_name]
        return d

    assert rest(recipe) == rest(builtin)

    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "tokenmill_cli", "run", "--input", *demo_crawl, "--output", "out",
                           "--config", "my.toml", *IN_MEMORY], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    stats = json.loads((out / "stats.json").read_text())
    rows = pq.read_table(sorted((out / "ledger").glob("*.parquet"))).to_pylist()
    if "url" in added:
        expected = {FIXTURES[key][1] for f, key, _ in lists if f == "url"}
        assert set(stats["stages"]["url"]["dropped"]) == expected
        dropped = {r["url"].split("/")[2] for r in rows if r["stage"] == "url"}
        assert "site0.example" in dropped or "domain_files" not in example
    if "bad_words" in added:
        found = [r for r in rows if {"name": "bad_words_found", "value": 1.0} in (r["scores"] or [])]
        missing = [r for r in rows if {"name": "bad_words_list_missing", "value": 1.0} in (r["scores"] or [])
                   and r["language"] == "en"]
        assert found and not missing, "the bad-words list was not read"
        assert all(r["language"] == "en" for r in found)
    assert set(added) <= {"url", "bad_words"}, f"{added}: say here how this test sees the filter act"


def test_lists_for_a_filter_the_order_leaves_out_are_refused_in_one_line(demo_crawl, tmp_path):
    """fineweb.toml's comment as it was: the URL lists given, `order` as shown without "url"."""
    (tmp_path / "domains").write_text("site0.example\n")
    (tmp_path / "old.toml").write_text(
        'base = "fineweb"\n[filters]\norder = ["language", "gopher_repetition", "gopher_quality", "c4", '
        '"fineweb", "pii"]\n[filters.url]\ndomain_files = ["domains"]\n')
    done = subprocess.run([sys.executable, "-m", "tokenmill_cli", "run", "--input", *demo_crawl, "--output", "out",
                           "--config", "old.toml", *IN_MEMORY], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "tokenmill: old.toml: filters.url.domain_files names a list for the url filter, but "
        'filters.order does not run it, so nothing would read the list: add "url" to [filters] order (it runs '
        "before extraction wherever it stands), or remove filters.url.domain_files"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("table", "key"), [
    ({"url": {"url_files": ["u"]}}, "filters.url.url_files"),
    ({"url": {"banned_subword_files": ["w"]}}, "filters.url.banned_subword_files"),
    ({"bad_words": {"lists_dir": "ldnoobw"}}, "filters.bad_words.lists_dir"),
    ({"order": ["language"], "gopher_quality": {"stop_words_file": "stop.json"}},
     "filters.gopher_quality.stop_words_file"),
])
def test_every_list_key_of_a_filter_off_the_order_is_refused(table, key):
    name = key.split(".")[1]
    with pytest.raises(RecipeError) as refused:
        recipe_from_dict({"filters": table})
    assert str(refused.value).startswith(f"{key} names a list for the {name} filter, but filters.order does not")
    assert f'add "{name}" to [filters] order' in str(refused.value)
    # The same lists with the filter in the order are accepted.
    recipe_from_dict({"filters": {**table, "order": ["language", name]}})
