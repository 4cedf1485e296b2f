"""Build t2i/assets/fashion-mnist-captions.json, the caption bank of `data.captions=bank`.

    python scripts/caption_bank.py            # needs WordNet (Debian's wordnet-base); writes the asset

Training on 27 template captions per class teaches a text model the neighbourhoods of those
templates in the encoder's space, not what a garment is. The bank gives each class hundreds of
captions drawn from WordNet 3.0 (offline, t2i/text/wordnet.py) and t2i's supplement to it
(t2i/assets/lexicon.json: "hoodie", "jandal", British "trainers", which WordNet lacks):
- names: the class's synsets and their hyponyms (two levels; for the shoe classes, the kinds of
  `shoe` that are one of them), each curated below: a hyponym that belongs to another
  Fashion-MNIST class, or to none, is left out; a lemma that first means something else
  ("mac", "pusher", "waterproof") is not used as a name, its synonyms are;
- the supplement's words whose meaning ends in one of a class's names ("hooded sweatshirt");
- definitions: each synset's gloss ("a shoe consisting of a sole fastened by straps to the foot"),
  bare and after its name;
- kinds: "a sandal, a kind of footwear", from the class's hypernyms;
- parts: "a coat with a breast pocket", from WordNet's part meronyms (of the class's synset and,
  for shoes and boots, of `shoe`);
- the template captions of t2i/text/captions.py on every name, and a seeded sample of generic
  adjectives (colours, plain / striped / vintage ...) on the names;
- facets, curated by hand from general knowledge of each garment (FACETS: where it is worn, its
  features, materials, seasons and uses), on the class's own names ("a sandal made of cork",
  "a coat for snow") and without a name ("something worn on the feet, with straps"): the
  descriptive and functional phrasings that a lexicon's nouns lack.
The older held-out prompts and the 150 paraphrases are development sets: the bank may contain
their words (WordNet has "anorak" and "rucksack"), and is never written from them. The rare
garment words (t2i/assets/fashion-mnist-rare-words.json) were written before this bank and are
never looked at by it. Running the script again gives the same file.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from t2i.text.captions import FASHION_MNIST, PHOTO_TEMPLATES, caption  # noqa: E402
from t2i.text.lexicon import supplement  # noqa: E402
from t2i.text.wordnet import HYPERNYM, PART_MERONYM, WordNet, licence  # noqa: E402

OUT = ROOT / "t2i" / "assets" / "fashion-mnist-captions.json"

# Per class: WordNet senses as (word, sense number from 1), whose lemmas, glosses and hyponyms
# (two levels) make the bank; `under`: senses whose hyponyms (not themselves) belong to the class;
# the synsets to leave out, by any of their lemmas; extra senses for parts.
SOURCES = {
    "T-shirt/top": dict(senses=[("t-shirt", 1), ("polo shirt", 1), ("camisole", 1), ("undershirt", 1),
                                ("tank top", 1)],
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
                          "laboratory coat", "afghan"}),
    "Sandal": dict(senses=[("sandal", 1)], parts=[("shoe", 1)],
                   exclude={"talaria", "scuffer"}),
    "Shirt": dict(senses=[("shirt", 1), ("blouse", 1)],
                  exclude={"jersey", "t-shirt", "tee shirt", "tank top", "turtleneck", "turtle",
                           "polo-neck", "polo shirt", "sport shirt", "hair shirt", "camise",
                           "dashiki", "daishiki", "kurta", "middy", "middy blouse"}),
    "Sneaker": dict(senses=[("sneaker", 1), ("running shoe", 1)], parts=[("shoe", 1)], under=[("shoe", 1)],
                    exclude={"anklet", "baby shoe", "calceus", "chopine", "chukka", "congress boot", "flipper",
                             "gaiter", "pump", "spectator", "sabot", "sandal", "espadrille", "flip-flop",
                             "huarache", "zori", "scuffer", "talaria", "slingback", "walker", "wedgie"}),
    "Bag": dict(senses=[("handbag", 1), ("bag", 1), ("satchel", 1), ("briefcase", 1), ("waist pack", 1)],
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
    "Ankle boot": dict(senses=[("boot", 1), ("chukka", 2), ("congress boot", 1)], parts=[("shoe", 1)],
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


# Lemmas that first mean something else: not used as names (their synsets' other lemmas are).
NOT_NAMES = {"waterproof", "mac", "mack", "pusher", "turtle", "sling", "walker", "fin", "flipper", "vest",
             "platform", "sack", "poke", "skin"}


def named(name: str, template: str) -> str:
    """`caption` for a bank name, with "a pair of" before plurals ("a pair of huaraches")."""
    plural = name.endswith("s") and not name.endswith("ss") and not name.startswith("pair of")
    return template.format(a="a pair of", name=name) if plural else caption(name, template)


def facet_captions(name: str, base: list[str], rng: random.Random) -> list[str]:
    """A seeded sample of FACETS captions of a class: with its own names, and without one."""
    worn, features, materials, times, uses = FACETS[name]
    caps = [named(n, f"{{a}} {{name}} {t}") for n in base for t in
            [*(f"made of {m}" for m in materials), *(f"with {f}" for f in features),
             *(f"for {x}" for x in [*times, *uses]), *(f"worn {w}" for w in worn)]]
    caps += [named(f"{m} {n}", "{a} {name}") for m in materials for n in base]
    caps += [f"something worn {w}, with {f}" for w in worn for f in features]
    verbs = ("to carry", "you carry", "carried") if name == "Bag" else ("to wear", "you wear", "worn")
    caps += [f"something {w} for {u}" for w in verbs for u in uses if w == verbs[2] or u != "everyday wear"]
    return rng.sample(caps, min(FACET_CAPTIONS, len(caps)))


def class_synsets(wn: WordNet, source: dict) -> tuple[list, list]:
    """A class's own senses, and every synset whose lemmas name it (senses, their hyponyms, the
    hyponyms of its `under` senses), the excluded ones left out."""
    exclude = {e.lower() for e in source["exclude"]}
    senses = [wn.senses(w)[k - 1] for w, k in source["senses"]]
    under = [wn.senses(w)[k - 1] for w, k in source.get("under", [])]
    found = [*senses, *(h for s in senses + under for h in wn.hyponyms(s, 2))]
    return senses, [s for s in found if not {lemma.lower() for lemma in s.lemmas} & exclude]


def supplement_names(base: list[str], wn_names: list[str]) -> list[str]:
    """The supplement's words (lexicon.json) whose meaning ends in one of the class's names:
    "hoodie" (a hooded sweatshirt) for Pullover."""
    names = set(base) | set(wn_names)
    return [word for word, means in supplement().items()
            if any(means.lower() == n or means.lower().endswith(" " + n) for n in names)]


def class_captions(wn: WordNet, name: str, synonyms: tuple[str, ...], source: dict,
                   rng: random.Random) -> list[str]:
    base = [name.lower(), *synonyms]
    senses, synsets = class_synsets(wn, source)
    wn_names = [lemma.lower() for s in synsets for lemma in s.lemmas if lemma.lower() not in NOT_NAMES]
    extra = supplement_names(base, wn_names)
    names = list(dict.fromkeys([*base, *wn_names, *extra]))
    caps = [named(n, t) for n in names for t in PHOTO_TEMPLATES]
    for s in synsets:
        caps += [s.definition] + [f"{named(lemma.lower(), '{a} {name}')}: {s.definition}"
                                  for lemma in s.lemmas if lemma.lower() not in NOT_NAMES]
    caps += [f"{named(w, '{a} {name}')}: {caption(supplement()[w], '{a} {name}')}" for w in extra]
    for s in senses:
        kinds = [h.lemmas[0].lower() for h in wn.related(s, HYPERNYM)]
        caps += [f"{named(n, '{a} {name}')}, a kind of {k}" for n in base for k in kinds]
    part_senses = senses + [wn.senses(w)[k - 1] for w, k in source.get("parts", [])]
    parts = list(dict.fromkeys(p.lemmas[0].lower() for s in part_senses for p in wn.related(s, PART_MERONYM)))
    caps += [f"{named(n, '{a} {name}')} with {caption(p, '{a} {name}')}" for n in base for p in parts]
    caps += facet_captions(name, base, rng)
    pairs = [(a, n) for a in ADJECTIVES for n in names]
    caps += [named(f"{a} {n}", "{a} {name}") for a, n in rng.sample(pairs, min(ADJECTIVE_CAPTIONS, len(pairs)))]
    return list(dict.fromkeys(caps))


def build_bank(wn: WordNet) -> dict[str, list[str]]:
    """Per class name, its bank: what the asset's "classes" holds."""
    classes = FASHION_MNIST
    rng = random.Random(0)
    bank = {name: class_captions(wn, name, synonyms, SOURCES[name], rng)
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
             "from WordNet 3.0 (Debian wordnet-base), t2i's supplement to it (t2i/assets/lexicon.json) "
             "and t2i's caption templates. Regenerate with: python scripts/caption_bank.py")
    OUT.write_text(json.dumps({"about": about, "wordnet_licence": licence(), "classes": bank}, indent=1) + "\n")
    print(f"{OUT}: {sum(map(len, bank.values()))} captions: " + ", ".join(f"{n} {len(c)}" for n, c in bank.items()))


if __name__ == "__main__":
    main()
