"""Seeded English prose from a small grammar written for this project, for crawls the project builds itself.

The tests and the demo need many distinct pages of ordinary English (so that language ID, Gopher's and
FineWeb's rules keep them) without reading any data set the repository does not hold. Sentences are drawn
from templates over word lists large enough that two pages share almost no word 5-gram by chance: the
planted duplicates are then the only near duplicates, as in a real crawl's truth file.
"""

from __future__ import annotations

import random
import re

NOUNS = [
    ("river", "rivers"), ("valley", "valleys"), ("bridge", "bridges"), ("harbour", "harbours"),
    ("market", "markets"), ("village", "villages"), ("forest", "forests"), ("garden", "gardens"),
    ("library", "libraries"), ("museum", "museums"), ("kitchen", "kitchens"), ("engine", "engines"),
    ("lighthouse", "lighthouses"), ("railway", "railways"), ("station", "stations"), ("factory", "factories"),
    ("orchard", "orchards"), ("meadow", "meadows"), ("glacier", "glaciers"), ("island", "islands"),
    ("island chain", "island chains"), ("coastline", "coastlines"), ("canal", "canals"), ("mill", "mills"),
    ("school", "schools"), ("hospital", "hospitals"), ("theatre", "theatres"), ("cathedral", "cathedrals"),
    ("farm", "farms"), ("vineyard", "vineyards"), ("bakery", "bakeries"), ("workshop", "workshops"),
    ("telescope", "telescopes"), ("satellite", "satellites"), ("volcano", "volcanoes"), ("desert", "deserts"),
    ("reef", "reefs"), ("wetland", "wetlands"), ("tunnel", "tunnels"), ("highway", "highways"),
    ("archive", "archives"), ("manuscript", "manuscripts"), ("painting", "paintings"), ("sculpture", "sculptures"),
    ("recipe", "recipes"), ("harvest", "harvests"), ("festival", "festivals"), ("council", "councils"),
    ("experiment", "experiments"), ("laboratory", "laboratories"), ("microscope", "microscopes"),
    ("battery", "batteries"), ("turbine", "turbines"), ("reservoir", "reservoirs"), ("pipeline", "pipelines"),
    ("newspaper", "newspapers"), ("novel", "novels"), ("poem", "poems"), ("orchestra", "orchestras"),
    ("choir", "choirs"), ("stadium", "stadiums"), ("marathon", "marathons"), ("tournament", "tournaments"),
    ("glacier lake", "glacier lakes"), ("mountain pass", "mountain passes"), ("fishing fleet", "fishing fleets"),
    ("ferry", "ferries"), ("airport", "airports"), ("bicycle", "bicycles"), ("tram line", "tram lines"),
    ("cheese", "cheeses"), ("bread", "breads"), ("soup", "soups"), ("spice", "spices"), ("tea garden", "tea gardens"),
    ("beehive", "beehives"), ("wolf", "wolves"), ("heron", "herons"), ("salmon", "salmon"), ("oak", "oaks"),
    ("fern", "ferns"), ("mushroom", "mushrooms"), ("storm", "storms"), ("drought", "droughts"), ("tide", "tides"),
    ("cloud", "clouds"), ("comet", "comets"), ("planet", "planets"), ("moon", "moons"), ("crystal", "crystals"),
    ("mineral", "minerals"), ("fossil", "fossils"), ("cave", "caves"), ("spring", "springs"), ("well", "wells"),
    ("clock", "clocks"), ("compass", "compasses"), ("map", "maps"), ("ledger", "ledgers"), ("letter", "letters"),
    ("teacher", "teachers"), ("farmer", "farmers"), ("sailor", "sailors"), ("engineer", "engineers"),
    ("nurse", "nurses"), ("carpenter", "carpenters"), ("weaver", "weavers"), ("potter", "potters"),
    ("historian", "historians"), ("botanist", "botanists"), ("geologist", "geologists"), ("baker", "bakers"),
    ("volunteer", "volunteers"), ("student", "students"), ("visitor", "visitors"), ("neighbour", "neighbours"),
    ("committee", "committees"), ("company", "companies"), ("guild", "guilds"), ("family", "families"),
]
VERBS = [  # base, third person, past
    ("build", "builds", "built"), ("repair", "repairs", "repaired"), ("measure", "measures", "measured"),
    ("describe", "describes", "described"), ("protect", "protects", "protected"), ("visit", "visits", "visited"),
    ("study", "studies", "studied"), ("record", "records", "recorded"), ("move", "moves", "moved"),
    ("cross", "crosses", "crossed"), ("feed", "feeds", "fed"), ("shape", "shapes", "shaped"),
    ("replace", "replaces", "replaced"), ("explore", "explores", "explored"), ("paint", "paints", "painted"),
    ("collect", "collects", "collected"), ("carry", "carries", "carried"), ("cool", "cools", "cooled"),
    ("warm", "warms", "warmed"), ("cover", "covers", "covered"), ("follow", "follows", "followed"),
    ("change", "changes", "changed"), ("support", "supports", "supported"), ("supply", "supplies", "supplied"),
    ("drain", "drains", "drained"), ("light", "lights", "lit"), ("guard", "guards", "guarded"),
    ("map", "maps", "mapped"), ("plant", "plants", "planted"), ("harvest", "harvests", "harvested"),
    ("restore", "restores", "restored"), ("open", "opens", "opened"), ("close", "closes", "closed"),
    ("join", "joins", "joined"), ("divide", "divides", "divided"), ("clean", "cleans", "cleaned"),
    ("test", "tests", "tested"), ("observe", "observes", "observed"), ("teach", "teaches", "taught"),
    ("sell", "sells", "sold"), ("buy", "buys", "bought"), ("find", "finds", "found"), ("lose", "loses", "lost"),
    ("hold", "holds", "held"), ("draw", "draws", "drew"), ("shelter", "shelters", "sheltered"),
    ("welcome", "welcomes", "welcomed"), ("reach", "reaches", "reached"), ("connect", "connects", "connected"),
    ("surround", "surrounds", "surrounded"), ("replant", "replants", "replanted"), ("inspect", "inspects",
                                                                                    "inspected"),
]
ADJECTIVES = [
    "old", "narrow", "wide", "quiet", "busy", "ancient", "modern", "small", "large", "hidden", "famous",
    "forgotten", "careful", "patient", "steep", "shallow", "deep", "bright", "dark", "cold", "warm", "dry",
    "wet", "northern", "southern", "eastern", "western", "local", "rural", "coastal", "urban", "seasonal",
    "fragile", "sturdy", "crowded", "empty", "simple", "detailed", "heavy", "light", "slow", "rapid",
    "gentle", "harsh", "fertile", "rocky", "sandy", "muddy", "wooden", "stone", "iron", "copper", "painted",
    "restored", "ruined", "rebuilt", "private", "public", "early", "late", "young", "mature", "rare",
    "common", "unusual", "ordinary", "remarkable", "humble", "generous", "curious", "skilled", "tired",
    "cheerful", "careful", "reliable", "costly", "cheap", "fresh", "salted", "smoked", "frozen", "green",
]
ADVERBS = [
    "slowly", "carefully", "quietly", "often", "rarely", "usually", "always", "gradually", "suddenly",
    "steadily", "easily", "barely", "widely", "closely", "regularly", "seldom", "eventually", "clearly",
    "mostly", "partly", "briefly", "gently", "sharply", "freely",
]
PLACES = [
    "the upper valley", "the old harbour", "the northern coast", "the market square", "the river delta",
    "the eastern hills", "the city walls", "the salt marsh", "the high plateau", "the pine forest",
    "the island ferry", "the mining town", "the border region", "the university quarter", "the fishing port",
    "the lake district", "the southern plains", "the mountain villages", "the river mouth", "the capital",
    "the canal district", "the old railway yard", "the botanical garden", "the wine country",
]
NAMES = [
    "Maria Lindqvist", "Tomas Okafor", "Ana Ribeiro", "Jonas Weber", "Priya Raman", "Liam Byrne",
    "Sofia Marino", "Kenji Watanabe", "Amara Diallo", "Erik Johansson", "Chloe Martin", "Omar Haddad",
    "Hannah Brooks", "Mateo Alvarez", "Ingrid Solberg", "Daniel Novak", "Leila Farouk", "Samuel Adeyemi",
]
TIMES = [
    "every spring", "each autumn", "in the winter months", "during the dry season", "after heavy rain",
    "at the end of each year", "on market days", "in the early morning", "late at night", "every few weeks",
    "twice a year", "during the long summer", "before the first frost", "after the harvest",
]
LINKS = ["however", "meanwhile", "in practice", "for this reason", "as a result", "at first", "later",
         "in most years", "even so", "by contrast"]

TEMPLATES = [
    "The {a} {n} near {place} {v3} the {a2} {n2} {time}.",
    "{Link}, the {np} of {place} {vd} {adv} when the {n} was {a}.",
    "In {year}, {name} {vd} the {a} {np} and {vd2} how the {n2} {v3} {time}.",
    "Most {np} {v} the {n} {adv}, but a {a} {n2} can {v2} it {time}.",
    "{Name} says that the {a} {n} {v3} more {np2} than anyone {vd} in {year}.",
    "A {a} {n} is easy to {v}, yet the {np} of {place} {adv} {v2} the {a2} {np2}.",
    "When the {np} {vd} {place}, the {a} {n} {vd2} {adv} for {num} years.",
    "{Link}, {num} {a} {np} {vd} the {n} and {vd2} a {a2} {n2} beside it.",
    "Nobody {vd} the {a} {n} until {name} {vd2} its {np} in {year}.",
    "The {np} that {v} the {a} {n} {time} also {v2} the {np2} of {place}.",
    "It is the {a} {n}, not the {a2} {n2}, that {v3} {place} {time}.",
    "{Name} {vd} {num} {np} for the {a} {n} and {vd2} each one {adv}.",
    "Because the {n} {v3} {adv}, the {np} near {place} {v} {time}.",
    "Visitors who {v} the {a} {n} should {v2} the {np} and the {a2} {n2} as well.",
    "The {a} {np} were {adv} {vd} by {np2} who {vd2} them {time}.",
    "{Link}, the {n} of {place} {vd} a {a} {n2} that still {v3} {num} {np}.",
    "Some {np} {v} a {a} {n} {time}; others {v2} the {a2} {n2} instead.",
    "After {year}, the {a} {np} {vd} {place} and the {n} {vd2} {adv}.",
    "The record kept by {name} shows that the {n} {vd} {num} {a} {np} in {year}.",
    "Why does a {a} {n} {v} the {np}? The {np2} of {place} {v2} it {time}.",
]


# Nouns by topic, for labeled text a classifier can learn from (every name is one of NOUNS' singulars).
TOPICS = {
    "sea": ["harbour", "lighthouse", "island", "coastline", "reef", "tide", "ferry", "sailor", "fishing fleet",
            "salmon", "heron", "canal", "wetland", "storm", "island chain"],
    "food": ["market", "kitchen", "bakery", "recipe", "harvest", "cheese", "bread", "soup", "spice", "baker",
             "orchard", "vineyard", "tea garden", "beehive", "farm"],
    "science": ["telescope", "satellite", "laboratory", "microscope", "experiment", "battery", "comet", "planet",
                "moon", "crystal", "mineral", "fossil", "geologist", "botanist", "volcano"],
}


_AN = re.compile(r"\b([Aa]) ([aeiou])")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class Prose:
    """Draws sentences, paragraphs and titles from one seeded random stream: the same seed, the same text."""

    def __init__(self, seed: str | int, topic: str | None = None) -> None:
        """`topic` (a key of TOPICS) draws every noun from that topic's list: text a classifier can label."""
        self.rng = random.Random(f"tokenmill-prose/{seed}/{topic}")
        self.nouns = [pair for pair in NOUNS if pair[0] in TOPICS[topic]] if topic else NOUNS

    def _slots(self) -> dict[str, str]:
        r, nouns = self.rng, self.nouns
        (n, np), (n2, _), (_, np2) = r.choice(nouns), r.choice(nouns), r.choice(nouns)
        (v, v3, vd), (v2, _, vd2) = r.choice(VERBS), r.choice(VERBS)
        name, link = r.choice(NAMES), r.choice(LINKS)
        return {"n": n, "np": np, "n2": n2, "np2": np2, "v": v, "v3": v3, "vd": vd, "v2": v2, "vd2": vd2,
                "a": r.choice(ADJECTIVES), "a2": r.choice(ADJECTIVES), "adv": r.choice(ADVERBS),
                "place": r.choice(PLACES), "time": r.choice(TIMES), "name": name, "Name": name,
                "link": link, "Link": _cap(link), "year": str(r.randint(1820, 2024)), "num": str(r.randint(3, 90))}

    def sentence(self) -> str:
        return _cap(_AN.sub(r"\1n \2", self.rng.choice(TEMPLATES).format(**self._slots())))

    def paragraph(self, sentences: tuple[int, int] = (3, 6)) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(*sentences)))

    def paragraphs(self, count: tuple[int, int] = (3, 7)) -> list[str]:
        return [self.paragraph() for _ in range(self.rng.randint(*count))]

    def title(self) -> str:
        r = self.rng
        (_, np), (n2, _) = r.choice(self.nouns), r.choice(self.nouns)
        return _cap(f"{r.choice(ADJECTIVES)} {np} and the {n2} of {r.choice(PLACES).removeprefix('the ')}")

    def words(self, count: int) -> list[str]:
        """Single nouns, for menus and link lists (lines without punctuation)."""
        return [_cap(self.rng.choice(NOUNS)[1]) for _ in range(count)]


def labeled_paragraphs(per_topic: int, seed: int = 0) -> list[tuple[str, str]]:
    """`per_topic` paragraphs of each topic in TOPICS, as (text, label), interleaved by topic."""
    writers = {topic: Prose(seed, topic) for topic in TOPICS}
    return [(writers[topic].paragraph(), topic) for _ in range(per_topic) for topic in TOPICS]
