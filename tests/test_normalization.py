"""The four text normalizations (normalization/text.py) pinned on hostile strings: each is part of a definition
earlier outputs depend on (exact keys in a release's dedup index, MinHash signatures, a benchmark index, trained
classifiers), so a change to any of them must fail here. The expected values were printed by the four functions
as they were before they moved into one module (bd2d4b3: dedup/exact.py, dedup/minhash.py,
decontamination/text.py, classifiers/text.py), and the old names must still give them."""

from __future__ import annotations

import hashlib

import pytest

from normalization.text import (
    normalize_for_classifier,
    normalize_for_decontamination,
    normalize_for_exact,
    normalize_for_minhash,
)

HOSTILE = [
    "  Hello,\n\tWORLD!  ",
    "\ufb01ne \ufb02ow \uff28\uff45\uff4c\uff4c\uff4f \u2460\u2461 \u00bd",  # ligatures, fullwidth, circled, fraction
    # dotted capital I, final sigma, sharp s
    "\u0130stanbul \u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 STRASSE stra\u00dfe",
    "cafe\u0301 e\u0300 \u1e9b\u0323",  # combining marks NFKC composes
    "zero\u200bwidth join\u200der \u202eevil\u202c \u2066iso\u2069",  # zero-width, bidi overrides and isolates
    "nul\x00bel\x07 esc\x1b[31m cr\rlf\r\n nbsp\u00a0thin\u2009ideo\u3000end",  # control characters, odd spaces
    "snake_case __dunder__ e-mail a@b.com 3.5 don't (x) \"quoted,\" end.",
    "\u0663\u0664 \u096b 12,345 \u00b2 \u2075 \uff11",  # Arabic-Indic, Devanagari, superscript, fullwidth digits
    "emoji \U0001f600\U0001f44d\U0001f3fd flag \U0001f1eb\U0001f1f7 math \U0001d400\U0001d41b",
    "lone \ud800 surrogate",
    "",
    "   \n\t  ",
    "...!!!???",
    "x" * 20 + " " + "Y, " * 5000,  # longer than the classifiers' max_chars
]

PINNED = {
    "exact": [
        "hello, world!",
        "fine flow hello 12 1\u20442",
        "i\u0307stanbul \u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2 strasse stra\xdfe",
        "caf\xe9 \xe8 \u1e69",
        "zero\u200bwidth join\u200der \u202eevil\u202c \u2066iso\u2069",
        "nul\x00bel\x07 esc\x1b[31m cr lf nbsp thin ideo end",
        "snake_case __dunder__ e-mail a@b.com 3.5 don't (x) \"quoted,\" end.",
        "\u0663\u0664 \u096b 12,345 2 5 1",
        "emoji \U0001f600\U0001f44d\U0001f3fd flag \U0001f1eb\U0001f1f7 math ab",
        "lone \ud800 surrogate",
        "",
        "",
        "...!!!???",
        "sha256:67834c836a18c538105ac257787f177d1442cb6a15252425facde80d25090012",
    ],
    "minhash": [
        "hello world",
        "fine flow hello 00 0 0",
        "i stanbul \u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2 strasse stra\xdfe",
        "caf\xe9 \xe8 \u1e69",
        "zero width join er evil iso",
        "nul bel esc 00m cr lf nbsp thin ideo end",
        "snake case dunder e mail a b com 0 0 don t x quoted end",
        "00 0 00 000 0 0 0",
        "emoji flag math ab",
        "lone surrogate",
        "",
        "",
        "",
        "sha256:8c79f15f87b13af5ff9525dc1d953fd7088e11af68dc403c3b37e9ded519fafc",
    ],
    "decontamination": [
        "hello world",
        "fine flow hello 12 1 2",
        "i stanbul \u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2 strasse stra\xdfe",
        "caf\xe9 \xe8 \u1e69",
        "zero width join er evil iso",
        "nul bel esc 31m cr lf nbsp thin ideo end",
        "snake case dunder e mail a b com 3 5 don t x quoted end",
        "\u0663\u0664 \u096b 12 345 2 5 1",
        "emoji flag math ab",
        "lone surrogate",
        "",
        "",
        "",
        "sha256:8c79f15f87b13af5ff9525dc1d953fd7088e11af68dc403c3b37e9ded519fafc",
    ],
    "classifier": [
        "hello , world !",
        "\ufb01ne \ufb02ow \uff48\uff45\uff4c\uff4c\uff4f \u2460\u2461 \xbd",
        "i\u0307stanbul \u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2 strasse stra\xdfe",
        "cafe \u0301 e \u0300 \u1e9b \u0323",
        "zero\u200bwidth join\u200der \u202e evil \u202c \u2066 iso \u2069",
        "nul\x00bel \x07 esc \x1b [ 31m cr lf nbsp thin ideo end",
        "snake_case __dunder__ e-mail a@b.com 3.5 don't ( x ) \" quoted , \" end .",
        "\u0663\u0664 \u096b 12,345 \xb2 \u2075 \uff11",
        "emoji \U0001f600 \U0001f44d \U0001f3fd flag \U0001f1eb \U0001f1f7 math \U0001d400\U0001d41b",
        "lone \ud800 surrogate",
        "",
        "",
        ". . . ! ! ! ? ? ?",
        "sha256:3c31444390a0eaeebb59c1cd40379bc7e646453c94d89583b7118e00825f3c93",
    ],
}

VARIANTS = {
    "exact": normalize_for_exact,
    "minhash": normalize_for_minhash,
    "decontamination": lambda text: " ".join(normalize_for_decontamination(text)),
    "classifier": normalize_for_classifier,
}


def _shown(out: str) -> str:
    """Long results are pinned by their sha256."""
    if len(out) > 200:
        return "sha256:" + hashlib.sha256(out.encode("utf-8", "surrogatepass")).hexdigest()
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_normalization_gives_what_it_gave_before_the_move(variant):
    assert [_shown(VARIANTS[variant](text)) for text in HOSTILE] == PINNED[variant]


def test_the_four_differ_where_their_documentation_says():
    """Each variant gives something another does not on these strings, so none stands in for another."""
    results = {name: [_shown(f(text)) for text in HOSTILE] for name, f in VARIANTS.items()}
    names = list(results)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert results[a] != results[b], (a, b)


def test_the_old_names_are_the_same_functions():
    from classifiers.text import normalize_for_classifier as classifier
    from decontamination.text import normalized_words
    from dedup.exact import exact_key
    from dedup.exact import normalize_for_exact as exact
    from dedup.minhash import normalize_for_minhash as minhash

    assert (exact, minhash, normalized_words, classifier) == (
        normalize_for_exact, normalize_for_minhash, normalize_for_decontamination, normalize_for_classifier)
    # The exact key hashes the exact normalization (a release's keys depend on it).
    assert exact_key("  Hello,\n\tWORLD!  ") == exact_key("hello, world!")
