"""Build t2i/assets/fashion-mnist-captions.json, the caption bank of `data.captions=bank`.

    python scripts/caption_bank.py            # needs Debian's wordnet-base; writes the asset

Training on 27 template captions per class teaches a text model the neighbourhoods of those
templates in the encoder's space, not what a garment is. The bank gives each class hundreds of
captions drawn from WordNet 3.0 (offline, Debian's `wordnet-base`):
- names: the class's synsets and their hyponyms (two levels), each curated below: a hyponym
  that belongs to another Fashion-MNIST class, or that nobody would draw as this one, is left out;
- definitions: each synset's gloss ("a shoe consisting of a sole fastened by straps to the foot"),
  bare and after its name;
- kinds: "a sandal, a kind of footwear", from the class's hypernyms;
- parts: "a coat with a breast pocket", from WordNet's part meronyms (of the class's synset and,
  for shoes and boots, of `shoe`);
- the template captions of t2i/captions.py on every name, and a seeded sample of generic
  adjectives (colours, plain / striped / vintage ...) on the names;
- facets, curated by hand from general knowledge of each garment (FACETS: where it is worn, its
  features, materials, seasons and uses), on the class's own names ("a sandal made of cork",
  "a coat for snow") and without a name ("something worn on the feet, with straps"): the
  descriptive and functional phrasings that a lexicon's nouns lack. Written per class from what
  the garment is, not from the held-out prompts or from any model's mistakes.
No caption is written with the held-out prompts in view. They are used in one direction only,
to remove leaks: a WordNet synset with a name that occurs in a held-out prompt ("raincoat" in
"a raincoat") is dropped whole (its synonyms "waterproof" and its gloss too), unless the name
was already one of t2i's own synonyms; any caption that contains a held-out prompt, or is a
phrase of three or more words inside one, is dropped too. That makes the held-out sets harder,
never easier.
Running the script again gives the same file.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from wordnet import HYPERNYM, PART_MERONYM, WordNet  # noqa: E402

from t2i.text.captions import FASHION_MNIST, PHOTO_TEMPLATES, caption  # noqa: E402

OUT = ROOT / "t2i" / "assets" / "fashion-mnist-captions.json"

# Per class: WordNet senses as (word, sense number from 1), whose lemmas, glosses and hyponyms
# (two levels) make the bank; the hyponym lemmas to leave out; extra senses for parts.
SOURCES = {
    "T-shirt/top": dict(senses=[("t-shirt", 1), ("polo shirt", 1), ("camisole", 1)],
                        exclude={"turtleneck", "turtle", "polo-neck", "underbodice"}),
    "Trouser": dict(senses=[("trouser", 1), ("slacks", 1)],
                    exclude={"pajama", "pyjama", "short pants", "shorts", "trunks", "trunk hose",
                             "bermuda shorts", "jamaica shorts", "hot pants", "lederhosen",
                             "white", "flannel", "tweed", "gabardine", "plus fours", "britches",
                             "breeches", "knee breeches", "knee pants", "knickerbockers", "knickers",
                             "pantaloon", "buckskins", "trews", "salwar", "shalwar", "churidars"}),
    "Pullover": dict(senses=[("sweater", 1), ("pullover", 1)],
                     exclude={"cardigan"}),
    "Dress": dict(senses=[("dress", 1), ("gown", 1)],
                  exclude={"jumper", "pinafore", "pinny", "kirtle", "polonaise", "mantua",
                           "morning dress", "mother hubbard", "sack", "chemise", "formal",
                           "strapless", "dirndl", "tea gown"}),
    "Coat": dict(senses=[("coat", 1), ("jacket", 1)],
                 exclude={"jumper", "bed jacket", "dressing sack", "dressing sacque", "banyan",
                          "banian", "doublet", "hug-me-tight", "surcoat", "prince albert",
                          "newmarket", "sack", "sacque", "topper", "coatee", "mess jacket",
                          "monkey jacket", "shell jacket", "eton jacket", "dolman",
                          "dolman jacket", "bolero", "burberry", "surtout", "mink", "sable coat",
                          "cutaway", "swallow-tailed coat", "swallowtail", "morning coat",
                          "frock coat", "sack coat", "box coat", "jerkin", "mackinaw",
                          "mackinaw coat", "ulster", "capote", "chesterfield", "lab coat",
                          "laboratory coat", "waterproof", "mack", "mac", "afghan", "cagoule"}),
    "Sandal": dict(senses=[("sandal", 1)], parts=[("shoe", 1)],
                   exclude={"talaria", "pusher", "scuffer"}),
    "Shirt": dict(senses=[("shirt", 1), ("blouse", 1)],
                  exclude={"jersey", "t-shirt", "tee shirt", "tank top", "turtleneck", "turtle",
                           "polo-neck", "polo shirt", "sport shirt", "hair shirt", "camise",
                           "dashiki", "daishiki", "kurta", "middy", "middy blouse"}),
    "Sneaker": dict(senses=[("sneaker", 1), ("running shoe", 1)], parts=[("shoe", 1)],
                    exclude=set()),
    "Bag": dict(senses=[("handbag", 1), ("bag", 1)],
                exclude={"etui", "reticule", "air bag", "beanbag", "bladder", "body bag",
                         "personnel pouch", "human remains pouch", "burn bag", "dust bag",
                         "vacuum bag", "envelope", "gasbag", "gamebag", "golf bag", "gunnysack",
                         "gunny sack", "burlap bag", "ice pack", "ice bag", "mailbag", "postbag",
                         "nosebag", "feedbag", "pannier", "ragbag", "rosin bag", "sachet", "sack",
                         "poke", "saddlebag", "sandbag", "sick bag", "sickbag", "skin",
                         "sleeping bag", "sweat bag", "tea bag", "toilet bag", "sponge bag",
                         "tool bag", "tucker-bag", "moneybag", "seabag", "bin liner",
                         "mail pouch", "pocket", "sporran", "tobacco pouch", "doggie bag",
                         "doggy bag", "waterskin", "water skin", "wineskin", "bagful", "pouch"}),
    "Ankle boot": dict(senses=[("boot", 1)], parts=[("shoe", 1)],
                       exclude={"waders", "hip boot", "thigh boot", "ski boot", "top boot",
                                "hessian boot", "hessian", "jackboot", "buskin", "riding boot"}),
}
# where it is worn / its features / materials / seasons and weather / uses and occasions
FACETS = {
    "T-shirt/top": (["on the upper body", "over the torso"],
                    ["short sleeves", "no collar", "a round neck", "a printed logo", "no buttons"],
                    ["cotton", "jersey cotton", "polyester"],
                    ["summer", "warm weather", "hot days"],
                    ["everyday wear", "sports", "the gym", "casual days", "sleeping in"]),
    "Trouser": (["on the legs", "from the waist to the ankles"],
                ["two long legs", "a zip fly", "belt loops", "side pockets", "a waistband"],
                ["denim", "cotton twill", "wool", "corduroy"],
                ["all year", "cold days"],
                ["work", "the office", "casual wear", "hiking"]),
    "Pullover": (["over the head", "over a shirt", "on the upper body"],
                 ["long sleeves", "ribbed cuffs", "a round neck", "a knitted pattern"],
                 ["wool", "knitted wool", "cashmere", "cotton knit"],
                 ["winter", "autumn", "cold weather", "chilly evenings"],
                 ["keeping warm", "layering", "casual wear"]),
    "Dress": (["by women", "from the shoulders to the knees"],
              ["a skirt", "a fitted waist", "thin straps", "no sleeves", "a long hem"],
              ["silk", "cotton", "chiffon", "satin", "lace"],
              ["summer", "spring", "evenings"],
              ["a party", "a wedding", "a dinner", "a date", "formal events", "the office"]),
    "Coat": (["over other clothes", "outdoors"],
             ["long sleeves", "buttons down the front", "a zip", "a hood", "a belt", "lapels",
              "deep pockets"],
             ["wool", "leather", "down", "waterproof fabric", "tweed", "fur"],
             ["winter", "cold weather", "rain", "snow", "autumn"],
             ["keeping warm outside", "the commute", "walks"]),
    "Sandal": (["on the feet", "with bare feet"],
               ["straps", "an open toe", "a flat sole", "a buckle", "a heel strap"],
               ["leather", "rubber", "cork", "suede"],
               ["summer", "warm weather", "holidays"],
               ["the beach", "the pool", "walking in the heat"]),
    "Shirt": (["on the upper body", "tucked in"],
              ["a collar", "buttons down the front", "long sleeves", "cuffs", "a breast pocket"],
              ["cotton", "linen", "silk", "flannel", "denim"],
              ["all year", "spring"],
              ["work", "the office", "formal occasions", "a meeting", "smart casual wear"]),
    "Sneaker": (["on the feet"],
                ["laces", "a rubber sole", "a cushioned sole", "a padded collar", "a low top"],
                ["canvas", "mesh", "leather", "suede"],
                ["every season"],
                ["running", "sport", "the gym", "walking", "training", "casual wear"]),
    "Bag": (["in the hand", "over the shoulder", "on the back"],
            ["a handle", "two handles", "a shoulder strap", "a zip", "a clasp", "pockets"],
            ["leather", "canvas", "nylon", "fabric"],
            ["travel", "every day"],
            ["shopping", "work", "carrying things", "school", "a night out"]),
    "Ankle boot": (["on the feet", "up to the ankle"],
                   ["a low heel", "a block heel", "a zip at the side", "laces", "a thick sole",
                    "elastic sides"],
                   ["leather", "suede", "rubber"],
                   ["autumn", "winter", "rain", "cold weather"],
                   ["walking", "everyday wear", "going out"]),
}
FACET_CAPTIONS = 150  # per class, a seeded sample of the facet captions

ADJECTIVES = ("black", "white", "grey", "dark", "light", "red", "blue", "brown", "plain",
              "simple", "striped", "patterned", "new", "old", "worn", "vintage", "cheap",
              "expensive", "designer", "small", "large", "classic", "modern", "stylish")
ADJECTIVE_CAPTIONS = 80  # per class, a seeded sample of (adjective, name) pairs


def words(text: str) -> list[str]:
    """Lower-case words with a plural 's' stripped: "Blue Jeans" -> ["blue", "jean"]."""
    return [w[:-1] if w.endswith("s") and len(w) > 3 else w
            for w in re.findall(r"[a-z0-9]+", text.lower())]


def inside(part: list[str], whole: list[str]) -> bool:
    """Whether the word sequence `part` occurs contiguously in `whole`."""
    n = len(part)
    return n > 0 and any(whole[i:i + n] == part for i in range(len(whole) - n + 1))


def core_words(w: list[str]) -> list[str]:
    """A held-out prompt's words without a leading article or "pair of"."""
    while w and w[0] in ("a", "an", "the", "pair", "of"):
        w = w[1:]
    return w


def named(name: str, template: str) -> str:
    """`caption` for a bank name, with "a pair of" before plurals ("a pair of huaraches")."""
    plural = name.endswith("s") and not name.endswith("ss") and not name.startswith("pair of")
    return template.format(a="a pair of", name=name) if plural else caption(name, template)


def leaks(text: str, heldout: list[list[str]]) -> bool:
    """Whether a caption contains a held-out prompt (bar its article), or is a phrase of three or
    more words inside one (article included: "a wool overcoat" in "a wool overcoat with a belt")."""
    w = words(text)
    return any(inside(core_words(h), w) or (len(w) >= 3 and inside(w, h)) for h in heldout)


def facet_captions(name: str, base: list[str], rng: random.Random) -> list[str]:
    """A seeded sample of FACETS captions of a class: with its own names, and without one."""
    worn, features, materials, times, uses = FACETS[name]
    caps = [named(n, f"{{a}} {{name}} {t}") for n in base for t in
            [*(f"made of {m}" for m in materials), *(f"with {f}" for f in features),
             *(f"for {x}" for x in [*times, *uses]), *(f"worn {w}" for w in worn)]]
    caps += [named(f"{m} {n}", "{a} {name}") for m in materials for n in base]
    caps += [f"something worn {w}, with {f}" for w in worn for f in features]
    caps += [f"something {w} for {u}" for w in ("to wear", "you wear", "worn") for u in uses if w == "worn" or u != "everyday wear"]
    return rng.sample(caps, min(FACET_CAPTIONS, len(caps)))


def class_captions(wn: WordNet, name: str, synonyms: tuple[str, ...], source: dict,
                   heldout: list[list[str]], rng: random.Random) -> list[str]:
    exclude = {e.lower() for e in source["exclude"]}
    base = [name.lower(), *synonyms]
    senses = [wn.senses(w)[k - 1] for w, k in source["senses"]]
    synsets = [s for s in [*senses, *(h for s in senses for h in wn.hyponyms(s, 2))]
               if not {lemma.lower() for lemma in s.lemmas} & exclude
               and not any(inside(words(lemma), h) for lemma in s.lemmas if lemma.lower() not in base
                           for h in heldout)]
    names = list(dict.fromkeys([*base, *(lemma.lower() for s in synsets for lemma in s.lemmas)]))
    caps = [named(n, t) for n in names for t in PHOTO_TEMPLATES]
    for s in synsets:
        caps += [s.definition] + [f"{named(lemma.lower(), '{a} {name}')}: {s.definition}" for lemma in s.lemmas]
    for s in senses:
        kinds = [h.lemmas[0].lower() for h in wn.related(s, HYPERNYM)]
        caps += [f"{named(n, '{a} {name}')}, a kind of {k}" for n in base for k in kinds]
    part_senses = senses + [wn.senses(w)[k - 1] for w, k in source.get("parts", [])]
    parts = list(dict.fromkeys(p.lemmas[0].lower() for s in part_senses for p in wn.related(s, PART_MERONYM)))
    caps += [f"{named(n, '{a} {name}')} with {caption(p, '{a} {name}')}" for n in base for p in parts]
    caps += facet_captions(name, base, rng)
    pairs = [(a, n) for a in ADJECTIVES for n in names]
    caps += [named(f"{a} {n}", "{a} {name}") for a, n in rng.sample(pairs, min(ADJECTIVE_CAPTIONS, len(pairs)))]
    return [c for c in dict.fromkeys(caps) if not leaks(c, heldout)]


def build_bank(wn: WordNet) -> dict[str, list[str]]:
    """Per class name, its bank: what the asset's "classes" holds."""
    classes = FASHION_MNIST
    heldout = [words(p) for ps in (*classes.heldout, *classes.paraphrases) for p in ps]
    rng = random.Random(0)
    bank = {name: class_captions(wn, name, synonyms, SOURCES[name], heldout, rng)
            for name, synonyms in zip(classes.names, classes.synonyms)}
    # A caption that two classes share ("something worn for work") teaches neither: dropped.
    owners: dict[str, set[str]] = {}
    for name, caps in bank.items():
        for c in caps:
            owners.setdefault(c.lower(), set()).add(name)
    return {name: [c for c in caps if len(owners[c.lower()]) == 1] for name, caps in bank.items()}


def main() -> None:
    bank = build_bank(WordNet())
    about = ("Caption bank of Fashion-MNIST (data.captions=bank), made by scripts/caption_bank.py "
             "from WordNet 3.0 (Debian wordnet-base) and t2i's caption templates; filtered so that "
             "no held-out prompt (Classes.heldout, fashion-mnist-paraphrases.json) leaks in. "
             "Regenerate with: python scripts/caption_bank.py")
    OUT.write_text(json.dumps({"about": about, "classes": bank}, indent=1) + "\n")
    print(f"{OUT}: " + ", ".join(f"{n} {len(c)}" for n, c in bank.items()))


if __name__ == "__main__":
    main()
