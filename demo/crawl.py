"""Build the demo crawl: two small WARC files with real-looking pages and every kind of record to drop.

The articles below were written for this project. The crawl plants what a real one contains: boilerplate
around the main text, an exact duplicate served at a second URL, a 404, a redirect, an image, a PDF,
request and warcinfo records, and a page in German and one in French.
"""

from __future__ import annotations

import html
import os

from demo.warc_writer import WarcWriter

ARTICLES: list[tuple[str, str, list[str]]] = [
    ("en", "How rivers carve canyons", [
        "A river cuts into rock the way a saw cuts wood: slowly, by carrying abrasive grit across the same "
        "surface for an enormous number of passes. Sand and pebbles in the current scrape the channel bed, "
        "and floods move boulders that break off larger pieces.",
        "Where the land is rising, the river keeps pace by cutting down, and the walls of the valley stay "
        "steep because there is little rain to wear them back. That is why the deepest canyons are found "
        "in dry regions that were lifted up over millions of years.",
        "Geologists read the layers exposed in the walls like pages of a book. Each band of sandstone, "
        "shale or limestone records a time when the area was a desert, a muddy coast or a shallow sea.",
    ]),
    ("en", "Why bread dough needs time", [
        "Yeast does two jobs in bread. It produces carbon dioxide that inflates the dough, and it produces "
        "a range of small flavour compounds that make a slow loaf taste richer than a quick one.",
        "While the dough rests, enzymes in the flour break starch into sugars the yeast can eat, and the "
        "gluten network relaxes and reorganises, so the dough becomes easier to shape and holds gas better.",
        "Bakers who leave dough in a cool room overnight are trading speed for flavour and texture. The "
        "same amount of yeast works more slowly at lower temperature, which gives the enzymes more time.",
    ]),
    ("en", "The quiet work of lighthouse keepers", [
        "Before automation, a lighthouse needed someone awake every night of the year. Keepers trimmed "
        "wicks, wound the clockwork that turned the lens, and polished the glass until it was spotless.",
        "Logs kept by keepers are now a valuable record of weather, shipwrecks and bird migration, because "
        "they were written at the same place, at the same hours, for decades.",
        "Most lights were automated in the second half of the twentieth century, and many of the houses "
        "where keepers lived are now museums, holiday rentals or research stations.",
    ]),
    ("en", "Reading a weather map", [
        "The lines on a weather map connect places with the same air pressure. Where they crowd together "
        "the pressure changes quickly over a short distance, and the wind blows hard.",
        "Low pressure systems bring rising air, clouds and often rain; high pressure brings sinking air "
        "and settled weather. Fronts mark the boundaries between air masses of different temperature.",
        "A cold front usually passes with a short band of heavy showers and a shift in the wind, while a "
        "warm front brings a longer spell of steady light rain ahead of it.",
    ]),
    ("en", "What makes a good study schedule", [
        "Students remember more when they spread practice over several days than when they cram the same "
        "number of hours into one evening. Psychologists call this the spacing effect.",
        "Testing yourself is more effective than rereading notes. Trying to recall an answer, even when "
        "you fail, strengthens the memory more than looking at the answer again.",
        "A realistic plan also includes sleep, because memories are consolidated at night, and breaks, "
        "because attention fades after about an hour of concentrated work.",
    ]),
    ("de", "Warum Brücken schwingen dürfen", [
        "Eine Brücke ist kein starres Bauwerk. Sie dehnt sich bei Wärme aus, zieht sich bei Kälte "
        "zusammen und bewegt sich leicht unter dem Gewicht der Fahrzeuge und im Wind.",
        "Ingenieure planen diese Bewegungen ein. Dehnungsfugen und bewegliche Lager sorgen dafür, dass "
        "keine gefährlichen Spannungen im Beton oder im Stahl entstehen.",
        "Gefährlich wird es erst, wenn die Schwingungen sich aufschaukeln. Deshalb werden lange Brücken "
        "im Windkanal getestet, bevor sie gebaut werden.",
    ]),
    ("de", "Der Wald als Wasserspeicher", [
        "Ein gesunder Waldboden nimmt Regen auf wie ein Schwamm. Laub, Wurzeln und die Gänge von "
        "Bodentieren schaffen Hohlräume, in denen das Wasser versickern kann.",
        "So gelangt das Wasser langsam ins Grundwasser und in die Bäche, statt bei starkem Regen sofort "
        "abzufließen. Das mindert Hochwasser und hält Quellen auch im Sommer am Leben.",
        "Wird der Boden durch schwere Maschinen verdichtet, verliert er diese Fähigkeit für lange Zeit.",
    ]),
    ("fr", "Le pain au levain", [
        "Le levain est un mélange de farine et d'eau dans lequel vivent des levures et des bactéries "
        "lactiques. Il donne au pain une mie plus acide et une meilleure conservation.",
        "Le boulanger le nourrit chaque jour avec de la farine fraîche pour garder la culture active. Un "
        "levain bien entretenu peut vivre pendant des dizaines d'années.",
        "La fermentation longue rend aussi certains nutriments plus faciles à assimiler.",
    ]),
]


def page(title: str, paragraphs: list[str], lang: str, site: str) -> bytes:
    """An article page with the boilerplate a real site wraps around its main text."""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)} | {site}</title>
<meta property="article:published_time" content="2025-03-14"></head>
<body><nav><a href="/">Home</a> <a href="/about">About</a> <a href="/contact">Contact</a></nav>
<main><article><h1>{html.escape(title)}</h1>
{body}
</article></main>
<footer><p>Copyright {site}. All rights reserved.</p><a href="/privacy">Privacy</a></footer>
</body></html>""".encode()


def build_demo_crawl(out_dir: str) -> list[str]:
    """Write demo-0.warc.gz and demo-1.warc.gz into out_dir; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    halves = [ARTICLES[0::2], ARTICLES[1::2]]
    for shard, articles in enumerate(halves):
        path = os.path.join(out_dir, f"demo-{shard}.warc.gz")
        with open(path, "wb") as f:
            w = WarcWriter(f, seed=f"demo-{shard}")
            w.warcinfo()
            for i, (lang, title, paragraphs) in enumerate(articles):
                url = f"https://site{shard}.example/{lang}/article-{i}"
                w.request(url)
                w.response(url, page(title, paragraphs, lang, f"site{shard}.example"))
            # The first article again at a mirror: an exact duplicate after extraction.
            lang, title, paragraphs = articles[0]
            w.response(f"https://mirror{shard}.example/copy", page(title, paragraphs, lang, "mirror.example"))
            w.response(f"https://site{shard}.example/missing", b"<html><body>Not found</body></html>", status=404)
            w.response(f"https://site{shard}.example/old", b"", status=301,
                       extra_headers={"Location": f"https://site{shard}.example/new"})
            w.response(f"https://site{shard}.example/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(64),
                       content_type="image/png")
            w.response(f"https://site{shard}.example/report.pdf", b"%PDF-1.4\n%demo\n", content_type="application/pdf")
        paths.append(path)
    return paths
